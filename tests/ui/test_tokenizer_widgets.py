"""Lesson 4's tokenizer widgets: chip Markdown that learner text cannot break out of, the learner's saved BPE
(train, save, load, facts), and each widget rendering and reacting in AppTest."""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from course.widgets import BPETrainerParams
from engine.transform.bpe_trace import trace_merges
from tests.ui.conftest import texts
from ui import learner_corpus, learner_tokenizer
from ui.text import WORD_JOINER, escape_md
from ui.token_chips import PALETTE, chip, chips_markdown, visible
from ui.widgets import bpe_trainer

NASTY = [
    "]", "[", "a]b", "[x](http://e.com)", ":red[boom]", "]:red-background[x", "**bold**", "`code`", "```", "\\",
    "\\]", "a\\", "\\\\]", ":smile:", ":material/home:", ":streamlit:", "<b>hi</b>", "<script>", "$x^2$", "$$",
    "-> -- <- <= >= ~=", "# h", "| a |", "_u_", "~~s~~", "&amp;", "1. x", "- item", "!", "{background=\"red\"}",
    "😀", "👨\u200d👩\u200d👧", "é", "e\u0301", "\u0301", "\n", "a\nb", " \t\r", "\u00a0", "\x00\x1b", "日本語",
    "12345678901234567890", "def f(x): return x**2  # ok?", "[", "a" * 50,
]
ASCII_PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
COLOURS = "|".join(PALETTE)


def _label(markdown: str) -> str:
    m = re.fullmatch(rf":(?:{COLOURS}|green)-background\[(.*)\]", markdown, flags=re.S)
    assert m, markdown
    return m.group(1)


def _check_escaped(label: str) -> None:
    """Every ASCII punctuation mark in the label is backslash-escaped, and every backslash starts an escape."""
    i = 0
    while i < len(label):
        ch = label[i]
        if ch == "\\":
            assert i + 1 < len(label) and label[i + 1] in ASCII_PUNCT, f"dangling backslash in {label!r}"
            i += 2
            continue
        assert ch not in ASCII_PUNCT, f"unescaped {ch!r} in {label!r}"
        assert ch not in "\n\r", f"raw line break in {label!r}"
        i += 1


@pytest.mark.parametrize("text", NASTY)
def test_chip_escapes_everything_markdown_could_interpret(text):
    label = _label(chip(text))
    _check_escaped(label)
    unescaped = re.sub(r"\\(.)", r"\1", label)
    assert unescaped.replace(WORD_JOINER, "") == visible(text)  # nothing lost, nothing added but joiners
    # What Streamlit rewrites after parsing (emoji shortcodes, icons, arrows) cannot match any more.
    assert not re.search(r":[-+\w/]+:", unescaped)
    assert not re.search(r"->|<-|--|<=|>=|~=", unescaped)


def test_visible_shows_what_is_invisible():
    assert visible("a b\tc\nd\r") == "a␣b⇥c⏎d␍"
    assert visible("\x00") == "␀"
    assert visible("\u200d") == "⟨U+200D⟩"
    assert visible("\u00a0") == "⟨U+00A0⟩"
    assert visible("\u0301") == "◌\u0301" and visible("e\u0301") == "e\u0301"
    assert visible("😀") == "😀"


def test_chips_alternate_colours_and_keep_line_breaks():
    md = chips_markdown(NASTY)
    # One directive per piece: none of the nasty pieces opened or closed one of its own.
    starts = re.findall(rf"(?<!\\):(?:{COLOURS})-background\[", md)
    assert len(starts) == len(NASTY)
    colours = re.findall(rf"(?<!\\):({COLOURS})-background\[", md)
    assert all(a != b for a, b in zip(colours, colours[1:], strict=False))
    assert not md.endswith("\\\n") and md.count("\\\n") == sum("\n" in p for p in NASTY)
    assert chips_markdown([]) == ""


def test_escape_md_keeps_ordinary_text():
    assert escape_md("hello world") == "hello world"
    assert escape_md("a]b") == "a\\]b"


def test_applying_traced_merges_gives_the_traced_length():
    text = "the cat sat on the mat, the end. 12345 🙂 café\n" * 20
    steps = trace_merges(text, 30)
    assert len(bpe_trainer.apply_merges(text, steps)) == steps[-1].tokens_after
    assert b"".join(bpe_trainer.apply_merges(text, steps)) == text.encode()


