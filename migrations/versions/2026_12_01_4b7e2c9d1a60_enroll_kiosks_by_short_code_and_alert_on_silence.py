"""enroll kiosks by short code and alert on silence

Revision ID: 4b7e2c9d1a60
Revises: 4f8a2c6e9b13
Create Date: 2026-12-01 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4b7e2c9d1a60"
down_revision: str | Sequence[str] | None = "4f8a2c6e9b13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("kiosks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enrollment_code_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("enrollment_code_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("silence_alerted_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_kiosks_enrollment_code_hash"), ["enrollment_code_hash"]
        )


def downgrade() -> None:
    with op.batch_alter_table("kiosks", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_kiosks_enrollment_code_hash"), type_="unique")
        batch_op.drop_column("silence_alerted_at")
        batch_op.drop_column("enrollment_code_expires_at")
        batch_op.drop_column("enrollment_code_hash")
