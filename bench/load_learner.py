"""One learner of the load benchmark, in a browser context of its own: what it clicks and how a click is timed.

Each learner makes its own profile through the sidebar's "New profile" form, then either steps through lessons
with Next and answers each single-choice quiz question with its first option, or (the first `trainers` of them)
opens lesson 7's training card, starts the tiny preset and waits for the run to finish. Before each click it reads
the screen for a few seconds (`READ_S`), and learners arrive one after another (`ARRIVE_EVERY_S`), as a class
would. A click is timed from the moment the button can take it until the page has settled. The lessons and quizzes
come from the course loader (`course.loader.Course`), the same content the server shows.
"""

from __future__ import annotations

import asyncio
import random
import time

from bench.app_server import CHROMIUM_FLAGS
from bench.load_summary import LearnerResult
from course.loader import Course, LessonEntry
from course.schema import Lesson, SingleChoice

TRAIN_LESSON = 7  # the lesson whose training card the trainers use
WALK_LESSONS = (1, 2)  # light lessons the others step through and answer
# Seconds a learner spends on a screen before the next click, drawn between these for each click: reading a card or
# a question. A real learner reads a card for half a minute or more; 5-10 s keeps ten learners clicking between
# one and two times a second between them, a class at its busiest (a few times faster than people read), while
# not timing clicks no person would make. `--read 0 0` measures the other extreme, every click as soon as it can.
READ_S = (5.0, 10.0)
ARRIVE_EVERY_S = 3.0  # learners open the course one after another, ten in half a minute


class _Learner:
    def __init__(self, ctx, url: str, result: LearnerResult, read_s: tuple[float, float], seed: int):
        self.ctx, self.url, self.result = ctx, url, result
        self.read_s, self.rng = read_s, random.Random(seed)  # seeded: the same pauses in every run
        self.page = None

    async def settle(self, expect) -> None:
        """Wait until `expect` (a locator) is on the page and the script has stopped running."""
        await expect.first.wait_for()
        # polled on animation frames: true only once the browser is free to draw a frame after the script ended
        await self.page.wait_for_function(
            "() => document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState !== 'running'",
            polling="raf")

    async def click(self, target, expect, what: str) -> None:
        """Time one click: from the moment the button can take it (Playwright's actionability checks run first, as
        a trial click, so a click is not charged for the page before it still drawing) until the page has settled.
        Before it, the learner reads the screen for a few seconds (READ_S)."""
        await asyncio.sleep(self.rng.uniform(*self.read_s))
        await target.click(trial=True)
        t0 = time.perf_counter()
        await target.click()
        await self.settle(expect)
        self.result.clicks.append(time.perf_counter() - t0)
        self.result.clicked.append(what)

    async def open_as_new_profile(self) -> None:
        self.page = await self.ctx.new_page()
        self.page.set_default_timeout(180_000)
        await self.page.goto(self.url)
        sidebar = self.page.locator('[data-testid="stSidebar"]')
        await sidebar.get_by_role("button", name="New profile").click()
        await self.page.get_by_label("Your name").fill(self.result.name)
        await self.click(self.page.get_by_role("button", name="Create and switch"),
                         self.page.get_by_text(f"Welcome, {self.result.name}"), "create profile")  # Home greets the new profile
        await self.page.keyboard.press("Escape")  # close the form, which would cover the lower lesson links

    async def open_lesson(self, lesson: Lesson) -> None:
        nav = self.page.locator('[data-testid="stSidebarNav"]')
        await self.click(nav.locator(f'a[href$="/lesson-{lesson.number}"]'),
                         self.page.get_by_text(f"Card 1 / {len(lesson.cards)}", exact=True),
                         f"open lesson {lesson.number}")

    async def next_card(self, lesson: Lesson, shown: int) -> None:
        button = self.page.locator(f".st-key-lesson-{lesson.id}-next button")
        await self.click(button, self.page.get_by_text(f"Card {shown + 1} / {len(lesson.cards)}", exact=True),
                         f"lesson {lesson.number}: Next to card {shown + 1}")

    async def walk_and_answer(self, entry: LessonEntry) -> None:
        """Every card with Next, then the quiz: each single-choice question answered with its first option."""
        lesson, quiz = entry.lesson, entry.quiz
        await self.open_lesson(lesson)
        for shown in range(1, len(lesson.cards)):
            await self.next_card(lesson, shown)
        if quiz is None:
            return
        first = quiz.questions[0].id
        await self.click(self.page.locator(f".st-key-lesson-{lesson.id}-to-quiz button"),
                         self.page.locator(f".st-key-qbox-{quiz.id}-{first}"), f"lesson {lesson.number}: Take the quiz")
        for q in quiz.questions:
            if not isinstance(q, SingleChoice):
                continue
            box = self.page.locator(f".st-key-qbox-{quiz.id}-{q.id}")
            await box.locator('[data-testid="stRadioOption"]').first.click()
            check = box.locator(f".st-key-quiz-{quiz.id}-{q.id}-check button")
            await self.click(check, box.locator('[data-testid="stAlertContentSuccess"], '
                                                '[data-testid="stAlertContentError"]'),
                             f"lesson {lesson.number}: Check {q.id}")
            self.result.answers.append((quiz.id, q.id))

    async def train(self, lesson: Lesson) -> None:
        """Lesson 7 up to its training card, the tiny preset, Start; then wait for the run to finish."""
        card = next(i for i, c in enumerate(lesson.cards) if c.widget is not None and c.widget.name == "train_run")
        await self.open_lesson(lesson)
        for shown in range(1, card + 1):
            await self.next_card(lesson, shown)
        await self.page.get_by_text("Tiny (seconds, a toy)").click()
        await self.page.get_by_text("The tiny preset runs a fixed").first.wait_for()
        key = f"{lesson.id}-{lesson.cards[card].id}"
        await self.click(self.page.locator(f".st-key-{key}-start button"),
                         self.page.get_by_text("⏳ Queued").or_(self.page.get_by_text("🟢 Running"))
                         .or_(self.page.get_by_text("✅ Finished")), "Start training")
        self.result.trained = False
        deadline = time.time() + 600
        finished = self.page.get_by_text("✅ Finished")
        queued = self.page.get_by_text("⏳ Queued")
        while time.time() < deadline:
            if await queued.count():
                self.result.saw_queue = True
            if await finished.count():
                self.result.trained = True
                return
            await asyncio.sleep(0.5)


