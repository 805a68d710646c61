"""Hostile input in a real browser. Script and image tags with event handlers, SVG onload, an iframe with srcdoc and
`javascript:` links are typed or pasted everywhere learner text is shown (a profile name, a pasted corpus and an
uploaded file's name, the tokenizer playground, a sampling prompt, a quiz reflection and My progress); nothing may
run (no dialog, `window.__pwned` stays undefined) and no element built from them may appear in the page, while the
text itself is on screen. Hostile uploads (a ZIP renamed to .txt, Latin-1, an empty file, one over the limit) are
refused with a reason and the picker keeps working. Both run on the test run's shared server, each with learners
of its own."""

from __future__ import annotations

import io
import zipfile

import pytest

from bench.app_server import Server
from course.loader import load_course
from course.progress import ProgressStore
from tests.e2e.conftest import new_learner

pytestmark = pytest.mark.browser

NAME = "<img src=x onerror=window.__pwned=1>"  # 36 characters: a profile name may have 40
PAYLOAD = ('<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1;alert(1)">'
           '<svg onload="alert(1)"></svg><a href="javascript:window.__pwned=1">js</a> [md link](javascript:alert(1)) '
           '<iframe srcdoc="<script>parent.__pwned=1</script>"></iframe>')
PROSE = "An ordinary sentence of my own, long enough to train a tiny model on. " * 16

# Every element the payloads could have created, found by what they carry; Streamlit's own page has none of them.
FOUND = """() => {
  const all = [...document.querySelectorAll('*')];
  const carries = v => /__pwned|alert\\(/.test(v || '');
  return {
    pwned: typeof window.__pwned,
    scripts: [...document.scripts].filter(s => carries(s.textContent)).length,
    handlers: all.filter(e => [...e.attributes].some(a => /^on/i.test(a.name) && carries(a.value)))
                 .map(e => e.outerHTML.slice(0, 160)),
    jsLinks: all.filter(e => ['href', 'src', 'xlink:href', 'action', 'formaction']
                 .some(n => /^\\s*javascript:/i.test(e.getAttribute(n) || ''))).map(e => e.outerHTML.slice(0, 160)),
    images: [...document.querySelectorAll('img[src="x"]')].length,
    frames: [...document.querySelectorAll('iframe[srcdoc]')].length,
  };
}"""


def _open_at(page, server: Server, learner_id: int, lesson_id: str, widget: str | None = None) -> str:
    """Open a lesson on the card showing `widget` (on its quiz when None); returns the lesson's key prefix."""
    lesson = load_course().entry(lesson_id).lesson
    card = len(lesson.cards) if widget is None else next(
        i for i, c in enumerate(lesson.cards) if c.widget and c.widget.name == widget)
    store = ProgressStore(server.db)
    store.set_card(learner_id, lesson.id, card)
    store.close()
    page.goto(f"{server.url}/lesson-{lesson.number}")
    title = lesson.cards[card].title if widget else None
    if title:
        page.get_by_role("heading", name=title).first.wait_for()
    return f"{lesson.id}-{lesson.cards[card].id}" if widget else lesson.id


def _nothing_ran(page, dialogs: list[str], where: str) -> None:
    found = page.evaluate(FOUND)
    assert dialogs == [], (where, dialogs)
    assert found == {"pwned": "undefined", "scripts": 0, "handlers": [], "jsLinks": [], "images": 0, "frames": 0}, \
        (where, found)


def _shown_as_text(page, text: str) -> None:
    """Wait until `text` is on the page as text (ignoring the invisible word joiners `ui.text.escape_md` puts after
    `<`, `>`, `:` and `-` so Streamlit leaves them alone)."""
    try:
        page.wait_for_function("t => document.body.innerText.replaceAll('\\u2060', '').includes(t)", arg=text)
    except Exception as err:  # say what was on the page instead
        raise AssertionError(f"{text!r} not on the page; its end: {page.inner_text('body')[-1500:]!r}") from err


