"""chain every change to the record: the chain's head row, verification runs, and on
PostgreSQL triggers that refuse UPDATE and DELETE on the chain and the events

Revision ID: c4e8a1f03b7d
Revises: 8e3b5d1f7a42
Create Date: 2026-12-01 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4e8a1f03b7d"
down_revision: str | Sequence[str] | None = "8e3b5d1f7a42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
# Append-only tables: on PostgreSQL a trigger refuses every UPDATE and DELETE of their rows.
APPEND_ONLY = ("audit_entries", "encounter_events")
REFUSE_FUNCTION = """
CREATE OR REPLACE FUNCTION kiosk_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is refused: its rows are never changed or removed',
        TG_OP, TG_TABLE_NAME;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "audit_verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("command", sa.String(length=20), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("first_bad_seq", sa.Integer(), nullable=True),
        sa.Column("wrong_key", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_verifications")),
    )
    op.create_index(op.f("ix_audit_verifications_at"), "audit_verifications", ["at"], unique=False)
    # The head starts where the chain already ends.
    connection = op.get_bind()
    last = connection.execute(
        sa.text("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1")
    ).one_or_none()
    connection.execute(
        sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, :seq, :hash)"),
        {"seq": last.seq if last else 0, "hash": last.hash if last else GENESIS},
    )
    if connection.dialect.name == "postgresql":
        op.execute(REFUSE_FUNCTION)
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION kiosk_refuse_change()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS kiosk_refuse_change()")
    op.drop_index(op.f("ix_audit_verifications_at"), table_name="audit_verifications")
    op.drop_table("audit_verifications")
    op.drop_table("audit_head")
