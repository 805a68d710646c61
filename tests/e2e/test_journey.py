"""The whole journey in a real browser: every lesson that exists, every card, every quiz, a training run started,
left and found again, a reload, and then every page opened afresh: every answer, every completion and the run are
read back from the store (a server killed with SIGKILL and restarted finds them too: its store commits each answer
as it is given, and tests/e2e/test_run_survives_server_kill.py restarts one on the same database). No Streamlit
exception and no error box on any page (a quiz's own "not quite" feedback aside).

Questions are answered through their real controls where the control is what is tested: the first question of
each kind (wrong first, then right), each quiz's first question, and every question about the learner's own
numbers. The others are answered right in the progress store as the quiz opens (`_answer_in_the_store`), so the
page must draw each of them from its stored answer, as it does after a reload; every quiz's own controls are
covered by tests/ui/test_all_lessons.py and tests/ui/test_quiz_*. This keeps the whole course in one walk within
the suite's time.

Lessons, cards and questions are read from `course.loader` at run time and the right answers from the quiz model,
so the test follows the course as it grows. Numeric questions about the learner's own work (`answer_from`) are
answered the way a learner can: a wrong number first, then the number the "Show the answer" panel reveals.
"""

from __future__ import annotations

import re

import pytest

from course.grading import is_graded, shuffled
from course.loader import load_course
from course.progress import ProgressStore
from course.schema import FillBlanks, MultipleSelect, Numeric, Ordering, Quiz, Reflection, SingleChoice
from tests.conftest import wait_until
from tests.e2e.conftest import LESSON7, card_shown, next_card, put_on_card

pytestmark = pytest.mark.browser

WRONG_NUMBER = "-12345"  # far from every answer, fixed or the learner's own (losses, sizes, years are all positive)
# Error boxes that are not a quiz's own feedback on a wrong answer.
_STRAY_ERRORS = """() => [...document.querySelectorAll('[data-testid="stAlertContentError"]')]
    .filter(e => !e.closest('[class*="st-key-qbox-"]')).map(e => e.innerText)"""


def assert_clean(page, where: str) -> None:
    """No Streamlit exception and no error box outside a quiz's feedback."""
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, f"{where}: {exceptions.first.inner_text()[:500]}"
    stray = page.evaluate(_STRAY_ERRORS)
    assert not stray, f"{where}: error box {stray}"


def _wait_alert(box, kind: str, text: str | None = None) -> None:
    alert = box.locator(f'[data-testid="stAlertContent{kind}"]')
    if text is not None:
        alert = alert.filter(has_text=text)
    alert.first.wait_for()


def _check(box, key: str) -> None:
    box.locator(f".st-key-{key}-check button").click()


# ------------------------------------------------------------------ one answerer per question kind


def _single(page, box, quiz: Quiz, q: SingleChoice, key: str, learner_id: int, wrong_first: bool) -> None:
    order = [o.id for o in shuffled(q.options, learner_id, quiz.id, q.id)]
    wrong = next(o for o in order if o != q.answer)
    options = box.locator('[data-testid="stRadioOption"]')
    if wrong_first:
        options.nth(order.index(wrong)).click()
        _check(box, key)
        _wait_alert(box, "Error")
    options.nth(order.index(q.answer)).click()
    _check(box, key)
    _wait_alert(box, "Success", "Correct")


def _tick(box, key: str, option_id: str) -> None:
    box.locator(f".st-key-{key}-{option_id} label").click()


def _multiple(page, box, quiz: Quiz, q: MultipleSelect, key: str, learner_id: int, wrong_first: bool) -> None:
    wrong = next(o.id for o in q.options if o.id not in q.answers)
    if wrong_first:
        _tick(box, key, wrong)
        _check(box, key)
        _wait_alert(box, "Error")
        _tick(box, key, wrong)  # untick it
    for answer in q.answers:
        _tick(box, key, answer)
    _check(box, key)
    _wait_alert(box, "Success", "Correct")


def _pick(box, key: str, blank: int, word: str) -> None:
    pills = box.locator(f".st-key-{key}-{blank}")
    pill = pills.locator('button[data-variant="pills"]').filter(has_text=re.compile(f"^{re.escape(word)}$"))
    pill.click()
    pills.locator('button[data-variant="pills"][aria-checked="true"]').filter(
        has_text=re.compile(f"^{re.escape(word)}$")).wait_for()


