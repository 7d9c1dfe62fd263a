"""add the legal hold and the retention purge to encounters

Revision ID: 8e3b5d1f7a42
Revises: c4e1a7b9d253
Create Date: 2026-12-01 04:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8e3b5d1f7a42"
down_revision: str | Sequence[str] | None = "c4e1a7b9d253"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("held_by_user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("hold_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_encounters_held_by_user_id_users"), "users", ["held_by_user_id"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_encounters_purged_at"), ["purged_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_encounters_purged_at"))
        batch_op.drop_constraint(
            batch_op.f("fk_encounters_held_by_user_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("purged_at")
        batch_op.drop_column("hold_reason")
        batch_op.drop_column("held_by_user_id")
        batch_op.drop_column("held_at")
