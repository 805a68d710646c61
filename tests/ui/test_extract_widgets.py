"""Lesson 3's widgets: pick or upload a corpus, clean it, find duplicates, compare runs with and without them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.extract.corpus import CRAWL_ID
from tests.ui.conftest import texts

HARNESS = str(Path(__file__).with_name("widget_harness.py"))


@pytest.fixture
def uploads(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_COURSE_UPLOADS", str(tmp_path / "uploads"))
    return tmp_path / "uploads"


def widget(name: str, **params) -> AppTest:
    at = AppTest.from_file(HARNESS, default_timeout=60)
    at.session_state["harness_widget"] = name
    at.session_state["harness_params"] = params
    return at.run()


def no_errors(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not [e.value for e in at.error if "problem and stopped" in e.value]


def test_corpus_picker_lists_corpora_and_switches(db, uploads):
    at = widget("corpus_picker")
    no_errors(at)
    radio = at.radio(key="harness-choice")
    labels = " | ".join(radio.options)
    assert "Tiny Shakespeare" in labels and "Python standard library" in labels and "Web crawl" in labels
    assert radio.value == CRAWL_ID  # the default: the most instructive corpus for cleaning
    radio.set_value("tinyshakespeare").run()
    no_errors(at)
    assert at.metric[0].label == "Documents" and at.metric[0].value != "0"
    from ui.learner_corpus import chosen
    from ui.session import store

    assert chosen(store().last_learner().id).id == "tinyshakespeare"


def test_paste_is_checked_and_saved(db, uploads):
    at = widget("corpus_picker")
    at.text_area(key="harness-paste").input("too short").run()
    at.button(key="harness-paste-use").click().run()
    assert any("refused" in e.value and "1,000" in e.value for e in at.error)
    good = "A perfectly ordinary paragraph of my own writing, long enough to train on. " * 20
    at.text_area(key="harness-paste").input(good).run()
    at.button(key="harness-paste-use").click().run()
    no_errors(at)
    assert any("saved as your corpus" in s.value for s in at.success)
    assert any(p.name.startswith("upload-") for p in uploads.rglob("*.txt"))
    assert at.radio(key="harness-choice").value.startswith("upload-")


def test_paste_with_a_huge_alphabet_is_refused_with_its_reason(db, uploads):
    at = widget("corpus_picker")
    at.text_area(key="harness-paste").input("".join(map(chr, range(0x4E00, 0x4E00 + 1500)))).run()
    at.button(key="harness-paste-use").click().run()
    no_errors(at)
    assert any("refused" in e.value and "1,500 different characters" in e.value for e in at.error)
    assert not list(uploads.rglob("upload-*.txt"))


def test_a_paste_past_the_upload_limit_says_which_upload_was_removed(db, uploads):
    from engine.extract.uploads import MAX_UPLOADS, save_upload
    from ui.learner_corpus import upload_folder
    from ui.session import store

    at = widget("corpus_picker")
    folder = upload_folder(store().last_learner().id)
    for i in range(MAX_UPLOADS):
        saved = save_upload(f"old {i}.txt", f"Old text number {i}. " * 80, folder)
        then = time.time() - 3600 * (MAX_UPLOADS - i)
        os.utime(saved.path, (then, then))
    at.text_area(key="harness-paste").input("A new paragraph of my own, long enough to train on. " * 30).run()
    at.button(key="harness-paste-use").click().run()
    no_errors(at)
    assert any("saved as your corpus" in s.value and "“old 0”" in s.value for s in at.success)
    assert len(list(folder.glob("upload-*.txt"))) == MAX_UPLOADS


def test_cleaning_lab_toggles_change_the_numbers(db, uploads):
    at = widget("cleaning_lab")  # default corpus: the web-crawl sample
    no_errors(at)
    docs_on = at.metric[0].value
    at.toggle(key=f"harness-{CRAWL_ID}-short").set_value(False).run()
    at.toggle(key=f"harness-{CRAWL_ID}-repetitive").set_value(False).run()
    no_errors(at)
    assert at.metric[0].value != docs_on  # fewer filters, more documents kept
    again = widget("cleaning_lab")  # the learner's choice is saved, not just shown
    assert again.toggle(key=f"harness-{CRAWL_ID}-short").value is False


def test_dedup_lab_finds_planted_copies_and_saves_the_count(db, uploads):
    at = widget("dedup_lab")
    no_errors(at)
    exact = int(at.metric[1].value.replace(",", ""))
    near = int(at.metric[2].value.replace(",", ""))
    assert exact > 100 and near > 100
    assert "What the filter really removed" in texts(at)
    from ui.facts import learner_facts
    from ui.session import store

    facts = learner_facts(store().last_learner().id)
    assert facts["dedup.removed"] == exact + near and facts["dedup.near_removed"] == near
    at.slider(key="harness-threshold").set_value(0.95).run()
    assert int(at.metric[2].value.replace(",", "")) < near  # a stricter threshold finds fewer near copies


def test_dedup_compare_trains_both_runs_on_the_tiny_preset(db, uploads):
    at = widget("dedup_compare", preset="tiny")
    no_errors(at)
    at.button(key="harness-start").click().run()
    deadline = time.time() + 120
    while time.time() < deadline:
        at.run()
        if sum("Finished" in m.label for m in at.metric) == 2:
            break
        time.sleep(0.3)
    no_errors(at)
    assert sum("Finished" in m.label for m in at.metric) == 2, texts(at)[-800:]
    spec = json.loads(at.get("echarts_chart")[0].proto.spec)
    names = [s["name"] for s in spec["series"]]
    assert names == ["validation loss, with duplicates", "validation loss, duplicates removed"]
    assert all(len(s["data"]) >= 2 for s in spec["series"])  # both curves have their points
    read = [c.value for c in at.caption if c.value.startswith("Read its training text")]
    assert len(read) == 2 and all(float(r.split("**")[1]) > 0 for r in read), read  # epochs, as the lesson says


def test_word_changes_names_the_edit():
    from ui.widgets.dedup_lab import word_changes

    assert word_changes("sound drums and trumpets", "sound drums well and trumpets") == "What changed: + “well”"
    assert word_changes("a b c", "a x c") == "What changed: “b” → “x”"
    assert word_changes("a  b", "a b").startswith("Same words")


@pytest.mark.parametrize("corpus", ["python_stdlib", "web_crawl"])
def test_next_char_counts_works_on_every_corpus_a_lesson_may_name(db, corpus):
    """Lesson files may name any corpus of data/corpora.yaml (course.widgets); the widget must load each."""
    at = widget("next_char_counts", corpus=corpus, context="de")
    no_errors(at)
    assert any("appears" in m.value for m in at.markdown)
    assert at.segmented_control(key="harness-source").value != "Shakespeare"
