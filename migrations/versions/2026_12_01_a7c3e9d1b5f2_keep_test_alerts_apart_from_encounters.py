"""keep test alerts apart from encounters

Revision ID: a7c3e9d1b5f2
Revises: e5d7a9c3b1f4
Create Date: 2026-12-01 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7c3e9d1b5f2"
down_revision: str | Sequence[str] | None = "e5d7a9c3b1f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "test_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_user_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contacts_alerted", sa.Integer(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_contact_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_channel", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_contact_id"],
            ["contacts.id"],
            name=op.f("fk_test_alerts_acknowledged_contact_id_contacts"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_user_id"],
            ["users.id"],
            name=op.f("fk_test_alerts_requested_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_test_alerts_school_id_schools")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_alerts")),
        sa.UniqueConstraint("public_id", name=op.f("uq_test_alerts_public_id")),
    )
    with op.batch_alter_table("test_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_test_alerts_school_id"), ["school_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_test_alerts_sent_at"), ["sent_at"], unique=False)
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("test_alert_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_outbox_messages_test_alert_id"), ["test_alert_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_messages_test_alert_id_test_alerts"),
            "test_alerts",
            ["test_alert_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_outbox_messages_test_alert_id_test_alerts"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_outbox_messages_test_alert_id"))
        batch_op.drop_column("test_alert_id")
    with op.batch_alter_table("test_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_test_alerts_sent_at"))
        batch_op.drop_index(batch_op.f("ix_test_alerts_school_id"))
    op.drop_table("test_alerts")
