"""Forms of the kiosks page: enroll a kiosk, rename one, confirm taking one back."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from kiosk.forms import CleanText
from kiosk.protocol.setup import LABEL_LENGTH


class EnrollKioskForm(FlaskForm):
    school = SelectField("School", validators=[DataRequired("Choose the school.")], choices=[])
    name = StringField(
        "Name",
        default="Front desk",
        description="Where the device stands, to tell kiosks apart (for example, Front desk).",
        validators=[
            DataRequired("Give the kiosk a name, such as Front desk."),
            Length(max=LABEL_LENGTH),
            CleanText(),
        ],
    )


class RenameKioskForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[
            DataRequired("Give the kiosk a name, such as Front desk."),
            Length(max=LABEL_LENGTH),
            CleanText(),
        ],
    )
