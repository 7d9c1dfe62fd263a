"""The legal hold's form: a reason to set it; releasing it is a button (an empty form)."""

from __future__ import annotations

from flask_wtf import FlaskForm

from kiosk.forms import required_text
from kiosk.models import Encounter


class HoldForm(FlaskForm):
    reason = required_text(
        "Reason for the hold",
        Encounter.hold_reason,
        "Give the reason for the hold.",
        description="For example the matter or notice it relates to. Sealed at rest.",
    )
