"""Hostile input on the page (AppTest): uploads refused with a reason while the rest of the page keeps working, file
names shown as text, and profiles: one learner's progress is never read or changed from a session on another
profile (not through the widgets' state, which outlives a profile switch, nor through the store)."""

from __future__ import annotations

import io
import zipfile

import pytest
from streamlit.testing.v1 import AppTest

from engine.extract.uploads import MAX_UPLOAD_BYTES
from tests.ui.conftest import goto, new_app
from ui.text import WORD_JOINER, escape_md


@pytest.fixture
def uploads(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_COURSE_UPLOADS", str(tmp_path / "uploads"))
    return tmp_path / "uploads"


PROSE = "A perfectly ordinary paragraph of my own writing, long enough to train on. " * 20


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("book.txt", PROSE)
    return buf.getvalue()


HOSTILE_UPLOADS = [
    ("random.txt", bytes(range(256)) * 8, "NUL byte"),
    ("latin.txt", ("café " * 400).encode("latin-1"), "not valid UTF-8"),
    ("utf16.txt", PROSE.encode("utf-16"), "UTF-16"),
    ("utf16-no-bom.txt", PROSE.encode("utf-16-le"), "UTF-16"),
    ("empty.txt", b"", "is empty"),
    ("big.txt", b"a" * (MAX_UPLOAD_BYTES + 1), "the limit is 2 MB"),
    ("book.txt", _zip(), "ZIP archive"),
    ("../../etc/passwd", b"short", "at least 1,000"),
    ("C:\\Users\\me\\x\nevil\x00\u202etxt.exe", b"", "is empty"),
    ("<img src=x onerror=alert(1)>**bold**[a](javascript:alert(1)).txt", b"\xff" * 2000, "not valid UTF-8"),
]


def _uploads_page() -> None:
    """Each hostile file handed to the corpus picker's upload handler, each picker drawn after it, as the page would."""
    import streamlit as st

    from course.widgets import CorpusPickerParams
    from ui.widgets import corpus_picker

    for i, (name, data) in enumerate(st.session_state["files"]):
        corpus_picker._take(name, data, f"up{i}")
        corpus_picker.render(CorpusPickerParams(), f"up{i}")


def test_hostile_uploads_are_refused_with_a_reason_and_the_page_keeps_working(db, uploads):
    at = AppTest.from_function(_uploads_page, default_timeout=60)
    at.session_state["files"] = [(name, data) for name, data, _ in HOSTILE_UPLOADS]
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == len(HOSTILE_UPLOADS)
    for shown, (name, _, words) in zip(errors, HOSTILE_UPLOADS, strict=True):
        assert "was refused" in shown and words in shown, (name, shown)
        plain = shown.replace(WORD_JOINER, "")  # escape_md's own invisible joiner, after ":" and "-"
        assert plain.isprintable() and "/" not in plain.split(" was refused")[0], shown  # no path, no control char
    assert "“passwd” was refused" in errors[7]
    assert escape_md("<img src=x onerror=alert(1)>**bold**") in errors[9]  # shown as text, not as Markdown
    assert len(at.metric) == 3 * len(HOSTILE_UPLOADS)  # every picker still drew its corpus below the refusal
    assert not list(uploads.rglob("*.txt")) and not list(uploads.rglob(".upload-*"))  # nothing was saved


def test_a_pasted_corpus_of_markup_is_kept_as_text(db, uploads):
    from tests.ui.conftest import widget_app

    markup = "<script>window.__pwned=1</script> <img src=x onerror=alert(1)> [a](javascript:alert(1)) **b** "
    at = widget_app("corpus_picker")
    at.text_area(key="harness-paste").input(markup * 20).run()
    at.button(key="harness-paste-use").click().run()
    assert not at.exception and any("saved as your corpus" in s.value for s in at.success)
    assert any("<script>window.__pwned=1</script>" in c.value for c in at.code)  # the peek shows it verbatim
    assert not any("<script>" in m.value for m in at.markdown)


def _switch(at: AppTest, name: str) -> AppTest:
    at.text_input(key="sidebar-new-name").input(name).run()
    at.button(key="sidebar-create").click().run()
    assert not at.exception
    return at


def test_a_reflection_typed_on_one_profile_is_not_seen_or_saved_on_another(db):
    """Widget state outlives a profile switch: without care, Bob (on the same quiz, same tab) would see Ada's
    reflection in his box, her arrangement of an ordering question, and save them as his own."""
    from course.grading import shuffled
    from course.loader import load_course
    from ui.session import store

    entry = load_course().entry("big-picture")
    quiz_id = entry.quiz.id
    ada = store().get_or_create_learner("Ada")
    store().touch_learner(ada.id)  # a fresh session opens Ada's profile
    store().set_card(ada.id, entry.lesson.id, len(entry.lesson.cards))  # on the quiz
    at = goto(new_app().run(), f"lesson-{entry.lesson.number}")
    assert at.session_state["learner_id"] == ada.id
    key = f"quiz-{quiz_id}-your-own-pipeline"
    secret = "Ada's private reflection about her own pipeline, long enough to count as a real answer here."
    at.text_area(key=key).input(secret).run()
    at.button(key=f"{key}-check").click().run()
    assert store().quiz_records(ada.id, quiz_id)["your-own-pipeline"].last.response == secret
    half = "Ada's half-typed second thought, not saved yet"
    at.text_area(key=key).input(half).run()
    order_keys = [f"quiz-{quiz_id}-{q.id}-order" for q in entry.quiz.questions if q.type == "ordering"]
    assert order_keys, "the test needs a quiz with an ordering question"
    up = next(b for b in at.button if b.key and b.key.startswith(order_keys[0].removesuffix("-order") + "-down-"))
    up.click().run()  # Ada rearranges (not saved)
    ada_orders = {k: list(at.session_state[k]) for k in order_keys}

    lesson = entry.lesson
    bob = store().get_or_create_learner("Bob")
    store().set_card(bob.id, lesson.id, len(lesson.cards))  # Bob is on the same quiz
    at.run()  # the profile picker lists Bob now (Ada's unsaved text is still in her box)
    assert at.text_area(key=key).value == half
    at.selectbox(key="sidebar-learner").set_value(bob.id).run()
    assert not at.exception and at.session_state["learner_id"] == bob.id
    box = at.text_area(key=key)
    assert box.value in ("", None), box.value  # none of Ada's text, saved or half-typed, in Bob's box
    for k, order in ada_orders.items():  # an ordering question starts from Bob's own shuffle, not Ada's moves
        q = next(q for q in entry.quiz.questions if k == f"quiz-{quiz_id}-{q.id}-order")
        assert at.session_state[k] == [i.id for i in shuffled(q.items, bob.id, quiz_id, q.id)], (k, order)
    at.button(key=f"{key}-check").click().run()
    assert "your-own-pipeline" not in store().quiz_records(bob.id, quiz_id)  # an empty box saves nothing
    assert store().quiz_records(ada.id, quiz_id)["your-own-pipeline"].last.response == secret  # Ada's untouched


def test_a_profile_switch_in_one_session_leaves_another_session_alone(db):
    """Two tabs: switching the learner in one does not change whom the other shows, and writes go to the right one."""
    from ui.session import store

    first = new_app().run()
    _switch(first, "Ada")
    second = new_app().run()
    _switch(second, "Bob")
    ids = {lr.name: lr.id for lr in store().learners()}
    first.run()
    assert "Welcome, Ada" in " ".join(h.value for h in first.subheader)
    assert first.session_state["learner_id"] == ids["Ada"] and second.session_state["learner_id"] == ids["Bob"]
    goto(first, "lesson-2")
    first.button(key="lesson-how-llms-are-trained-next").click().run()
    assert store().card(ids["Ada"], "how-llms-are-trained") == 1
    assert store().card(ids["Bob"], "how-llms-are-trained") == 0
