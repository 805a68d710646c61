"""A learner can be a signed-in person (class mode): the identity provider's subject, unique, and their email.

Local profiles (one learner, `make run`) leave both empty. The unique index ignores empty subjects on SQLite and
PostgreSQL alike (NULLs are distinct), so any number of local profiles fit beside the signed-in learners.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("learners", sa.Column("subject", sa.Text, nullable=True))
    op.add_column("learners", sa.Column("email", sa.Text, nullable=True))
    op.create_index("learners_by_subject", "learners", ["subject"], unique=True)


def downgrade() -> None:
    op.drop_index("learners_by_subject", table_name="learners")
    with op.batch_alter_table("learners") as batch:
        batch.drop_column("email")
        batch.drop_column("subject")
