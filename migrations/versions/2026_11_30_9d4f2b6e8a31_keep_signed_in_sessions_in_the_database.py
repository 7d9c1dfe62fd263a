"""keep signed-in sessions in the database

Revision ID: 9d4f2b6e8a31
Revises: 7c1e5a9f3b20
Create Date: 2026-11-30 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d4f2b6e8a31"
down_revision: str | Sequence[str] | None = "7c1e5a9f3b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signin_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_signin_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signin_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_signin_sessions_token_hash")),
    )
    with op.batch_alter_table("signin_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signin_sessions_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signin_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signin_sessions_user_id"))
    op.drop_table("signin_sessions")