async def _learner(browser, url: str, index: int, trainers: int, lessons: dict[int, LessonEntry],
                   result: LearnerResult, read_s: tuple[float, float]) -> None:
    await asyncio.sleep(ARRIVE_EVERY_S * index)  # learners arrive over half a minute, not in the same millisecond
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        learner = _Learner(ctx, url, result, read_s, seed=index)
        await learner.open_as_new_profile()
        if index < trainers:
            await learner.train(lessons[TRAIN_LESSON].lesson)
        else:
            order = WALK_LESSONS if index % 2 else tuple(reversed(WALK_LESSONS))
            for number in order:
                await learner.walk_and_answer(lessons[number])
    except Exception as err:  # one learner's failure is a figure, not the end of the benchmark
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        waiting = next((line for line in lines if line.startswith("- waiting for")), "")
        result.error = f"{type(err).__name__}: {lines[0][:160] if lines else ''} {waiting[:200]}".strip()
    finally:
        await ctx.close()


def lessons_by_number(course: Course) -> dict[int, LessonEntry]:
    """The course's working lessons by number, each with its quiz (None where it has none or it is broken)."""
    return {entry.lesson.number: entry for entry in course.entries if entry.ok}


async def drive(url: str | list[str], chromium: str, course: Course, results: list[LearnerResult], trainers: int,
                read_s: tuple[float, float]) -> None:
    """Every learner at once in one Chromium, each in its own browser context, until all are done. With several
    servers (`url` a list), learner i uses server i mod n, as a proxy with sticky sessions would spread them."""
    urls = [url] if isinstance(url, str) else url
    from playwright.async_api import async_playwright

    lessons = lessons_by_number(course)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            await asyncio.gather(*(_learner(browser, urls[i % len(urls)], i, trainers, lessons, r, read_s)
                                   for i, r in enumerate(results)))
        finally:
            await browser.close()
