"""The progress database's tables, as the newest migration leaves them (course/migrations holds how they got here).

One definition serves SQLite (one learner, `make run`) and PostgreSQL (a class): plain types only, times as seconds
since the epoch (float), answers and facts as JSON text. The store (`course.progress`) queries these objects; the
migrations create and change the real tables, and a test checks that the two agree.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, PrimaryKeyConstraint, Table, Text

metadata = MetaData()

learners = Table(
    "learners", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),  # as the learner typed it (normalised), shown on the page
    Column("name_key", Text, nullable=False, unique=True),  # casefolded: "Ada" and "ADA" are one learner
    Column("created_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False, server_default="0"),
    Column("subject", Text),  # class mode: the identity provider's subject ("sub" claim); None for a local profile
    Column("email", Text),  # class mode: the email the provider gave, shown to the instructor
    Index("learners_by_subject", "subject", unique=True),
)

positions = Table(
    "positions", metadata,
    Column("learner_id", Integer, nullable=False),
    Column("lesson_id", Text, nullable=False),
    Column("card", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
    PrimaryKeyConstraint("learner_id", "lesson_id"),
)

answers = Table(
    "answers", metadata,
    Column("id", Integer, primary_key=True),  # the order answers were given in
    Column("learner_id", Integer, nullable=False),
    Column("quiz_id", Text, nullable=False),
    Column("question_id", Text, nullable=False),
    Column("response", Text, nullable=False),  # JSON
    Column("correct", Integer),  # 1, 0, or NULL for an ungraded reflection
    Column("created_at", Float, nullable=False),
    Index("answers_by_quiz", "learner_id", "quiz_id", "question_id", "id"),
)

completions = Table(
    "completions", metadata,
    Column("learner_id", Integer, nullable=False),
    Column("lesson_id", Text, nullable=False),
    Column("completed_at", Float, nullable=False),
    PrimaryKeyConstraint("learner_id", "lesson_id"),
)

facts = Table(
    "facts", metadata,
    Column("learner_id", Integer, nullable=False),
    Column("key", Text, nullable=False),
    Column("value", Text, nullable=False),  # JSON
    Column("updated_at", Float, nullable=False),
    PrimaryKeyConstraint("learner_id", "key"),
)

LEARNER_TABLES = (positions, answers, completions, facts)  # every table whose rows belong to one learner


SIGNED_IN_KEY_PREFIX = "\x1fsigned-in\x1f"  # no typed name can start so: names holding control characters are refused


def signed_in_key(subject: str) -> str:
    """The name key of a signed-in learner: from their subject, never from their name, so two people with one name
    are two learners, and no local profile's name can ever match it."""
    return SIGNED_IN_KEY_PREFIX + subject


def name_key(name: str) -> str:
    """The form two learner names are compared in: casefolded (so "Ada", "ADA" and "ada" are one learner).

    >>> name_key("Ada") == name_key("ADA") == name_key("ada")
    True
    >>> name_key("Straße") == name_key("STRASSE")
    True
    """
    return name.casefold()
