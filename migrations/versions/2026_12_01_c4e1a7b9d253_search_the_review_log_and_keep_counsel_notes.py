"""search the review log by keyed word digests, and keep counsel's privileged notes

Revision ID: c4e1a7b9d253
Revises: c41d7e2a9b58
Create Date: 2026-12-01 04:30:00.000000

The digests need the index key, which migrations never see: fill them for encounters
recorded before this revision with `flask --app app review reindex`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4e1a7b9d253"
down_revision: str | Sequence[str] | None = "c41d7e2a9b58"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "search_terms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["encounters.id"],
            name=op.f("fk_search_terms_encounter_id_encounters"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_terms")),
        sa.UniqueConstraint("encounter_id", "digest", name=op.f("uq_search_terms_encounter_id")),
    )
    with op.batch_alter_table("search_terms", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_terms_digest_encounter_id", ["digest", "encounter_id"], unique=False
        )
    op.create_table(
        "privileged_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("encounter_id", sa.Integer(), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_user_id"],
            ["users.id"],
            name=op.f("fk_privileged_notes_author_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["encounters.id"],
            name=op.f("fk_privileged_notes_encounter_id_encounters"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privileged_notes")),
        sa.UniqueConstraint("public_id", name=op.f("uq_privileged_notes_public_id")),
    )
    with op.batch_alter_table("privileged_notes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_privileged_notes_encounter_id"), ["encounter_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("privileged_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_privileged_notes_encounter_id"))
    op.drop_table("privileged_notes")
    with op.batch_alter_table("search_terms", schema=None) as batch_op:
        batch_op.drop_index("ix_search_terms_digest_encounter_id")
    op.drop_table("search_terms")
