"""Forms of the alert routing and test alert pages. Limits come from the columns; the rules
the values must follow are kiosk.protocol.setup's, shared with the command line."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
)
from wtforms.validators import InputRequired, Length, NumberRange
from wtforms.widgets import CheckboxInput, ListWidget

from kiosk.forms import CleanText, column_limit, options, required_text, strip_or_none
from kiosk.forms import text as text_field
from kiosk.models import Contact, District
from kiosk.protocol import setup
from kiosk.vocabulary import OFFSITE_PLACES, PLACE_PHRASES

CHANNEL_CHOICES = (("email", "Email"), ("webhook", "Chat webhook"), ("sms", "SMS"))
FORMAT_CHOICES = (
    ("generic", "Generic JSON"),
    ("slack", "Slack"),
    ("teams", "Microsoft Teams"),
)
LEVEL_CHOICES = (
    ("1", "Level 1: alerted at once"),
    ("2", "Level 2: if nobody has acknowledged"),
    ("3", "Level 3: if still nobody has"),
)
RETYPE_MESSAGE = "Type the secret again: a secret is never shown back."


class ContactForm(FlaskForm):
    """One contact of a school: who, how, and when they are alerted."""

    name = required_text("Name", Contact.name, "Enter the contact's name.")
    level = SelectField("Level", choices=options(LEVEL_CHOICES), default="1")
    channel = RadioField(
        "Channel",
        choices=options(CHANNEL_CHOICES),
        default="email",
        validators=[InputRequired("Choose a channel.")],
    )
    address = required_text(
        "Address",
        Contact.address,
        "Enter the email address, webhook URL or phone number.",
        "An email address, a webhook URL (https://…), or a phone number such as +15550100 for SMS.",
    )
    phone = text_field(
        "Phone",
        Contact.phone,
        "Shown at the desk when an alert is not delivered, so staff can call.",
    )
    after_hours = BooleanField(
        "After hours: alerted first, instead of level 1, outside school hours"
    )
    places = SelectMultipleField(
        "Off-site places",
        choices=options(
            [(place, PLACE_PHRASES.get(place, place).capitalize()) for place in OFFSITE_PLACES]
        ),
        description="Alerted, with level 1, only when a request is reported from one of "
        "these places, instead of the usual levels.",
        option_widget=CheckboxInput(),
        widget=ListWidget(prefix_label=False),
    )
    webhook_format = SelectField(
        "Webhook format", choices=options(FORMAT_CHOICES), default="generic"
    )
    webhook_secret = PasswordField(
        "Webhook secret",
        filters=[strip_or_none],
        validators=[
            CleanText(),
            Length(max=column_limit(Contact.webhook_secret), message="Keep this shorter."),
        ],
        render_kw={"autocomplete": "new-password", "maxlength": 200},
        description="Signs each webhook delivery. Write-only: it is never shown back.",
    )
    active = BooleanField("Active: alerted", default=True)

    def values(self, school_name: str) -> setup.ContactInput:
        """The form as the plain values the setup rules take."""
        return setup.ContactInput(
            school=school_name,
            name=self.name.data or "",
            address=self.address.data or "",
            level=int(self.level.data or 1),
            channel=self.channel.data or "",
            phone=self.phone.data or "",
            after_hours=bool(self.after_hours.data),
            webhook_format=self.webhook_format.data or "generic",
            webhook_secret=self.webhook_secret.data or None,
            places=tuple(self.places.data or ()),
        )


class EscalationForm(FlaskForm):
    """When nobody has acknowledged: minutes after the tap for levels 2 and 3, then reminders."""

    level2_after_minutes = IntegerField(
        "Level 2 after (minutes)",
        validators=[
            InputRequired("Enter a number of minutes."),
            NumberRange(*setup.LEVEL2_RANGE, message="Between %(min)s and %(max)s minutes."),
        ],
        description="Minutes after the tap before level 2 is alerted.",
    )
    level3_after_minutes = IntegerField(
        "Level 3 after (minutes)",
        validators=[
            InputRequired("Enter a number of minutes."),
            NumberRange(*setup.LEVEL3_RANGE, message="Between %(min)s and %(max)s minutes."),
        ],
        description="Minutes after the tap before level 3 is alerted; after level 2.",
    )
    realert_minutes = IntegerField(
        "Re-alert every (minutes)",
        validators=[
            InputRequired("Enter a number of minutes."),
            NumberRange(*setup.REALERT_RANGE, message="Between %(min)s and %(max)s minutes."),
        ],
        description="After level 3, everyone alerted is reminded this often until someone "
        "acknowledges.",
    )


class DistrictPhonesForm(FlaskForm):
    """The district office's phone and the rapid-response hotline."""

    office_phone = required_text(
        "District office phone",
        District.office_phone,
        "Enter the district office's phone number.",
        "Shown at the desk when an alert has not been delivered.",
    )
    hotline_phone = text_field(
        "Hotline phone",
        District.hotline_phone,
        "A rapid-response hotline, shown at the desk when an alert escalates (if on).",
    )
    hotline_enabled = BooleanField("Show the hotline at the desk")


class TestAlertForm(FlaskForm):
    """Choose a school; its level-1 contacts of this moment receive a test alert."""

    __test__ = False

    school = SelectField("School", validators=[InputRequired("Choose a school.")])