def _blanks(page, box, quiz: Quiz, q: FillBlanks, key: str, learner_id: int, wrong_first: bool) -> None:
    distractor = next(w for w in q.bank if w != q.answers[0])
    _pick(box, key, 0, distractor if wrong_first else q.answers[0])
    for i, word in enumerate(q.answers[1:], start=1):
        _pick(box, key, i, word)
    if wrong_first:
        _check(box, key)
        _wait_alert(box, "Error")
        _pick(box, key, 0, q.answers[0])
    _check(box, key)
    _wait_alert(box, "Success", "Correct")


def _order_on_screen(box, key: str) -> list[str]:
    """Item ids in the order the page shows them, read from their Move-up buttons' keys. While the page redraws,
    the old rows stay on it marked stale beside the new ones: those are left out."""
    prefix = f"st-key-{key}-up-"
    return box.evaluate("(b, p) => [...b.querySelectorAll(`[class*='${p}']:not([data-stale='true'])`)].map(e => "
                        "[...e.classList].find(c => c.startsWith(p)).slice(p.length))", prefix)


def _settled_order(box, key: str, n: int, done=lambda order: True) -> list[str]:
    """The order on screen once every row is drawn (and `done` says the move landed)."""
    def drawn() -> list[str] | None:
        order = _order_on_screen(box, key)
        return order if len(order) == n and len(set(order)) == n and done(order) else None

    return wait_until(drawn, what=lambda: f"{key}: the list redrawn as expected (last seen {_order_on_screen(box, key)})")


def _ordering(page, box, quiz: Quiz, q: Ordering, key: str, learner_id: int, wrong_first: bool) -> None:
    if wrong_first:
        _check(box, key)  # the page never starts in the right order
        _wait_alert(box, "Error")
    want = [i.id for i in q.items]
    for target, item in enumerate(want):
        order = _settled_order(box, key, len(want))
        while (pos := order.index(item)) > target:
            # The next click must land on the redrawn list: a button drawn before the move would move the wrong row.
            box.locator(f".st-key-{key}-up-{item}:not([data-stale='true']) button:visible").first.click()
            order = _settled_order(box, key, len(want), lambda o, p=pos, i=item: o.index(i) == p - 1)
    _check(box, key)
    _wait_alert(box, "Success", "Correct")


def _type_number(box, key: str, text: str) -> None:
    field = box.locator("input")
    field.fill(text)
    field.press("Enter")
    _check(box, key)


def _numeric(page, box, quiz: Quiz, q: Numeric, key: str, learner_id: int, wrong_first: bool) -> None:
    if wrong_first or q.answer_from is not None:  # the learner's own number is revealed after a wrong answer
        _type_number(box, key, WRONG_NUMBER)
        _wait_alert(box, "Error")
    if q.answer_from is None:
        right = f"{q.answer!r}"
    else:  # the learner's own number: the page reveals it after a wrong answer
        box.get_by_text("Show the answer and why").click()
        shown = box.get_by_text(re.compile(r"^Expected ")).first
        shown.wait_for()
        right = re.match(r"Expected (?:about )?(-?[\d.]+(?:e[-+]?\d+)?)", shown.inner_text()).group(1)
    _type_number(box, key, right)
    _wait_alert(box, "Success", "Correct")


