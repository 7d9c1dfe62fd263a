"""Forms of the FERPA pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, Field, RadioField, SelectField
from wtforms.validators import InputRequired, Optional, ValidationError

from kiosk.ferpa.operations import EXCEPTIONS, NOTICE_METHODS, OUTCOMES
from kiosk.forms import note, options, required_text
from kiosk.forms import text as text_field
from kiosk.models import RequestRecord, Student


class MatchForm(FlaskForm):
    """What one named person is; one form per person, told apart by its prefix."""

    outcome = RadioField(
        "This person is",
        choices=options(OUTCOMES),
        validators=[InputRequired("Choose what this person is.")],
    )
    student = SelectField("Enrolled student", choices=options([("", "Choose")]), default="")
    new_name = text_field("Name as enrolled (new student)", Student.name)
    new_school = SelectField("School (new student)", choices=options([("", "Choose")]), default="")
    new_local_id = text_field("Local student ID (optional)", Student.local_id)

    def pre_validate_choices(
        self, students: list[tuple[str, str]], schools: list[tuple[str, str]]
    ) -> None:
        self.student.choices = options([("", "Choose"), *students])
        self.new_school.choices = options([("", "Choose"), *schools])


class RecordForm(FlaskForm):
    basis = note(
        "Stated interest or legal basis",
        RequestRecord.basis,
        "Copied from the request and document as recorded; correct it if needed.",
    )
    released = note(
        "What was released",
        RequestRecord.released,
        'Write "Nothing" if nothing was released. For an emergency, name the threat and '
        "who received the information.",
    )
    exception = SelectField("Under which exception", choices=options(EXCEPTIONS))
    notice_due_on = DateField(
        "Parent notice due by",
        format="%Y-%m-%d",
        validators=[Optional()],
        description="For a subpoena or court order: before anything is released. "
        "Leave empty when no parent notice applies.",
    )

    def validate_basis(self, field: Field) -> None:
        if not field.data:
            raise ValidationError("Enter the stated interest or legal basis.")

    def validate_released(self, field: Field) -> None:
        if not field.data:
            raise ValidationError('Say what was released, or write "Nothing".')


class NoticeForm(FlaskForm):
    sent_on = DateField(
        "Sent on",
        format="%Y-%m-%d",
        validators=[InputRequired("Enter the date the notice was sent.")],
    )
    method = SelectField("How", choices=options([("", "Choose"), *NOTICE_METHODS]), default="")


class NondisclosureForm(FlaskForm):
    order = RadioField(
        "Non-disclosure order",
        choices=options(
            [
                ("set", "A court or the issuing agency ordered non-disclosure: no parent notice"),
                ("clear", "No non-disclosure order applies"),
            ]
        ),
        validators=[InputRequired("Choose one.")],
    )


class FindStudentForm(FlaskForm):
    """A name sent by POST, so it never appears in an address; found by its blind index."""

    name = required_text("Student's name", Student.name, "Enter the student's name.")
