"""Forms of the schools and people pages. Limits come from the columns; every one-line field
refuses control, bidi and zero-width characters (CleanText)."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    EmailField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    widgets,
)
from wtforms.validators import DataRequired, Length, Optional, Regexp

from kiosk.forms import CleanText, column_limit, options, required_text
from kiosk.models import District, School, User
from kiosk.protocol.people import ROLE_LABELS
from kiosk.protocol.setup import COMMON_ZONES, DAY_NAMES

OTHER_ZONE = "other"


def optional_text(label: str, column: Any, description: str = "") -> StringField:
    limit = column_limit(column)
    return StringField(
        label,
        description=description,
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        validators=[
            Optional(),
            CleanText(),
            Length(max=limit, message=f"Keep this under {limit} characters."),
        ],
        render_kw={"maxlength": limit, "autocomplete": "off"},
    )


class CheckboxesField(SelectMultipleField):
    """Several choices as checkboxes, each with its own label."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class DistrictForm(FlaskForm):
    district_name = required_text("District name", District.name, "Enter the district's name.")
    district_phone = optional_text(
        "Superintendent's office phone",
        District.office_phone,
        "Shown at the desk when an alert is not delivered.",
    )


TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class SchoolForm(FlaskForm):
    name = required_text("School name", School.name, "Enter the school's name.")
    timezone = SelectField(
        "Time zone",
        choices=options(
            [(zone, zone.replace("_", " ")) for zone in COMMON_ZONES]
            + [(OTHER_ZONE, "Another time zone (type it below)")]
        ),
        default=COMMON_ZONES[0],
    )
    timezone_other = optional_text(
        "Other time zone",
        School.timezone,
        "Only if the list does not have it, e.g. America/Boise or America/Indiana/Indianapolis.",
    )
    office_phone = optional_text(
        "Office phone", School.office_phone, "Shown at the desk and in alerts."
    )
    hours_open = StringField(
        "Opens at",
        validators=[
            DataRequired("Enter the opening time."),
            Regexp(TIME_PATTERN, message="Enter a time such as 07:30."),
        ],
        default="07:00",
        render_kw={"type": "time", "autocomplete": "off"},
    )
    hours_close = StringField(
        "Closes at",
        validators=[
            DataRequired("Enter the closing time."),
            Regexp(TIME_PATTERN, message="Enter a time such as 16:00."),
        ],
        default="17:00",
        render_kw={"type": "time", "autocomplete": "off"},
    )
    school_days = CheckboxesField(
        "School days",
        description="Outside these days and hours, after-hours contacts are alerted first.",
        choices=options([(str(i), day) for i, day in enumerate(DAY_NAMES)]),
        default=["0", "1", "2", "3", "4"],
        validators=[DataRequired("Choose at least one school day.")],
    )

    def chosen_zone(self) -> str:
        if self.timezone.data == OTHER_ZONE:
            return (self.timezone_other.data or "").strip()
        return self.timezone.data or ""

    def validate(self, extra_validators: Any = None) -> bool:
        """The other zone is optional unless "Another time zone" is chosen (a check that
        Optional() would otherwise skip)."""
        valid = super().validate(extra_validators)
        if self.timezone.data == OTHER_ZONE and not (self.timezone_other.data or "").strip():
            self.timezone_other.errors = [
                *self.timezone_other.errors,
                "Type the time zone, e.g. America/Boise.",
            ]
            return False
        return valid


def grant_choices(schools: list[School]) -> list[SelectChoice]:
    """Every role a person can be given, as "role:school id" (empty: district-wide)."""
    choices = [
        (f"{role}:", f"{ROLE_LABELS[role]} (district-wide)")
        for role in ("counsel", "reviewer", "admin")
    ]
    for school in schools:
        choices += [
            (f"front_desk:{school.id}", f"Front desk at {school.name}"),
            (f"designee:{school.id}", f"Designee at {school.name}"),
        ]
    return options(choices)


class InviteForm(FlaskForm):
    name = required_text("Name", User.display_name, "Enter the person's name.")
    email = EmailField(
        "Email",
        description="The invitation link is sent here; it is also the sign-in name. Front-desk "
        "staff who only use a PIN at the desk may have none: set their PIN next.",
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        validators=[
            Optional(),
            CleanText(),
            Length(max=254, message="Keep this under 254 characters."),
        ],
        render_kw={"maxlength": 254, "autocomplete": "off"},
    )
    roles = CheckboxesField(
        "Roles",
        description="Front desk and designee are for one school; counsel, reviewer and "
        "administrator are district-wide.",
        validators=[DataRequired("Choose at least one role.")],
    )


class GrantForm(FlaskForm):
    role = SelectField("Role", choices=options(list(ROLE_LABELS.items())), default="designee")
    school = SelectField("School", choices=options([("", "District-wide")]))


class PinForm(FlaskForm):
    pin = PasswordField(
        "New PIN (6 digits)",
        validators=[
            DataRequired("Enter six digits."),
            Regexp(r"^[0-9]{6}$", message="The PIN is six digits, nothing else."),
        ],
        render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": 6},
    )


class ImportForm(FlaskForm):
    file = FileField("CSV file", description="Columns: name, email, role, school.")


class ApplyImportForm(FlaskForm):
    content = HiddenField()
    fingerprint = HiddenField()
