"""Every change to the record is in the one chain, and `audit verify` notices a row of the
record, or an entry of the chain, changed, added or removed in the database without it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.exc import DBAPIError

from kiosk import audit
from kiosk.clock import now_utc
from kiosk.db import writing
from kiosk.models import (
    Acknowledgement,
    Agent,
    AuditEntry,
    AuditHead,
    DeskMessage,
    Document,
    Encounter,
    EncounterEvent,
    LateAddition,
    NamedPerson,
    RoleGrant,
)
from kiosk.protocol import capture, document_record, office
from kiosk.protocol.events import Actor
from kiosk.webdb import database
from tests.conftest import (
    SmtpSink,
    deliver,
    enroll_client,
    smtp_settings,
    tamper,
    tap_start,
    the_encounter,
)

STUDENT = "Avery Quinn"


@dataclass(frozen=True)
class Record:
    """The ids of one row of each kind, written the way the app writes them."""

    encounter: int
    event: int
    agent: int
    document: int
    person: int
    ack: int
    message: int
    addition: int
    grant: int


@pytest.fixture
def record(app: Flask, kiosk_client: FlaskClient) -> Record:
    assert tap_start(kiosk_client).status_code == 302
    encounter_id = the_encounter(app).id
    now = now_utc()
    with writing(), database(app).session_factory() as session, session.begin():
        encounter = session.get_one(Encounter, encounter_id)
        desk = Actor(kind="kiosk", label="desk", kiosk_id=None)
        agent = capture.save_agent(
            session,
            encounter,
            desk,
            now,
            capture.AgentInput(name="Rowan Example", agency_pick="hsi"),
            index_key=app.config["INDEX_KEY"],
        )
        assert agent is not None
        document = document_record.ensure_document(session, encounter, now)
        person = capture.add_named_person(
            session, encounter, desk, now, STUDENT, "student", app.config["INDEX_KEY"]
        )
        ack = office.acknowledge(session, encounter, Actor.system(), now, "email", user_id=None)
        assert ack.acknowledgement is not None
        message = office.send_desk_message(
            session, encounter, Actor.system(), now, None, "Someone is on the way."
        )
        addition = capture.add_late_addition(
            session, encounter, desk, now, "agents", {"agency": "Example agency"}
        )
        assert addition is not None
        event = session.scalars(
            select(EncounterEvent).where(EncounterEvent.encounter_id == encounter.id)
        ).first()
        grant = session.scalars(select(RoleGrant).order_by(RoleGrant.id)).first()
        assert event is not None and grant is not None
        return Record(
            encounter.id,
            event.id,
            agent.id,
            document.id,
            person.id,
            ack.acknowledgement.id,
            message.id,
            addition.id,
            grant.id,
        )


def verify(app: Flask) -> Result:
    return app.test_cli_runner().invoke(args=["audit", "verify"])


def entries_for(app: Flask, table: str, row: int) -> list[AuditEntry]:
    with database(app).session_factory() as session:
        return list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.subject == f"{table}:{row}")
                .order_by(AuditEntry.seq)
            )
        )


def test_every_kind_of_row_is_chained_with_its_digest_and_no_name(
    app: Flask, record: Record
) -> None:
    for table, row in (
        ("encounters", record.encounter),
        ("encounter_events", record.event),
        ("agents", record.agent),
        ("documents", record.document),
        ("named_people", record.person),
        ("acknowledgements", record.ack),
        ("desk_messages", record.message),
        ("late_additions", record.addition),
        ("role_grants", record.grant),
    ):
        entries = entries_for(app, table, row)
        assert entries, f"no entry for {table} row {row}"
        details = json.loads(entries[-1].details)
        assert details["table"] == table and details["row"] == row
        assert len(details["digest"]) == 64
    with database(app).session_factory() as session:
        every = " ".join(session.scalars(select(AuditEntry.details)))
    assert STUDENT not in every and "Someone is on the way" not in every
    assert "Rowan Example" not in every
    result = verify(app)
    assert result.exit_code == 0, result.output
    assert "Record intact:" in result.output


def test_the_encounters_counter_and_schedule_are_left_out_of_its_digest(
    app: Flask, record: Record
) -> None:
    # The event writer and escalation rewrite these with plain UPDATEs; what they count and
    # schedule (events, alerts) is chained in rows of its own.
    table = Encounter.__table__
    tamper(
        app,
        update(table)
        .where(table.c.id == record.encounter)
        .values(event_count=table.c.event_count + 5, next_escalation_at=now_utc()),
    )
    assert verify(app).exit_code == 0
    tamper(app, update(table).where(table.c.id == record.encounter).values(exigency=True))
    assert verify(app).exit_code == 6


def test_a_change_made_through_the_app_is_chained_again(app: Flask, record: Record) -> None:
    with writing(), database(app).session_factory() as session, session.begin():
        person = session.get_one(NamedPerson, record.person)
        person.relation = "parent"
    entries = entries_for(app, "named_people", record.person)
    assert [entry.action for entry in entries] == ["record.insert", "record.update"]
    assert verify(app).exit_code == 0


EDITS: list[tuple[str, Any, str, Any]] = [
    ("event", EncounterEvent.__table__, "data", '{"kind":"rewritten"}'),
    ("encounter", Encounter.__table__, "outcome", "left"),
    ("agent", Agent.__table__, "agency_printed", "Another agency"),
    ("document", Document.__table__, "confirmed_type", "judicial_warrant"),
    ("person", NamedPerson.__table__, "relation", "parent"),
    ("ack", Acknowledgement.__table__, "channel", "sms"),
    ("message", DeskMessage.__table__, "preset", "changed"),
    ("addition", LateAddition.__table__, "step", "documents"),
    ("grant", RoleGrant.__table__, "role", "admin"),
]


@pytest.mark.parametrize(("kind", "table", "column", "value"), EDITS)
def test_a_row_edited_in_the_database_is_named(
    app: Flask, record: Record, kind: str, table: Table, column: str, value: Any
) -> None:
    row = getattr(record, kind)
    last = entries_for(app, table.name, row)[-1].seq
    tamper(app, update(table).where(table.c.id == row).values({column: value}))
    result = verify(app)
    assert result.exit_code == 6
    assert f"{table.name} row {row} differs from entry {last}" in result.output


# An encounter's row cannot be deleted while its events point at it (deleting those is
# detected as above).
@pytest.mark.parametrize(
    ("kind", "table"), [(kind, table) for kind, table, _, _ in EDITS if kind != "encounter"]
)
def test_a_row_deleted_in_the_database_is_named(
    app: Flask, record: Record, kind: str, table: Table
) -> None:
    row = getattr(record, kind)
    last = entries_for(app, table.name, row)[-1].seq
    tamper(app, delete(table).where(table.c.id == row))
    result = verify(app)
    assert result.exit_code == 6
    assert f"{table.name} row {row} is gone, but entry {last} recorded it" in result.output


def test_rows_added_in_the_database_are_named(app: Flask, record: Record) -> None:
    events = EncounterEvent.__table__
    with database(app).session_factory() as session:
        source = session.execute(select(events).where(events.c.id == record.event)).one()
    copied = {**source._mapping, "id": 9001, "seq": 99}
    tamper(app, insert(events).values(copied))
    result = verify(app)
    assert result.exit_code == 6
    assert "encounter_events row 9001 has no entry in the chain" in result.output
    tamper(app, delete(events).where(events.c.id == 9001))
    grants = RoleGrant.__table__
    with database(app).session_factory() as session:
        grant = session.execute(select(grants).where(grants.c.id == record.grant)).one()
    tamper(app, insert(grants).values(id=9002, user_id=grant.user_id, role="admin"))
    result = verify(app)
    assert result.exit_code == 6
    assert "role_grants row 9002 has no entry in the chain" in result.output


def last_seq(app: Flask) -> int:
    with database(app).session_factory() as session:
        return int(session.scalar(select(AuditHead.seq)) or 0)


def test_an_entry_deleted_from_the_middle_breaks_the_chain(app: Flask, record: Record) -> None:
    tamper(app, delete(AuditEntry).where(AuditEntry.seq == 3))
    result = verify(app)
    assert result.exit_code == 1
    assert "audit chain broken at entry 4 (2 entries before it verified)" in result.output


def test_entries_swapped_break_the_chain_where_the_order_changed(
    app: Flask, record: Record
) -> None:
    entries = AuditEntry.__table__
    tamper(
        app,
        update(entries).where(entries.c.seq == 2).values(seq=-2),
        update(entries).where(entries.c.seq == 3).values(seq=2),
        update(entries).where(entries.c.seq == -2).values(seq=3),
    )
    result = verify(app)
    assert result.exit_code == 1
    assert "audit chain broken at entry 2" in result.output


def test_an_entry_forged_onto_the_end_breaks_the_chain(app: Flask, record: Record) -> None:
    end = last_seq(app)
    with database(app).session_factory() as session:
        head = session.scalars(select(AuditEntry).where(AuditEntry.seq == end)).one()
    forged = {
        "seq": end + 1,
        "at": now_utc(),
        "actor": "cli",
        "action": "record.update",
        "subject": f"named_people:{record.person}",
        "details": "{}",
        "prev_hash": head.hash,
        "hash": "a" * 64,
    }
    tamper(
        app,
        insert(AuditEntry.__table__).values(forged),
        update(AuditHead).values(seq=end + 1, hash="a" * 64),
    )
    result = verify(app)
    assert result.exit_code == 1
    assert f"audit chain broken at entry {end + 1}" in result.output


def test_a_wrong_key_is_not_reported_as_a_changed_row(
    app: Flask, make_app: Any, record: Record
) -> None:
    tamper(app, update(NamedPerson).values(relation="parent"))
    result = verify(make_app(AUDIT_KEY="another-audit-key"))
    assert result.exit_code == 3
    assert "wrong audit key" in result.output
    assert "record changed" not in result.output


def test_key_rotation_chains_the_rows_it_reseals(app: Flask, record: Record) -> None:
    before = len(entries_for(app, "named_people", record.person))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert len(entries_for(app, "named_people", record.person)) == before + 1
    assert audit.key_fingerprint(app.config["AUDIT_KEY"]) in verify(app).output
    assert verify(app).exit_code == 0


@pytest.mark.parametrize("table", [AuditEntry.__table__, EncounterEvent.__table__])
def test_postgresql_refuses_to_update_or_delete_chain_and_event_rows(
    app: Flask, record: Record, table: Table
) -> None:
    if database(app).engine.dialect.name != "postgresql":
        pytest.skip("the triggers are PostgreSQL's; SQLite relies on verify alone")
    for statement in (
        update(table).where(table.c.id == 1).values(id=1),
        delete(table).where(table.c.id == 1),
    ):
        with (
            pytest.raises(DBAPIError, match="is refused: its rows are never changed"),
            writing(),
            database(app).session_factory() as session,
            session.begin(),
        ):
            session.execute(statement)
    assert verify(app).exit_code == 0


def test_rows_written_before_the_record_was_chained_can_be_taken_in_once(
    app: Flask, record: Record
) -> None:
    events = EncounterEvent.__table__
    with database(app).session_factory() as session:
        source = session.execute(select(events).where(events.c.id == record.event)).one()
    # A row from before every change was chained: it has no entry.
    tamper(app, insert(events).values({**source._mapping, "id": 9003, "seq": 98}))
    assert verify(app).exit_code == 6
    result = app.test_cli_runner().invoke(args=["audit", "record-existing"])
    assert result.exit_code == 0, result.output
    assert "encounter_events: 1 row(s) recorded" in result.output
    assert [e.action for e in entries_for(app, "encounter_events", 9003)] == ["record.existing"]
    assert verify(app).exit_code == 0


def test_a_delivered_alert_leaves_the_encounters_row_chained_and_verifiable(
    make_app: Any, district: Any, smtp_server: SmtpSink
) -> None:
    app = make_app(**smtp_settings(smtp_server))
    client, _ = enroll_client(app, "Lincoln Elementary School")
    assert tap_start(client).status_code == 302
    assert deliver(app) == 1
    encounter = the_encounter(app)
    assert encounter.first_alert_sent_at is not None
    entries = entries_for(app, "encounters", encounter.id)
    assert [entry.action for entry in entries][:1] == ["record.insert"]
    assert entries[-1].action == "record.update"
    result = verify(app)
    assert result.exit_code == 0, result.output
