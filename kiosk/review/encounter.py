"""Each encounter's review page: the whole record in one place, every view audited, and
counsel's privileged notes, which no other role sees."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app, flash, redirect, render_template, url_for
from sqlalchemy import select

from kiosk import audit, webdb
from kiosk.auth.policy import may, requires
from kiosk.clock import now_utc
from kiosk.models import Encounter, EncounterEvent, PrivilegedNote, ScriptVersion, User
from kiosk.office.common import audit_view, find, office_user
from kiosk.office.record import page_context
from kiosk.protocol import notes
from kiosk.protocol.encounters import OperationError
from kiosk.review.blueprint import bp
from kiosk.review.forms import PrivilegedNoteForm
from kiosk.review.hold import HOLD, hold_context
from kiosk.review.report import told

NOTE = "encounter.privileged_note"


@bp.get("/encounters/<public_id>", endpoint="encounter")
@requires("encounter.read")
def encounter_page(public_id: str) -> Any:
    """The same access as the office's record page (404 for a school the user does not
    serve), and the same audit entry before names are shown."""
    record = find(public_id)
    audit_view("encounter.review", f"encounter:{record.public_id}")
    return render_page(record, PrivilegedNoteForm(formdata=None))


@bp.post("/encounters/<public_id>/notes", endpoint="add_note")
@requires(NOTE)
def add_note(public_id: str) -> Any:
    """Keep a privileged note by counsel; the note's text never enters the audit entry."""
    record = find(public_id, NOTE)
    user = office_user()
    form = PrivilegedNoteForm()
    if form.validate_on_submit():
        try:
            with webdb.unit_of_work() as db:
                encounter = db.get(Encounter, record.id)
                if encounter is None:
                    raise OperationError("There is no such record.")
                now = now_utc()
                notes.add_privileged_note(db, encounter, user.id, now, form.text.data or "")
                audit.record(
                    db,
                    current_app.config["AUDIT_KEY"],
                    now,
                    actor=f"user:{user.public_id}",
                    action="encounter.privileged_note",
                    subject=f"encounter:{record.public_id}",
                )
        except OperationError as exc:
            form.text.errors = [*form.text.errors, str(exc)]
        else:
            flash("Privileged note kept.", "info")
            return redirect(url_for("review.encounter", public_id=public_id) + "#privileged-notes")
    audit_view("encounter.review", f"encounter:{record.public_id}")
    return render_page(record, form), 422


def render_page(record: Encounter, note_form: PrivilegedNoteForm) -> str:
    context = page_context(record)
    user = office_user()
    counsel = may(user, NOTE, record.school_id)
    holds = may(user, HOLD, record.school_id)
    return render_template(
        "review/encounter.html",
        **context,
        timeline=timeline(record, context["events"]),
        told=told(context["messages"], context["contacts"], context["acks"]),
        counsel=counsel,
        privileged_notes=notes.privileged_notes(webdb.session(), record) if counsel else [],
        authors=_authors(record) if counsel else {},
        note_form=note_form,
        may_hold=holds,
        **(hold_context(record) if holds else {}),
    )


def ended_at(encounter: Encounter) -> datetime | None:
    """When the record ended: its resolution. Anything later is marked as added after."""
    return encounter.resolved_at


def timeline(
    encounter: Encounter, events: list[tuple[EncounterEvent, str]]
) -> list[dict[str, Any]]:
    """Every event with the script version the desk showed then, and whether it came
    after the record ended."""
    ids = {e.script_version_id for e, _ in events if e.script_version_id is not None}
    versions = {
        v.id: v
        for v in webdb.session().scalars(select(ScriptVersion).where(ScriptVersion.id.in_(ids)))
    }
    end = ended_at(encounter)
    return [
        {
            "event": event,
            "text": text,
            "script": versions.get(event.script_version_id)
            if event.script_version_id is not None
            else None,
            "late": end is not None and event.at > end,
        }
        for event, text in events
    ]


def _authors(encounter: Encounter) -> dict[int, str]:
    rows = webdb.session().execute(
        select(User.id, User.display_name)
        .join(PrivilegedNote, PrivilegedNote.author_user_id == User.id)
        .where(PrivilegedNote.encounter_id == encounter.id)
    )
    return {row.id: row.display_name for row in rows}
