"""Kiosk forms: every field optional, limits from the columns, clean text only."""

from __future__ import annotations

import re
from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    Field,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from kiosk import vocabulary
from kiosk.forms import CleanText, note, options, strip_or_none, text
from kiosk.models import Agent, Document, Encounter
from kiosk.protocol import encounters as ops
from kiosk.protocol.documents import TRIAGE_QUESTIONS

YES_NO_UNSURE = [("yes", "Yes"), ("no", "No"), ("unsure", "Not sure")]
NAME_LIMIT = 200

AGENCIES = [("", "Choose if it matches"), *vocabulary.AGENCIES]
ID_SHOWN = list(vocabulary.ID_SHOWN)
ATTIRE = list(vocabulary.ATTIRE)
CHANNELS = list(vocabulary.CHANNELS)
PLACES = list(vocabulary.PLACES)
# Where our own staff may report from: offered before the tap, beside the channel.
OFFSITE_PLACES = [(k, v) for k, v in PLACES if k in (*vocabulary.OFFSITE_PLACES, "elsewhere")]
REQUEST_KINDS = list(vocabulary.REQUEST_KINDS)
RELATIONS = list(vocabulary.RELATIONS)
OUTCOMES = list(vocabulary.OUTCOMES)
RECORD_ONLY = "Record only what the agent said and did."
TIME_PATTERN = re.compile(r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$")


def radio(label: str, choices: list[tuple[str, str]]) -> RadioField:
    return RadioField(label, choices=options(choices), validators=[Optional()])


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def clock_time(form: FlaskForm, field: Field) -> None:
    if field.data and not TIME_PATTERN.match(field.data):
        raise ValidationError("Write the time as hours and minutes, for example 10:45.")


class EmptyForm(FlaskForm):
    """A button-only POST still carries a CSRF token."""


class StartForm(FlaskForm):
    """The start control: its token is bound to the device and does not expire."""

    class Meta:
        csrf = False

    channel = RadioField(
        "How is the request made?",
        choices=options(CHANNELS),
        default="in_person",
        validators=[Optional()],
    )
    place = RadioField(
        "Where is our staff member?",
        choices=options(OFFSITE_PLACES),
        validators=[Optional()],
    )
    nonce = HiddenField()
    start_token = HiddenField()


class ChannelForm(FlaskForm):
    """Correct, after the tap, how the request is made and where."""

    channel = RadioField(
        "How the request is made", choices=options(CHANNELS), validators=[Optional()]
    )
    place = RadioField("Where", choices=options(PLACES), validators=[Optional()])


def pin_field(label: str) -> PasswordField:
    """A six-digit PIN, typed on the tablet's number pad and never remembered."""
    return PasswordField(
        label,
        validators=[Length(max=6, message="The PIN has six digits."), CleanText()],
        render_kw={
            "inputmode": "numeric",
            "autocomplete": "off",
            "maxlength": 6,
            "pattern": "[0-9]*",
        },
    )


class MistakeForm(FlaskForm):
    """Confirm a stand-down; the person who identified confirms with their PIN."""

    pin = pin_field("Your PIN")


class StaffPickForm(FlaskForm):
    user = HiddenField()


class PinForm(FlaskForm):
    pin = pin_field("PIN")


class AgentForm(FlaskForm):
    name = text("Name", Agent.name, RECORD_ONLY)
    badge_number = text(
        "Badge or ID number",
        Agent.badge_number,
        "Write it down. Do not photograph a badge or ID card.",
    )
    agency_printed = text("Agency, exactly as printed", Agent.agency_printed)
    agency_pick = SelectField(
        "Agency (closest match)", choices=options(AGENCIES), validators=[Optional()]
    )
    title = text("Title", Agent.title)
    phone = text("Phone", Agent.phone)
    supervisor_name = text("Supervisor's name", Agent.supervisor_name)
    supervisor_phone = text("Supervisor's phone", Agent.supervisor_phone)
    id_shown = MultiCheckboxField(
        "Identification (choose every one that happened)",
        choices=options(ID_SHOWN),
        validators=[Optional()],
    )
    attire = radio("Dress", ATTIRE)
    card_kept = BooleanField("A business card was given and kept")


class RequestForm(FlaskForm):
    place = radio("Where", PLACES)
    agents_present = IntegerField(
        "How many agents",
        validators=[Optional(), NumberRange(min=1, max=99, message="Enter a number from 1 to 99.")],
        render_kw={"inputmode": "numeric"},
    )
    request_kinds = MultiCheckboxField("What is asked", choices=options(REQUEST_KINDS))
    request_other = text("Something else, in their words", Encounter.request_other, RECORD_ONLY)
    purpose = note(
        "Purpose, in their own words",
        Encounter.purpose,
        RECORD_ONLY + " Add names under People named, not here.",
    )
    consent_claimed = radio("Do they say a parent or guardian agreed?", YES_NO_UNSURE)
    consent_claim = note(
        "What they said about that agreement", Encounter.consent_claim, RECORD_ONLY
    )
    child_with = text(
        "Staff member who stays with the child",
        Encounter.child_with,
        "Away from the encounter. The district office arranges the child's care.",
    )
    # The name being added sits in the same form, so adding it keeps everything typed.
    person_name = StringField(
        "Name as the agent said it",
        description=RECORD_ONLY,
        filters=[strip_or_none],
        validators=[
            CleanText(),
            Length(max=NAME_LIMIT, message=f"Keep this under {NAME_LIMIT} characters."),
        ],
        render_kw={"maxlength": NAME_LIMIT, "autocomplete": "off"},
    )
    relation = radio("This person is", RELATIONS)

    def validate_request_kinds(self, field: Field) -> None:
        # A forged value is refused, never stored.
        if any(k not in ops.REQUEST_KINDS for k in field.data or []):
            raise ValidationError("Choose from the list.")


def triage_form_class() -> type[FlaskForm]:
    """Build the document questions from the domain's list, in asking order."""
    fields: dict[str, Any] = {}
    for question in TRIAGE_QUESTIONS:
        fields[question.key] = RadioField(
            question.text,
            choices=options(question.choices),
            description=question.help,
            validators=[Optional()],
        )
    return type("TriageForm", (FlaskForm,), fields)


TriageForm = triage_form_class()


PHOTO_HINT = "Photograph the document or a business card. Do not photograph a badge or ID card."
PHOTO_KINDS = [("document", "The document"), ("business_card", "A business card")]


class DocumentForm(TriageForm):  # type: ignore[misc, valid-type]
    """The whole document step in one form: picks, questions, photo and details.

    Whichever button is tapped, everything typed or chosen on the page is saved with it.
    """

    photo = FileField(
        "Photo",
        description=PHOTO_HINT,
        # The tablet opens its back camera; a PC offers a file. The server checks the
        # content whatever this says.
        render_kw={"accept": "image/jpeg,image/png", "capture": "environment"},
    )
    photo_kind = RadioField(
        "What the photo shows",
        choices=options(PHOTO_KINDS),
        default="document",
        validators=[Optional()],
    )

    issuer = text("Court or agency that issued it, as printed", Document.issuer)
    case_number = text("Case or file number", Document.case_number)
    dates = text("Dates on it", Document.dates)
    names_addresses = note(
        "Addresses and places on it",
        Document.names_addresses,
        RECORD_ONLY + " Add people's names to the list on the Request step.",
    )
    matches_school = radio("Does it name this school's address?", YES_NO_UNSURE)
    names_person = radio("Does it name a person?", YES_NO_UNSURE)


class ExigencyForm(FlaskForm):
    exigency = radio("Did an agent say it is an emergency?", [("yes", "Yes"), ("no", "No")])
    exigency_reason = note(
        "The reason they gave, word for word", Encounter.exigency_reason, RECORD_ONLY
    )
    exigency_directives = note(
        "What they told staff to do, word for word", Encounter.exigency_directives, RECORD_ONLY
    )


class OutcomeForm(FlaskForm):
    outcome = radio("What happened", OUTCOMES)
    entry_areas = note("Areas they went into", Encounter.entry_areas, RECORD_ONLY)
    entry_started = StringField(
        "Went in at (HH:MM)",
        filters=[strip_or_none],
        validators=[CleanText(), Length(max=5), clock_time],
        render_kw={"maxlength": 5, "inputmode": "numeric", "autocomplete": "off"},
    )
    entry_ended = StringField(
        "Left at (HH:MM)",
        filters=[strip_or_none],
        validators=[CleanText(), Length(max=5), clock_time],
        render_kw={"maxlength": 5, "inputmode": "numeric", "autocomplete": "off"},
    )
    outcome_other = note("What happened, in a few words", Encounter.outcome_other, RECORD_ONLY)
    witnesses = note("Witnesses", Encounter.witnesses, RECORD_ONLY + " List who else saw it.")
