"""Learner names compared by a casefolded key column, not by SQLite's COLLATE NOCASE, so PostgreSQL keeps the same
rule (one learner for "Ada", "ADA" and "ada"). Existing names get their key here; should two old names fold to one
key (NOCASE folds ASCII letters only, casefolding folds more), the later learner's key gets its id appended, so no
row is lost or merged.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("learners", sa.Column("name_key", sa.Text, nullable=True))
    bind = op.get_bind()
    learners = sa.table("learners", sa.column("id", sa.Integer), sa.column("name", sa.Text),
                        sa.column("name_key", sa.Text))
    taken: set[str] = set()
    for learner_id, name in bind.execute(sa.select(learners.c.id, learners.c.name).order_by(learners.c.id)):
        key = name.casefold()  # course.progress_schema.name_key as it is at this revision
        if key in taken:
            key = f"{key}#{learner_id}"
        taken.add(key)
        bind.execute(learners.update().where(learners.c.id == learner_id).values(name_key=key))
    with op.batch_alter_table("learners") as batch:
        batch.alter_column("name_key", existing_type=sa.Text, nullable=False)
        batch.create_unique_constraint("uq_learners_name_key", ["name_key"])


def downgrade() -> None:
    with op.batch_alter_table("learners") as batch:
        batch.drop_constraint("uq_learners_name_key", type_="unique")
        batch.drop_column("name_key")
