"""AppTest page tests: the course map, stepping through a lesson, quiz feedback, persistence, broken files."""

from __future__ import annotations

import shutil
from pathlib import Path

from course.loader import load_course
from tests.ui.conftest import goto, new_app, texts

ROOT = Path(__file__).resolve().parents[2]
LESSON2 = "how-llms-are-trained"


def test_home_lists_every_lesson(db):
    at = new_app().run()
    assert not at.exception
    shown = texts(at)
    for lesson in load_course().lessons:
        assert lesson.title in shown
        assert f"Lesson {lesson.number} · ⏱️ {lesson.minutes} min" in shown
    assert "Welcome, Guest" in shown


def test_step_next_and_previous_through_lesson_2(db):
    at = goto(new_app().run(), "lesson-2")
    lesson = load_course().entry(LESSON2).lesson
    assert not at.exception
    assert lesson.cards[0].title in texts(at)
    assert f"Lesson {lesson.number} · ⏱️ {lesson.minutes} min" in texts(at)
    for i in range(1, len(lesson.cards)):
        at.button(key=f"lesson-{LESSON2}-next").click().run()
        assert not at.exception
        assert lesson.cards[i].title in texts(at), f"card {i + 1} not shown"
        assert at.get("progress")[0].proto.text == f"Card {i + 1} / {len(lesson.cards)}"
    at.button(key=f"lesson-{LESSON2}-prev").click().run()
    assert lesson.cards[-2].title in texts(at)
    at.button(key=f"lesson-{LESSON2}-next").click().run()
    at.button(key=f"lesson-{LESSON2}-to-quiz").click().run()
    assert "Question 1 of" in texts(at)


def test_live_widget_draws_a_chart(db):
    at = goto(new_app().run(), "lesson-2")
    lesson = load_course().entry(LESSON2).lesson
    widget_card = next(i for i, c in enumerate(lesson.cards) if c.widget and c.widget.name == "next_char_counts")
    for _ in range(widget_card):
        at.button(key=f"lesson-{LESSON2}-next").click().run()
    card = lesson.cards[widget_card]
    key = f"{LESSON2}-{card.id}"
    notes = card.after.strip().splitlines()[-1]
    assert notes not in texts(at), "the notes answer the card's questions: they wait until the learner has looked"
    at.text_input(key=f"{key}-context").set_value("ROMEO").run()
    assert not at.exception
    assert "**“ROMEO”** appears" in texts(at)
    assert at.get("plotly_chart"), "the counts chart is drawn"
    assert notes not in texts(at)
    at.text_input(key=f"{key}-context").set_value("the k").run()
    assert notes in texts(at), "three contexts looked at (th, ROMEO, the k): the notes show"


def _open_quiz(at):
    lesson = load_course().entry(LESSON2).lesson
    for _ in range(len(lesson.cards) - 1):
        at.button(key=f"lesson-{LESSON2}-next").click().run()
    at.button(key=f"lesson-{LESSON2}-to-quiz").click().run()
    return at


def test_quiz_right_and_wrong_feedback_and_persistence(db):
    entry = load_course().entry(LESSON2)
    q = next(q for q in entry.quiz.questions if q.type == "single_choice")
    wrong = next(o for o in q.options if o.id != q.answer)
    right = next(o for o in q.options if o.id == q.answer)
    key = f"quiz-{entry.quiz.id}-{q.id}"

    at = _open_quiz(goto(new_app().run(), "lesson-2"))
    at.radio(key=key).set_value(wrong.id).run()
    at.button(key=f"{key}-check").click().run()
    assert not at.exception
    assert any(e.value == "Not quite." for e in at.error)
    assert wrong.explanation in texts(at)
    assert any(e.label == "Show the answer and why" for e in at.expander)

    at.radio(key=key).set_value(right.id).run()
    at.button(key=f"{key}-check").click().run()
    assert any(e.value == "Correct!" for e in at.success)
    assert "Attempts: 2 · right on the first try: no" in texts(at)

    # A fresh session for the same learner (a reload, or another day) shows the stored answer and feedback.
    again = goto(new_app().run(), "lesson-2")
    assert "Question 1 of" in texts(again)  # back at the quiz stage
    assert again.radio(key=key).value == right.id
    assert any(e.value == "Correct!" for e in again.success)


