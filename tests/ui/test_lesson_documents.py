"""The lesson cards as retrieval documents: every card with its title and text, named as the labelled questions
name them, and only from the course the loader loaded (a broken lesson file is left out, not read around)."""

from __future__ import annotations

import shutil
from pathlib import Path

from course.loader import load_course
from ui.lesson_documents import lesson_documents

ROOT = Path(__file__).resolve().parents[2]
MARKER = "zebracorn"  # a word no shipped lesson uses


def other_content(folder: Path) -> Path:
    """A content folder of its own: lesson 5 with one card rewritten, and a lesson file that does not parse."""
    (folder / "lessons").mkdir(parents=True)
    shutil.copytree(ROOT / "quizzes", folder / "quizzes")
    text = (ROOT / "lessons" / "05-embeddings.yaml").read_text(encoding="utf-8")
    text = text.replace("title: How big is the table?", f"title: How big is the {MARKER} table?")
    (folder / "lessons" / "05-embeddings.yaml").write_text(text, encoding="utf-8")
    (folder / "lessons" / "06-broken.yaml").write_text("id: broken\ncards: [unclosed\n", encoding="utf-8")
    return folder


def test_every_card_with_its_title_and_text() -> None:
    docs = lesson_documents(load_course())
    ids = [d.id for d in docs]
    assert len(ids) == len(set(ids)) and len(docs) == sum(len(lesson.cards) for lesson in load_course().lessons)
    table = next(d for d in docs if d.id == "lesson-05/table-size")
    assert table.source == "Lesson 5, How big is the table?"
    assert table.text.startswith("How big is the table?") and "V × C" in table.text
    assert "What to notice" in table.text, "a card's `after` text is searched too"


def test_only_the_lessons_the_loader_accepted(tmp_path: Path) -> None:
    folder = other_content(tmp_path / "draft")
    course = load_course(folder / "lessons", folder / "quizzes")
    assert course.problems, "the broken file is reported by the loader"
    docs = lesson_documents(course)
    assert docs and all(d.id.startswith("lesson-05/") for d in docs)
    assert next(d for d in docs if d.id == "lesson-05/table-size").source == f"Lesson 5, How big is the {MARKER} table?"
