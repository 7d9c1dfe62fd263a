"""index encounters by school and start, and by stand-down, for the review log's filters

Revision ID: 5c1d7e2a9f30
Revises: 479f815b4143
Create Date: 2026-12-01 04:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5c1d7e2a9f30"
down_revision: str | Sequence[str] | None = "479f815b4143"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_encounters_school_started", "encounters", ["school_id", "started_at"], unique=False
    )
    op.create_index("ix_encounters_stood_down_at", "encounters", ["stood_down_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_encounters_stood_down_at", table_name="encounters")
    op.drop_index("ix_encounters_school_started", table_name="encounters")
