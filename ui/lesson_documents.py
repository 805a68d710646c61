"""The course's lesson cards as retrieval documents: what lesson 10's RAG playground searches as "the lesson text".

The engine takes documents as plain data (`engine.retrieve.chunking.Document`) and never reads lessons itself, so
the text comes from the course the pages show: `ui.session.course()`, loaded and checked by `course.loader` (only
lessons that passed the content checks, from `$LLM_COURSE_CONTENT` when it points elsewhere). One document per
card: its title, then its body and its "what to notice" text, so a retrieved passage can say "Lesson 5, How big is
the table?". Ids are "lesson-NN/<card id>", the names data/retrieval_questions.yaml uses for its labelled answers.
No Streamlit here, so the retrieval benchmark builds the same documents from the same loader.
"""

from __future__ import annotations

from course.loader import Course
from engine.retrieve.chunking import Document


def lesson_documents(course: Course) -> list[Document]:
    """One document per card of every lesson that loaded, lessons in number order, cards in lesson order.

    >>> from course.loader import load_course
    >>> card = {d.id: d for d in lesson_documents(load_course())}["lesson-05/table-size"]
    >>> card.source, card.text.splitlines()[0]
    ('Lesson 5, How big is the table?', 'How big is the table?')
    """
    docs = []
    for lesson in course.lessons:
        for card in lesson.cards:
            title = card.title.strip()
            parts = [title, card.body.strip(), card.after.strip()]
            docs.append(Document(f"lesson-{lesson.number:02d}/{card.id}", f"Lesson {lesson.number}, {title}",
                                 "\n\n".join(p for p in parts if p)))
    return docs
