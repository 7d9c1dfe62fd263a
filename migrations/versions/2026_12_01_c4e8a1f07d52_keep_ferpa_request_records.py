"""keep FERPA records: students, matches of named people, and 99.32 request records

Revision ID: c4e8a1f07d52
Revises: 5c1d7e2a9f30
Create Date: 2026-12-01 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4e8a1f07d52"
down_revision: str | Sequence[str] | None = "5c1d7e2a9f30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "students",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_index", sa.String(length=64), nullable=False),
        sa.Column("local_id", sa.String(length=40), nullable=True),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"], ["users.id"], name=op.f("fk_students_created_by_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_students_school_id_schools")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_students")),
        sa.UniqueConstraint("public_id", name=op.f("uq_students_public_id")),
    )
    with op.batch_alter_table("students", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_students_name_index"), ["name_index"], unique=False)
        batch_op.create_index(batch_op.f("ix_students_school_id"), ["school_id"], unique=False)

    op.create_table(
        "person_matches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("named_person_id", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_user_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by_user_id"],
            ["users.id"],
            name=op.f("fk_person_matches_decided_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["encounters.id"],
            name=op.f("fk_person_matches_encounter_id_encounters"),
        ),
        sa.ForeignKeyConstraint(
            ["named_person_id"],
            ["named_people.id"],
            name=op.f("fk_person_matches_named_person_id_named_people"),
        ),
        sa.ForeignKeyConstraint(
            ["student_id"], ["students.id"], name=op.f("fk_person_matches_student_id_students")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_matches")),
    )
    with op.batch_alter_table("person_matches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_person_matches_encounter_id"), ["encounter_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_person_matches_named_person_id"), ["named_person_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_person_matches_student_id"), ["student_id"], unique=False
        )

    op.create_table(
        "request_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("match_id", sa.Integer(), nullable=False),
        sa.Column("encounter_public_id", sa.String(length=32), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("request_kinds", sa.String(length=200), nullable=False),
        sa.Column("document_type", sa.String(length=30), nullable=True),
        sa.Column("requester", sa.Text(), nullable=False),
        sa.Column("agency", sa.String(length=400), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("released", sa.Text(), nullable=False),
        sa.Column("exception", sa.String(length=40), nullable=False),
        sa.Column("updated_by_user_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notice_required", sa.Boolean(), nullable=False),
        sa.Column("notice_due_on", sa.Date(), nullable=True),
        sa.Column("notice_sent_on", sa.Date(), nullable=True),
        sa.Column("notice_method", sa.String(length=20), nullable=True),
        sa.Column("notice_recorded_by_user_id", sa.Integer(), nullable=True),
        sa.Column("notice_recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("nondisclosure", sa.Boolean(), nullable=False),
        sa.Column("nondisclosure_by_user_id", sa.Integer(), nullable=True),
        sa.Column("nondisclosure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["match_id"],
            ["person_matches.id"],
            name=op.f("fk_request_records_match_id_person_matches"),
        ),
        sa.ForeignKeyConstraint(
            ["nondisclosure_by_user_id"],
            ["users.id"],
            name=op.f("fk_request_records_nondisclosure_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["notice_recorded_by_user_id"],
            ["users.id"],
            name=op.f("fk_request_records_notice_recorded_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_request_records_school_id_schools")
        ),
        sa.ForeignKeyConstraint(
            ["student_id"], ["students.id"], name=op.f("fk_request_records_student_id_students")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_user_id"],
            ["users.id"],
            name=op.f("fk_request_records_updated_by_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_records")),
        sa.UniqueConstraint("match_id", name=op.f("uq_request_records_match_id")),
        sa.UniqueConstraint("public_id", name=op.f("uq_request_records_public_id")),
    )
    with op.batch_alter_table("request_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_request_records_encounter_public_id"),
            ["encounter_public_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_request_records_notice_due_on"), ["notice_due_on"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_request_records_notice_required"), ["notice_required"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_request_records_student_id"), ["student_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("request_records")
    op.drop_table("person_matches")
    op.drop_table("students")