def test_markup_typed_or_pasted_anywhere_is_shown_as_text_and_never_runs(course_server, browser):
    server = course_server
    me, _ = new_learner(server, NAME)  # the most recent learner: a fresh tab opens this profile
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.set_default_timeout(60_000)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # The profile name: the sidebar's picker and Home's greeting.
    page.goto(server.url)
    _shown_as_text(page, "Welcome, <img src=x onerror")
    _nothing_ran(page, dialogs, "home")

    # A pasted corpus (lesson 3) and an upload whose file name is markup.
    key = _open_at(page, server, me, "extract", "corpus_picker")
    page.locator('[data-testid="stExpander"] summary').filter(has_text="Bring your own text").click()
    area = page.locator(f".st-key-{key}-paste textarea")
    area.fill(PAYLOAD + PROSE)
    area.press("Control+Enter")
    page.locator(f".st-key-{key}-paste-use button").click()
    page.get_by_text("is saved as your corpus").wait_for()
    page.locator('[data-testid="stExpander"] summary').filter(has_text="Peek at three documents").click()
    _shown_as_text(page, "<script>window.__pwned=1</script>")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": "<img src=x onerror=alert(1)>.txt", "mimeType": "text/plain",
                "buffer": (PAYLOAD + PROSE + " again").encode()}])
    _shown_as_text(page, "“<img src=x onerror=alert(1)>.txt” is saved")
    _nothing_ran(page, dialogs, "corpus picker")

    # The tokenizer playground (lesson 4): the text as token chips.
    key = _open_at(page, server, me, "tokenization", "tokenizer_playground")
    area = page.locator(f".st-key-{key}-text textarea")
    area.fill(PAYLOAD)
    area.press("Control+Enter")
    _shown_as_text(page, f"{len(PAYLOAD)} tokens")  # the character tokenizer's chips: one per character, as text
    _nothing_ran(page, dialogs, "tokenizer playground")

    # A sampling prompt (lesson 8).
    key = _open_at(page, server, me, "sampling", "next_token_probs")
    prompt = page.locator(f".st-key-{key}-prompt input")
    prompt.fill(PAYLOAD)
    prompt.press("Enter")
    # The reference model reads Shakespeare's characters only: the page names the first one it cannot read, as text.
    _shown_as_text(page, "character '<' is not in this tokenizer's vocabulary")
    _nothing_ran(page, dialogs, "sampling prompt")

    # A quiz reflection (lesson 1), then My progress, which lists it.
    quiz = load_course().entry("big-picture").quiz
    question = next(q for q in quiz.questions if q.type == "reflection")
    _open_at(page, server, me, "big-picture")
    box_key = f"quiz-{quiz.id}-{question.id}"
    area = page.locator(f".st-key-{box_key} textarea")
    area.fill(PAYLOAD)
    area.press("Control+Enter")
    page.locator(f".st-key-{box_key}-check button").click()
    page.get_by_text("Saved").first.wait_for()
    _nothing_ran(page, dialogs, "quiz reflection")
    page.goto(f"{server.url}/progress")
    _shown_as_text(page, "Your reflections")
    _shown_as_text(page, "<svg onload=")
    _nothing_ran(page, dialogs, "my progress")
    page.close()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("book.txt", PROSE)
    return buf.getvalue()


def test_hostile_uploads_are_refused_with_a_reason_and_the_picker_keeps_working(course_server, browser):
    server = course_server
    me, _ = new_learner(server)
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.set_default_timeout(60_000)
    _open_at(page, server, me, "extract", "corpus_picker")
    page.locator('[data-testid="stExpander"] summary').filter(has_text="Bring your own text").click()
    drop = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    for name, data, words in [
        ("novel.txt", _zip(), "is a ZIP archive"),
        ("latin.txt", ("café crème " * 200).encode("latin-1"), "is not valid UTF-8"),
        ("empty.txt", b"", "is empty"),
        ("..\\..\\etc\\passwd", b"\x00\x01binary", "NUL byte"),
    ]:
        drop.set_input_files(files=[{"name": name, "mimeType": "text/plain", "buffer": data}])
        page.locator('[data-testid="stAlertContentError"]').filter(has_text=words).wait_for()
        refusal = page.locator('[data-testid="stAlertContentError"]').inner_text()
        assert "was refused" in refusal and "\\" not in refusal.split("was refused")[0], refusal
    # Over the limit: the browser refuses it before sending, with the limit in its message.
    drop.set_input_files(files=[{"name": "big.txt", "mimeType": "text/plain", "buffer": b"a" * (2 * 2**20 + 1)}])
    page.get_by_text("2.0MB", exact=False).first.wait_for()
    # The rest of the picker still works: the corpus list switches, the numbers follow.
    page.get_by_text("Tiny Shakespeare").first.click()
    page.locator('[data-testid="stMetric"]').filter(has_text="Documents").wait_for()
    drop.set_input_files(files=[{"name": "fine.txt", "mimeType": "text/plain", "buffer": PROSE.encode()}])
    page.get_by_text("“fine.txt” is saved as your corpus").wait_for()
    assert not page.locator('[data-testid="stException"]').count()
    page.close()
