"""Forms of the district office."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, RadioField, SelectField
from wtforms.validators import Optional

from kiosk.forms import note, options
from kiosk.forms import text as text_field
from kiosk.models import DeskMessage, Encounter
from kiosk.protocol.documents import DOC_LABELS
from kiosk.protocol.office import DESK_MESSAGE_PRESETS
from kiosk.vocabulary import OUTCOMES


class DeskMessageForm(FlaskForm):
    preset = RadioField(
        "Message to the desk",
        choices=options(list(DESK_MESSAGE_PRESETS.items()) + [("", "Write my own")]),
        validators=[Optional()],
    )
    text = text_field(
        "Your own message (short and neutral: the agent may read the screen)", DeskMessage.text
    )


class ConfirmDocumentForm(FlaskForm):
    doc_type = SelectField(
        "Confirmed document type",
        choices=options([("", "Choose")] + [(t.value, label) for t, label in DOC_LABELS.items()]),
        validators=[Optional()],
    )


class ConsentCheckForm(FlaskForm):
    result = RadioField(
        "Claimed consent, checked directly with the parent or guardian",
        choices=options(
            [
                ("confirmed", "The guardian confirmed it"),
                ("denied", "The guardian did not consent"),
                ("unreachable", "Could not reach the guardian"),
                ("not_applicable", "No consent was claimed"),
            ]
        ),
        validators=[Optional()],
    )


class GuardianNoticeForm(FlaskForm):
    notice = RadioField(
        "Parent or guardian notification",
        choices=options([("notified", "Notified"), ("not_notified", "Not notified")]),
        validators=[Optional()],
    )
    notified_at = DateTimeLocalField(
        "When (school's local time)", format="%Y-%m-%dT%H:%M", validators=[Optional()]
    )
    by = text_field("By whom", Encounter.guardian_notice_by)
    reason = note("Why not", Encounter.guardian_notice_reason)


class CareForm(FlaskForm):
    care = note(
        "How the child's care was arranged",
        Encounter.care_arranged,
        "Who looks after the child, where, and until when.",
    )


class ResolveForm(FlaskForm):
    outcome = RadioField("Outcome", choices=options(OUTCOMES), validators=[Optional()])
    notes = note("Notes", Encounter.resolution_notes)
