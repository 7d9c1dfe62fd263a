"""record who approved each script version, its review date and where it came from

Revision ID: 3f8a2c6d9e14
Revises: 4b7e2c9d1a60
Create Date: 2026-12-01 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f8a2c6d9e14"
down_revision: str | Sequence[str] | None = "4b7e2c9d1a60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("script_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approved_by_user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("review_due", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("based_on_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("shipped_sha", sa.String(length=64), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_script_versions_approved_by_user_id_users"),
            "users",
            ["approved_by_user_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_script_versions_based_on_id_script_versions"),
            "script_versions",
            ["based_on_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("script_versions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_script_versions_based_on_id_script_versions"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_script_versions_approved_by_user_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("shipped_sha")
        batch_op.drop_column("based_on_id")
        batch_op.drop_column("review_due")
        batch_op.drop_column("approved_by_user_id")