def _reflection(page, box, quiz: Quiz, q: Reflection, key: str, learner_id: int, wrong_first: bool) -> None:
    area = box.locator("textarea")
    if wrong_first:
        area.fill("Too short.")
        area.press("Control+Enter")
        _check(box, key)
        _wait_alert(box, "Warning", "at least")
    text = "What I take from this lesson: the model only ever learns to predict the next token, and everything "
    area.fill(text + "else follows from the data, the model's size and the compute it is given. " * (q.min_chars // 50))
    area.press("Control+Enter")
    _check(box, key)
    _wait_alert(box, "Info", "Saved")


ANSWER = {"single_choice": _single, "multiple_select": _multiple, "fill_blanks": _blanks, "ordering": _ordering,
          "numeric": _numeric, "reflection": _reflection}


# ------------------------------------------------------------------ cards that feed the quizzes


def _train_tiny_run(page, lesson, card_index: int, runs_dir, server) -> None:
    """Start a run with the tiny preset, go Home and come back to it, reload: the same run each time."""
    key = f"{lesson.id}-{lesson.cards[card_index].id}"
    page.get_by_text("Tiny (seconds, a toy)").click()
    page.get_by_text("The tiny preset runs a fixed").first.wait_for()
    page.locator(f".st-key-{key}-start button").click()
    status = re.compile("⏳ Queued|🟢 Running|✅ Finished")
    page.get_by_text(status).first.wait_for()

    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.locator("a").filter(has_text="Home").first.click()
    page.locator(f".st-key-home-lesson-{lesson.id}").wait_for()
    assert_clean(page, "Home, while the run trains")
    nav.locator(f'a[href$="/lesson-{lesson.number}"]').click()
    page.get_by_text(f"Card {card_index + 1} / {len(lesson.cards)}", exact=True).first.wait_for()
    page.get_by_text(status).first.wait_for()
    page.get_by_text("✅ Finished").first.wait_for(timeout=180_000)  # tiny: 60 steps

    page.reload()
    page.get_by_text(f"Card {card_index + 1} / {len(lesson.cards)}", exact=True).first.wait_for()
    page.get_by_text("✅ Finished").first.wait_for()
    assert len(_run_folders(runs_dir)) == 1  # one run, found again each time


def _run_folders(runs_dir) -> list:
    """Training runs' folders (each has a summary.json); the retrieval index lives beside them."""
    return [d for d in runs_dir.iterdir() if (d / "summary.json").exists()]


def _card_work(page, lesson, index: int, runs_dir, server) -> None:
    """What a learner does on a card whose results a quiz asks about; every other card is only looked at."""
    widget = lesson.cards[index].widget
    name = widget.name if widget else None
    if widget is not None and widget.reveal:  # the card asks for a guess first: give it, and see the demo drawn
        page.get_by_role("button", name=widget.reveal).click()
        page.get_by_text("The engine code behind this demo").first.wait_for()
    if name == "dedup_lab":
        page.locator('[data-testid="stMetric"]').filter(has_text="Documents in").wait_for()  # the fact is saved
    elif name == "bpe_trainer":
        page.get_by_role("button", name="Train my tokenizer").click()
        page.get_by_text("Characters per token").first.wait_for(timeout=120_000)
    elif name == "train_run" and lesson.id == LESSON7:
        _train_tiny_run(page, lesson, index, runs_dir, server)


# ------------------------------------------------------------------ the journey


def _walk(page, server, entry, learner_id: int, runs_dir, wrong_first: set[tuple[str, str]]) -> None:
    """One lesson: every card, then every question. The first question of each kind in the course (and every
    question about the learner's own numbers, which a wrong answer reveals) is answered wrong first; its
    (quiz, question) goes into `wrong_first`."""
    lesson, quiz = entry.lesson, entry.quiz
    page.goto(f"{server.url}/lesson-{lesson.number}")
    page.get_by_text(f"Card 1 / {len(lesson.cards)}", exact=True).first.wait_for()
    for index, card in enumerate(lesson.cards):
        assert card_shown(page) == index + 1
        page.get_by_role("heading", name=card.title).first.wait_for()
        _card_work(page, lesson, index, runs_dir, server)
        assert_clean(page, f"lesson {lesson.number}, card {index + 1} ({card.id})")
        if index < len(lesson.cards) - 1:
            next_card(page, lesson)
    if quiz is None:
        page.locator(f".st-key-lesson-{lesson.id}-finish button").click()
    else:
        kinds_seen = {kind for kind, _ in wrong_first}
        by_hand = []
        for i, q in enumerate(quiz.questions):
            first_of_kind = q.type not in kinds_seen
            kinds_seen.add(q.type)
            own_number = getattr(q, "answer_from", None) is not None
            if first_of_kind or own_number or i == 0:
                by_hand.append((q, first_of_kind))
            else:
                _answer_in_the_store(server, learner_id, quiz, q)
        page.locator(f".st-key-lesson-{lesson.id}-to-quiz button").click()
        for q, first_of_kind in by_hand:
            key = f"quiz-{quiz.id}-{q.id}"
            box = page.locator(f".st-key-qbox-{quiz.id}-{q.id}")
            box.wait_for()
            if first_of_kind or getattr(q, "answer_from", None) is not None:
                wrong_first.add((q.type, f"{quiz.id}/{q.id}"))
            ANSWER[q.type](page, box, quiz, q, key, learner_id, first_of_kind)
        for q in quiz.questions:  # the stored answers are drawn as answered
            page.locator(f".st-key-qbox-{quiz.id}-{q.id}").wait_for()
        assert_clean(page, f"lesson {lesson.number}'s quiz")
        finish = page.locator(f".st-key-lesson-{lesson.id}-finish button")
        page.wait_for_function("(el) => !el.disabled", arg=finish.element_handle())
        finish.click()
    page.locator(f".st-key-lesson-{lesson.id}-complete").wait_for()
    assert_clean(page, f"lesson {lesson.number} complete")


REFLECTION = ("What I take from this lesson: the model only ever learns to predict the next token, and everything "
              "else follows from the data, the model's size and the compute it is given. ")


def _answer_in_the_store(server, learner_id: int, quiz: Quiz, q) -> None:
    """Answer `q` right in the progress store, as its page would store it."""
    right = {"single_choice": lambda: q.answer, "multiple_select": lambda: list(q.answers),
             "fill_blanks": lambda: list(q.answers), "ordering": lambda: [i.id for i in q.items],
             "numeric": lambda: float(q.answer), "reflection": lambda: REFLECTION * (1 + q.min_chars // 50)}
    store = ProgressStore(server.db)
    try:
        store.record_answer(learner_id, quiz.id, q.id, right[q.type](), None if isinstance(q, Reflection) else True)
    finally:
        store.close()


def _assert_all_saved(db, entries, learner_id: int, wrong_first: set[tuple[str, str]]) -> None:
    store = ProgressStore(db)
    try:
        assert store.completed(learner_id) >= {e.lesson.id for e in entries}
        for entry in entries:
            if entry.quiz is None:
                continue
            records = store.quiz_records(learner_id, entry.quiz.id)
            for q in entry.quiz.questions:
                record = records.get(q.id)
                assert record is not None, f"{entry.quiz.id}/{q.id}: answer lost"
                if isinstance(q, Reflection):
                    assert len(record.last.response) >= q.min_chars
                elif (q.type, f"{entry.quiz.id}/{q.id}") in wrong_first:  # the wrong try is kept beside the right
                    assert record.last.correct and not record.first_correct, f"{entry.quiz.id}/{q.id}"
                    assert record.attempts >= 2
                else:
                    assert record.last.correct, f"{entry.quiz.id}/{q.id}"
    finally:
        store.close()


def test_the_whole_course_in_one_walk_and_all_of_it_read_back(runs_dir, server, browser):
    entries = [e for e in load_course().entries if e.ok]
    assert entries
    store = ProgressStore(server.db)
    learner_id = store.get_or_create_learner("Guest").id
    store.close()

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(60_000)
    wrong_first: set[tuple[str, str]] = set()
    for entry in entries:
        _walk(page, server, entry, learner_id, runs_dir, wrong_first)
    assert {kind for kind, _ in wrong_first} == set(ANSWER)  # every kind of question was answered wrong once
    _assert_all_saved(server.db, entries, learner_id, wrong_first)

    _assert_all_saved(server.db, entries, learner_id, wrong_first)
    page.goto(f"{server.url}/")
    for entry in entries:  # each lesson complete, its quiz's score counted from the stored answers
        tile = page.locator(f".st-key-home-lesson-{entry.lesson.id}")
        badge = "Completed"
        if entry.quiz is not None:
            graded = sum(1 for q in entry.quiz.questions if is_graded(q))
            badge = f"Completed · quiz {graded}/{graded}"
        tile.get_by_text(badge, exact=True).first.wait_for()
    assert_clean(page, "Home, opened afresh")
    page.goto(f"{server.url}/progress")
    page.get_by_role("heading", name=re.compile("My progress")).first.wait_for()
    assert_clean(page, "My progress, opened afresh")
    last = entries[-1]
    page.goto(f"{server.url}/lesson-{last.lesson.number}")  # a lesson reopens on its completion screen
    done = page.locator(f".st-key-lesson-{last.lesson.id}-complete")
    if last.quiz is not None:
        n = len(last.quiz.questions)
        done.locator('[data-testid="stMetric"]').filter(has_text="Questions answered").filter(
            has_text=f"{n} / {n}").wait_for()
    done.wait_for()
    assert_clean(page, f"lesson {last.lesson.number}, opened afresh")

    lesson, card = put_on_card(server, LESSON7, widget="train_run")  # back to the run's card
    page.goto(f"{server.url}/lesson-{lesson.number}")
    page.get_by_text(f"Card {card + 1} / {len(lesson.cards)}", exact=True).first.wait_for()
    page.get_by_text("✅ Finished").first.wait_for()
    page.get_by_text(re.compile(r"Step")).first.wait_for()  # its numbers, drawn just after its status
    assert len(_run_folders(runs_dir)) == 1
    assert_clean(page, "lesson 7's run, opened afresh")