def test_size_options_stay_within_the_limits():
    opts = bpe_trainer.size_options(BPETrainerParams(vocab_size=700, min_vocab_size=300, max_vocab_size=5000))
    assert opts == [300, 512, 700, 1024, 2048, 4096, 5000]


# ------------------------------------------------------------------ the learner's own tokenizer

SMALL = ("To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
         "the slings and arrows of outrageous fortune. Café, naïve, 12345, emoji 🙂.\n\n") * 40


@pytest.fixture
def small_corpus(db, tmp_path, monkeypatch):
    """A fresh database, uploads in a temp folder, and a small training text (so BPE trains in milliseconds)."""
    monkeypatch.setenv("LLM_COURSE_UPLOADS", str(tmp_path / "uploads"))
    monkeypatch.setattr(learner_corpus, "training_text", lambda learner_id: SMALL)
    return SMALL


def test_train_save_load_round_trip(small_corpus, tmp_path):
    from ui.session import store

    me = store().get_or_create_learner("Ada")
    assert learner_tokenizer.learner_bpe(me.id) is None and learner_tokenizer.bpe_facts(me.id) == {}
    tok = learner_tokenizer.train_and_save(me.id, 300)
    path = tmp_path / "uploads" / str(me.id) / "bpe.json"
    assert path.is_file() and json.loads(path.read_text())["kind"] == "bpe"
    assert not [p for p in path.parent.iterdir() if p.name != "bpe.json"]  # no temp file left behind
    fact = store().fact(me.id, "bpe.tokenizer")
    assert fact["path"] == str(path) and fact["requested"] == 300 and fact["vocab_size"] == tok.vocab_size
    assert fact["corpus_id"] == learner_corpus.chosen(me.id).id and fact["trained_at"] > 0
    assert fact["chars_per_token"] == pytest.approx(len(SMALL) / len(tok.encode(SMALL)))

    loaded = learner_tokenizer.learner_bpe(me.id)
    sample = "whether 'tis nobler 🙂 in a new text"
    assert loaded.encode(sample) == tok.encode(sample) and loaded.decode(loaded.encode(sample)) == sample
    assert learner_tokenizer.bpe_facts(me.id) == {"bpe.vocab_size": float(tok.vocab_size),
                                                 "bpe.chars_per_token": pytest.approx(fact["chars_per_token"])}
    other = store().get_or_create_learner("Bob")
    assert learner_tokenizer.learner_bpe(other.id) is None  # facts and files are per learner

    path.write_text("{not json", encoding="utf-8")
    assert learner_tokenizer.learner_bpe(me.id) is None
    path.unlink()
    assert learner_tokenizer.learner_bpe(me.id) is None


def test_training_is_cached_by_content_and_size(small_corpus):
    corpus = learner_tokenizer.CorpusText(SMALL, "hash-of-small")
    assert learner_tokenizer.trained(corpus, 290) is learner_tokenizer.trained(corpus, 290)
    assert learner_tokenizer.trained(corpus, 290) is not learner_tokenizer.trained(corpus, 295)


def test_char_tokenizer_adds_characters_the_corpus_lacks():
    corpus = learner_tokenizer.CorpusText("abc", "h-abc")
    tok = learner_tokenizer.char_tokenizer(corpus, "cab 🙂")
    assert tok.decode(tok.encode("cab 🙂")) == "cab 🙂"


# ------------------------------------------------------------------ the widgets in AppTest


def _widget(name: str, params: dict) -> None:
    """The AppTest script: render one widget with these params, no error containment (exceptions surface)."""
    import streamlit as st

    from course.widgets import WIDGET_PARAMS
    from ui.widgets import widget_module

    st.session_state["returned"] = widget_module(name).render(WIDGET_PARAMS[name].model_validate(params), f"t-{name}")


def _app(name: str, params: dict | None = None) -> AppTest:
    return AppTest.from_function(_widget, args=(name, params or {}), default_timeout=60).run()


