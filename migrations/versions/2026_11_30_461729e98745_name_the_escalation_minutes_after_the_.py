"""name the escalation minutes after the level they start

Rename schools.level1_minutes to level2_after_minutes and level2_minutes to
level3_after_minutes (minutes after the tap before level 2, resp. level 3, is alerted).
A rename, never a drop and add: every school keeps its minutes.

Revision ID: 461729e98745
Revises: b024975e92cb
Create Date: 2026-11-30 20:50:11.759401
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "461729e98745"
down_revision: str | Sequence[str] | None = "b024975e92cb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RENAMES = (("level1_minutes", "level2_after_minutes"), ("level2_minutes", "level3_after_minutes"))


def _rename(pairs: Sequence[tuple[str, str]]) -> None:
    with op.batch_alter_table("schools", schema=None) as batch_op:
        for old, new in pairs:
            batch_op.alter_column(
                old, new_column_name=new, existing_type=sa.Integer(), existing_nullable=False
            )


def upgrade() -> None:
    _rename(RENAMES)


def downgrade() -> None:
    _rename([(new, old) for old, new in RENAMES])
