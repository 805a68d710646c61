"""The progress database as the course made it before migrations: learners, positions, answers, completions, facts.

A database made by that code has these tables and no `alembic_version`; upgrading it runs this revision, which
creates only the tables that are missing, so its rows stay where they are.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    sqlite = op.get_bind().dialect.name == "sqlite"
    if "learners" not in existing:
        # SQLite compared names case-blind with COLLATE NOCASE; revision 0002 moves that to a column any database has.
        name_type = sa.Text(collation="NOCASE") if sqlite else sa.Text()
        op.create_table(
            "learners",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", name_type, nullable=False, unique=True),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("last_seen", sa.Float, nullable=False, server_default="0"))
    if "positions" not in existing:
        op.create_table(
            "positions",
            sa.Column("learner_id", sa.Integer, nullable=False), sa.Column("lesson_id", sa.Text, nullable=False),
            sa.Column("card", sa.Integer, nullable=False), sa.Column("updated_at", sa.Float, nullable=False),
            sa.PrimaryKeyConstraint("learner_id", "lesson_id"))
    if "answers" not in existing:
        op.create_table(
            "answers",
            sa.Column("id", sa.Integer, primary_key=True), sa.Column("learner_id", sa.Integer, nullable=False),
            sa.Column("quiz_id", sa.Text, nullable=False), sa.Column("question_id", sa.Text, nullable=False),
            sa.Column("response", sa.Text, nullable=False), sa.Column("correct", sa.Integer),
            sa.Column("created_at", sa.Float, nullable=False))
        op.create_index("answers_by_quiz", "answers", ["learner_id", "quiz_id", "question_id", "id"])
    if "completions" not in existing:
        op.create_table(
            "completions",
            sa.Column("learner_id", sa.Integer, nullable=False), sa.Column("lesson_id", sa.Text, nullable=False),
            sa.Column("completed_at", sa.Float, nullable=False), sa.PrimaryKeyConstraint("learner_id", "lesson_id"))
    if "facts" not in existing:
        op.create_table(
            "facts",
            sa.Column("learner_id", sa.Integer, nullable=False), sa.Column("key", sa.Text, nullable=False),
            sa.Column("value", sa.Text, nullable=False), sa.Column("updated_at", sa.Float, nullable=False),
            sa.PrimaryKeyConstraint("learner_id", "key"))


def downgrade() -> None:
    for table in ("facts", "completions", "answers", "positions", "learners"):
        op.drop_table(table)
