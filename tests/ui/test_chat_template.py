"""The chat template widget (ui/widgets/chat_template.py): the one templated string, its token table with only the
answer and <|end|> counted in the loss, the special tokens as the vocabulary's last three ids, ChatML beside it; the
learner's own lesson-7 model's tokens once it has ended; characters the tokenizer lacks refused by name."""

from __future__ import annotations

import time

from engine.load.checkpoint import load_checkpoint
from engine.load.reference import REFERENCE_DIR
from engine.train.config import PRESETS
from tests.ui.conftest import no_errors, texts, widget_app

QUESTION, ANSWER = "Who says: Be hostages for Rome.", "AUFIDIUS"


def test_the_default_exchange_as_one_string_a_token_table_and_chatml(db) -> None:
    at = widget_app("chat_template")
    no_errors(at)
    shown = texts(at)
    assert "reference model" in shown
    strings = [c.value for c in at.code if c.language != "python"]  # not the engine code under the demo
    assert strings[0] == f"<|user|>{QUESTION}<|assistant|>{ANSWER}<|end|>"
    assert strings[1] == f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n{ANSWER}<|im_end|>"

    table = at.dataframe[0].value
    n = len(QUESTION) + len(ANSWER) + 3
    assert len(table) == n and list(table["position"]) == list(range(n))
    graded = table[table["counted in the loss"] == "✓ yes"]
    # the predictions graded are the answer's letters and <|end|>, read from <|assistant|> up to the last letter
    assert list(graded["predicts next"]) == list(ANSWER) + ["<|end|>"]
    assert list(graded["token"]) == ["<|assistant|>"] + list(ANSWER)
    assert list(table["token"])[:4] == ["<|user|>", "W", "h", "o"] and table["token"][4] == "␣"
    vocab = load_checkpoint(REFERENCE_DIR)[1].vocab_size  # 65 characters of Tiny Shakespeare
    ids = dict(zip(table["token"], table["id"], strict=False))
    assert [ids["<|user|>"], ids["<|assistant|>"], ids["<|end|>"]] == [vocab, vocab + 1, vocab + 2]
    assert f"had **{vocab}** tokens" in shown and "**three new rows**" in shown
    assert f"**{n}** tokens" in shown and f"**{len(ANSWER) + 1}** of those predictions count" in shown
    assert "Why only the answer is graded" in shown


def test_edited_text_is_followed_and_unknown_characters_are_refused_by_name(db) -> None:
    at = widget_app("chat_template")
    at.text_input(key="harness-answer").input("ROMEO").run()
    no_errors(at)
    assert at.code[0].value.endswith("<|assistant|>ROMEO<|end|>") and len(at.dataframe[0].value) == len(QUESTION) + 8

    at.text_input(key="harness-question").input("Who says ✨ or 漢?").run()
    no_errors(at)
    warning = " ".join(w.value for w in at.warning)
    assert "no token for `✨`, `漢`" in warning
    assert not at.dataframe  # nothing half-drawn

    at.text_input(key="harness-question").input("Who says: \ue002").run()  # a special token's character, typed
    no_errors(at)
    assert "Only the template may place them" in " ".join(w.value for w in at.warning)

    at.text_input(key="harness-question").input("x" * 70).run()  # longer than the model's context
    no_errors(at)
    assert "an SFT run takes at most 65" in " ".join(w.value for w in at.warning)


def test_the_learners_own_lesson_7_model_gives_the_tokens(db) -> None:
    from ui import run_view
    from ui.session import store

    at = widget_app("chat_template")
    learner = store().last_learner().id
    text = "ab ba. " * 400  # a run whose vocabulary is 4 characters: its ids differ from the reference model's
    run_view.start(learner, "main", PRESETS["tiny"].with_changes(max_steps=4, eval_interval=2), text, label="lesson")
    deadline = time.time() + 60
    while run_view.load(learner, "main").active:
        assert time.time() < deadline, "the tiny run did not end"
        time.sleep(0.2)
    at.run()
    at.text_input(key="harness-question").input("ab").run()
    at.text_input(key="harness-answer").input("ba.").run()
    no_errors(at)
    assert "your own model" in texts(at) and "had **4** tokens" in texts(at)
    ids = dict(zip(at.dataframe[0].value["token"], at.dataframe[0].value["id"], strict=False))
    assert [ids["<|user|>"], ids["<|assistant|>"], ids["<|end|>"]] == [4, 5, 6]
    at.text_input(key="harness-answer").input("Rome").run()  # letters the reference model knows, this one does not
    assert "no token for `R`, `o`, `m`, `e`" in " ".join(w.value for w in at.warning)
