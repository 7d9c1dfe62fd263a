"""walk open and stood-down encounters newest first by partial indexes

Revision ID: 9a4f2c7e1d85
Revises: c4e8a1f03b7d
Create Date: 2026-12-01 05:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9a4f2c7e1d85"
down_revision: str | Sequence[str] | None = "c4e8a1f03b7d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status != 'resolved'"
STOOD_DOWN = "stood_down_at IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_encounters_stood_down_at", table_name="encounters")
    for name, condition in (
        ("ix_encounters_open_started", OPEN),
        ("ix_encounters_stood_down_started", STOOD_DOWN),
    ):
        op.create_index(
            name,
            "encounters",
            ["started_at"],
            unique=False,
            sqlite_where=sa.text(condition),
            postgresql_where=sa.text(condition),
        )


def downgrade() -> None:
    op.drop_index("ix_encounters_stood_down_started", table_name="encounters")
    op.drop_index("ix_encounters_open_started", table_name="encounters")
    op.create_index("ix_encounters_stood_down_at", "encounters", ["stood_down_at"], unique=False)