def test_playground_renders_nasty_text(small_corpus):
    at = _app("tokenizer_playground")
    assert not at.exception
    assert len(at.dataframe) == 2 and "Character tokenizer" in texts(at) and "BPE · 1,024 tokens" not in texts(at)
    nasty = "]:red[x] **b** `c` \\ :smile: -> 👨\u200d👩\u200d👧 日本 1234567890\n\tdef f(): return [1]"
    at.text_area(key="t-tokenizer_playground-text").input(nasty).run()
    assert not at.exception
    shown = texts(at)
    assert "it never contains" in shown  # 日本, the family emoji... are not in the small corpus
    chip_lines = [m.value for m in at.markdown if ":blue-background[" in m.value]
    assert len(chip_lines) == 2
    char_df = at.dataframe[0].value
    assert len(char_df) == len(nasty) and list(char_df.columns) == ["id", "token", "start", "end"]
    bpe_df = at.dataframe[1].value
    assert bpe_df["end"].iloc[-1] == len(nasty)


def test_playground_switches_to_the_learners_own_bpe(small_corpus):
    from ui.session import store

    at = _app("tokenizer_playground")
    me = store().last_learner()
    learner_tokenizer.train_and_save(me.id, 280)
    at.run()
    assert not at.exception
    assert "Your own BPE" in texts(at)


def test_bpe_trainer_trains_and_steps_through_merges(small_corpus):
    params = {"vocab_size": 512, "min_vocab_size": 260, "max_vocab_size": 1024, "merges_to_trace": 12}
    at = _app("bpe_trainer", params)
    assert not at.exception
    assert at.session_state["returned"] is False  # the card's after-text waits
    assert at.slider(key="t-bpe_trainer-step").value == 1
    at.button(key="t-bpe_trainer-next").click().run()
    at.button(key="t-bpe_trainer-next").click().run()
    assert at.slider(key="t-bpe_trainer-step").value == 3
    at.button(key="t-bpe_trainer-prev").click().run()
    assert at.slider(key="t-bpe_trainer-step").value == 2
    assert at.get("plotly_chart")
    assert "Merge **2** of 12" in texts(at)

    at.select_slider(key="t-bpe_trainer-size").set_value(260).run()
    at.button(key="t-bpe_trainer-train").click().run()
    assert not at.exception
    assert at.session_state["returned"] is True
    assert any(m.label == "Vocabulary" and m.value == "260 tokens" for m in at.metric)
    assert "Its longest tokens" in texts(at)


def test_vocab_sweep_renders_chart_table_and_reading(small_corpus):
    at = _app("vocab_sweep", {"vocab_sizes": [260, 300, 400]})
    assert not at.exception
    assert at.get("plotly_chart") and len(at.dataframe) == 1
    shown = texts(at)
    assert "Going from 260 to" in shown and "shortens this text by" in shown
    assert "ran out of pairs to merge before 400" in shown  # the small text cannot fill 400 tokens
    assert len(at.dataframe[0].value) == 4  # the character baseline and three BPEs


def test_widgets_on_the_real_default_corpus(db, tmp_path, monkeypatch):
    """No patched text: the learner's real corpus (the default web-crawl sample), cleaned as lesson 3 does."""
    monkeypatch.setenv("LLM_COURSE_UPLOADS", str(tmp_path / "uploads"))
    for name in ("tokenizer_playground", "bpe_trainer", "vocab_sweep"):
        at = _app(name)
        assert not at.exception, name


def test_lesson_4_cards(db, tmp_path, monkeypatch):
    """The widget cards of the real lesson page, in order; the trainer card's after-text waits for training."""
    from course.loader import load_course
    from tests.ui.conftest import goto, new_app

    monkeypatch.setenv("LLM_COURSE_UPLOADS", str(tmp_path / "uploads"))
    entry = load_course().entry("tokenization")
    if entry is None or entry.lesson is None:
        pytest.skip("lesson 4 is not there yet")
    mine = {"tokenizer_playground", "bpe_trainer", "vocab_sweep"}
    at = goto(new_app().run(), "lesson-4")
    seen = []
    for card in entry.lesson.cards:
        name = card.widget.name if card.widget else None
        if name in mine:
            assert not at.exception and not at.error, (card.id, texts(at)[-800:])
            seen.append(name)
            if name == "bpe_trainer":
                key = f"tokenization-{card.id}"
                assert card.after.splitlines()[0] not in texts(at)
                at.button(key=f"{key}-train").click().run()
                assert not at.exception and not at.error
                assert card.after.splitlines()[0] in texts(at)
        if mine <= set(seen):
            break
        at.button(key="lesson-tokenization-next").click().run()
    assert seen == ["tokenizer_playground", "bpe_trainer", "vocab_sweep"]
