"""Lesson 10's RAG playground on a handful of lesson cards (a few seconds to index), built in the background."""

from __future__ import annotations

import threading
import time

import pytest

from course.loader import load_course
from engine.retrieve import rag
from tests.ui.conftest import no_errors, texts, widget_app
from tests.ui.test_lesson_documents import MARKER, other_content
from ui.lesson_documents import lesson_documents
from ui.widgets import rag_playground as rp

QUESTION = "How big is the embedding table?"


@pytest.fixture
def small(tmp_path, monkeypatch, db):
    """Five lesson cards instead of the whole course, saved under tmp_path, and an empty build registry."""
    docs = [d for d in lesson_documents(load_course()) if d.id.startswith("lesson-05/")][:5]
    assert docs
    monkeypatch.setattr(rp, "gather_documents", lambda params, learner_id: [("the lesson text", docs)])
    monkeypatch.setattr(rp, "index_folder", lambda: tmp_path / "retrieval")
    monkeypatch.setattr(rp, "fallback_folder", lambda: tmp_path / "spare")
    monkeypatch.setattr(rp, "_BUILDS", {})
    return docs


def builds_running() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rag-build-")]


def wait_ready(at, timeout: float = 20.0):
    """run_every does not fire in AppTest: rerun the script as the fragment's poll would, until the index is ready."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        at.run()
        if "Search index ready" in texts(at):
            return at
        time.sleep(0.3)
    raise AssertionError(f"index not ready after {timeout} s: {texts(at)}")


def ask(at, question: str, k: int = 3):
    at.text_input(key="harness-question").set_value(question)
    at.number_input(key="harness-k").set_value(k)
    [b for b in at.button if b.label == "Search"][0].click()
    return at.run()


def test_plain_reruns_never_start_a_build(small):
    at = widget_app("rag_playground")
    no_errors(at)
    assert "index **5 documents" in texts(at)
    assert at.button(key="harness-build").label == "Build the search index"
    for _ in range(3):
        at.run()
    assert rp._BUILDS == {} and not builds_running()
    assert not rp.index_folder().exists() or not any(rp.index_folder().glob("rag-*"))


def test_build_then_both_retrievers_and_the_prompt(small, tmp_path):
    at = widget_app("rag_playground")
    at.button(key="harness-build").click().run()
    assert len(rp._BUILDS) == 1
    assert "Building the search index" in texts(at) or "Search index ready" in texts(at)
    wait_ready(at)
    no_errors(at)
    ask(at, QUESTION, k=3)
    no_errors(at)

    index = rag.build_index(small, tmp_path / "retrieval", 600, 100)  # loads the store the page saved
    assert not index.built
    result = rag.retrieve(QUESTION, 3, index=index)
    shown = texts(at)
    for hit in result.semantic + result.keyword:
        assert f"**{hit.rank}.** score **{hit.score:.3f}**" in shown
    assert len(result.semantic) == len(result.keyword) == 3
    assert shown.count(":green-badge[found by both]") == 2 * len(result.both)
    prompt = rag.assemble_prompt(QUESTION, rp.prompt_passages(result, "both"))
    assert prompt in [c.value for c in at.code]
    at.radio(key="harness-which").set_value("keyword").run()
    assert rag.assemble_prompt(QUESTION, result.keyword) in [c.value for c in at.code]

    at.number_input(key="harness-size").set_value(300).run()  # other knobs, another index: built on request
    assert at.button(key="harness-build") and len(rp._BUILDS) == 1

    again = widget_app("rag_playground")  # another session: the index comes from the registry, no new build
    assert "Search index ready" in texts(again) and len(rp._BUILDS) == 1


def test_a_question_with_html_is_shown_as_text(small):
    at = wait_ready(widget_app("rag_playground").button(key="harness-build").click().run())
    evil = "<script>alert(1)</script> **bold** :smile:"
    ask(at, evil)
    no_errors(at)
    assert evil in [t.value for t in at.text]
    assert not any("<script>" in m.value for m in at.markdown)


def test_an_unwritable_folder_gives_a_clear_message(small, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(rp, "index_folder", lambda: blocker / "retrieval")
    at = widget_app("rag_playground")
    no_errors(at)
    plain = texts(at).replace("\\", "").replace("\u2060", "")  # escape_md's backslashes and word joiners
    assert "cannot be written to" in plain and str(tmp_path / "spare") in plain
    assert at.button(key="harness-build")  # built in the spare folder instead

    monkeypatch.setattr(rp, "fallback_folder", lambda: blocker / "spare")
    at = widget_app("rag_playground")
    no_errors(at)
    assert "cannot be written to either" in texts(at)
    assert not [b for b in at.button if b.label == "Build the search index"]


def test_one_build_at_a_time_and_a_failure_is_reported(small, tmp_path, monkeypatch):
    """A second build waits for the first; a build that raises says why and offers to try again."""
    release = threading.Event()

    def slow(documents, folder, size, overlap, threads=1):
        release.wait(10)
        raise OSError("disk full")

    monkeypatch.setattr(rag, "build_index", slow)
    first = rp.start_build(small, tmp_path, 600, 100)
    second = rp.start_build(small[:2], tmp_path, 600, 100)
    assert rp.start_build(small, tmp_path, 600, 100).requested == first.requested  # same key: the same build
    deadline = time.monotonic() + 5
    while rp.build_status(first.key).state != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rp.build_status(first.key).state == "running" and rp.build_status(second.key).state == "waiting"
    release.set()
    while rp.build_status(second.key).active and time.monotonic() < deadline + 5:
        time.sleep(0.05)
    assert rp.build_status(first.key).error == "OSError: disk full"

    at = widget_app("rag_playground")
    no_errors(at)
    assert "did not work: OSError" in texts(at) and at.button(key="harness-retry")


def test_the_lessons_searched_are_the_course_the_server_loaded(tmp_path, monkeypatch, db):
    """LLM_COURSE_CONTENT points at another folder: the playground searches its lessons, checked by the loader,
    and nothing of the course shipped in lessons/."""
    monkeypatch.setenv("LLM_COURSE_CONTENT", str(other_content(tmp_path / "draft")))
    monkeypatch.setattr(rp, "_BUILDS", {})
    asked: list[list] = []
    monkeypatch.setattr(rp, "start_build", lambda documents, *args: asked.append(documents) or None)
    at = widget_app("rag_playground", {"corpora": [], "include_uploads": False})
    no_errors(at)
    cards = [d for d in lesson_documents(load_course()) if d.id.startswith("lesson-05/")]
    assert f"index **{len(cards)} documents" in texts(at)
    at.button(key="harness-build").click().run()
    [documents] = asked
    assert [d.id for d in documents] == [d.id for d in cards], "lesson 5 of the other folder, and nothing else"
    assert MARKER in next(d.text for d in documents if d.id == "lesson-05/table-size")
