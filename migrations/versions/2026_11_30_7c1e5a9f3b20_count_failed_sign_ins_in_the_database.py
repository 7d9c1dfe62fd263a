"""count failed sign-ins in the database, per email and per client address

Revision ID: 7c1e5a9f3b20
Revises: 3aa8704c10e9
Create Date: 2026-11-30 23:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c1e5a9f3b20"
down_revision: str | Sequence[str] | None = "3aa8704c10e9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signin_throttles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("forget_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signin_throttles")),
        sa.UniqueConstraint("key", name=op.f("uq_signin_throttles_key")),
    )
    with op.batch_alter_table("signin_throttles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signin_throttles_forget_at"), ["forget_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("signin_throttles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signin_throttles_forget_at"))
    op.drop_table("signin_throttles")
