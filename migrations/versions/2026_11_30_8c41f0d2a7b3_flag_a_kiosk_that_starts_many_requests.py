"""flag a kiosk that starts many requests in a short time

Revision ID: 8c41f0d2a7b3
Revises: 9d4f2b6e8a31
Create Date: 2026-11-30 23:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8c41f0d2a7b3"
down_revision: str | Sequence[str] | None = "9d4f2b6e8a31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kiosk_burst", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.drop_column("kiosk_burst")