def test_fill_blanks_and_reflection(db):
    entry = load_course().entry(LESSON2)
    fb = next(q for q in entry.quiz.questions if q.type == "fill_blanks")
    refl = next(q for q in entry.quiz.questions if q.type == "reflection")
    at = _open_quiz(goto(new_app().run(), "lesson-2"))
    key = f"quiz-{entry.quiz.id}-{fb.id}"
    for i, word in enumerate(fb.answers):
        at.button_group(key=f"{key}-{i}").set_value(word).run()
    at.button(key=f"{key}-check").click().run()
    assert any(e.value == "Correct!" for e in at.success)

    rkey = f"quiz-{entry.quiz.id}-{refl.id}"
    at.text_area(key=rkey).input("too short").run()
    at.button(key=f"{rkey}-check").click().run()
    assert any("Write a little more" in e.value for e in at.warning)
    thought = "I learned from people talking to me and from the world around me; the model only sees text. " * 2
    at.text_area(key=rkey).input(thought).run()
    at.button(key=f"{rkey}-check").click().run()
    assert any("Saved" in e.value for e in at.info)


def test_broken_lesson_file_is_isolated(db, tmp_path, monkeypatch):
    content = tmp_path / "content"
    shutil.copytree(ROOT / "lessons", content / "lessons")
    shutil.copytree(ROOT / "quizzes", content / "quizzes")
    (content / "lessons" / "99-broken.yaml").write_text("id: broken\nnumber: 99\ntitle: [oops\n")
    monkeypatch.setenv("LLM_COURSE_CONTENT", str(content))
    at = new_app().run()
    assert not at.exception
    shown = texts(at)
    assert "99-broken.yaml has problems" in shown
    assert all(lesson.title in shown for lesson in load_course().lessons)  # the rest of the course still works
    assert any("YAML syntax error" in c.value for c in at.code)
    at = goto(at, "lesson-2")
    assert not at.exception and "Card 1 /" in at.get("progress")[0].proto.text


def test_progress_page_shows_scores_and_reset(db):
    at = goto(new_app().run(), "progress")
    assert not at.exception
    assert "My progress" in texts(at)
    at.button(key="progress-reset-confirm").click().run()
    assert any("reset" in e.value for e in at.success)


def test_new_profile_switches_learner(db):
    at = new_app().run()
    at.text_input(key="sidebar-new-name").input("Ada").run()
    at.button(key="sidebar-create").click().run()
    assert not at.exception
    assert "Welcome, Ada" in texts(at)
    from ui.session import store

    ids = {lr.name: lr.id for lr in store().learners()}
    assert at.selectbox(key="sidebar-learner").value == ids["Ada"]  # the picker follows the new profile
    at.selectbox(key="sidebar-learner").set_value(ids["Guest"]).run()
    assert "Welcome, Guest" in texts(at)


def test_a_profile_name_is_shown_as_typed_not_as_markdown(db):
    """A name is learner text: `**Ada**` must not turn bold in the greeting or on My progress."""
    from ui.text import escape_md

    at = new_app().run()
    at.text_input(key="sidebar-new-name").input("**Ada** [x](javascript:alert(1))").run()
    at.button(key="sidebar-create").click().run()
    assert not at.exception
    shown = escape_md("**Ada** [x](javascript:alert(1))")
    assert [h.value for h in at.subheader if h.value.startswith("Welcome")] == [f"Welcome, {shown}"]
    goto(at, "progress")
    assert any(t.value.endswith(shown) for t in at.title)


def test_the_completion_screen_leads_on_to_the_next_lesson(db):
    """A finished lesson ends in one button naming the next lesson in full, which opens it."""
    from ui.session import learner, store

    course = load_course()
    first, second = course.lessons[0], course.lessons[1]
    at = new_app().run()
    n_stages = len(first.cards) + (1 if course.entry(first.id).quiz else 0)
    store().set_card(learner().id, first.id, n_stages)  # the completion stage
    goto(at, f"lesson-{first.number}")
    onward = at.button(key=f"lesson-{first.id}-onward")
    assert onward.label == f"Next: {second.number}. {second.title}"
    onward.click().run()
    assert not at.exception
    assert any(second.title in t.value for t in at.title)


def test_every_lesson_shows_where_it_sits_in_the_pipeline(db):
    """The 'you are here' strip: lesson 3 lights Extract only; every shipped lesson names at least one stage."""
    course = load_course()
    assert all(lesson.stages for lesson in course.lessons)
    extract = next(lesson for lesson in course.lessons if lesson.id == "extract")
    at = goto(new_app().run(), f"lesson-{extract.number}")
    strip = [m.value for m in at.markdown if "You are here" in m.value]
    assert strip == [":gray[You are here:] :blue-badge[**Extract**] :gray[→ Transform → Load → Retrieve]"]
