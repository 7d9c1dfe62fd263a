"""The form that makes an API token: who holds it, and what it is for."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.validators import ValidationError

from kiosk.forms import required_text
from kiosk.models import ApiToken


class HolderField(SelectField):
    """The holder, from the people who may hold a token; anything else is refused in words."""

    def pre_validate(self, form: Any) -> None:
        if not self.data or self.data not in {choice[0] for choice in self.iter_choices()}:
            raise ValidationError("Choose a reviewer or counsel from the list.")


class ApiTokenForm(FlaskForm):
    holder = HolderField(
        "Held by",
        description="Only active reviewers and counsel. The token reads what they may read, "
        "and stops working if they are disabled or lose both roles.",
    )
    label = required_text(
        "Label",
        ApiToken.label,
        "Enter what will use the token.",
        "What will use the token, such as the records office's reporting system.",
    )
