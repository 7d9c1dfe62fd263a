"""The forms of the scripts pages: a pack to save, an approval, the shipped pack taken up."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from kiosk.forms import options
from kiosk.protocol.scripts import SITUATION_LABELS, SITUATIONS, STEPS
from kiosk.protocol.scriptstore import MAX_PACK_CHARS, ScriptError, parse_pack_text


class PackForm(FlaskForm):
    """The whole pack as JSON; load_pack() decides whether it can be saved."""

    content = TextAreaField(
        "The script pack (JSON)",
        validators=[
            DataRequired("Enter the script pack."),
            Length(max=MAX_PACK_CHARS),
        ],
        description=(
            "Each block has a step, a situation, a priority, one or two sentences to say, "
            "and lists of what to do and never do. Saving stores a new draft version; "
            "the version you started from is kept as it is."
        ),
        render_kw={"rows": 30, "spellcheck": "true", "class": "pack-text"},
    )
    # The validated pack, once validate() passed.
    parsed: dict[str, Any] | None = None

    def validate_content(self, field: TextAreaField) -> None:
        try:
            self.parsed = parse_pack_text(field.data or "")
        except ScriptError as exc:
            raise ValidationError(str(exc)) from exc


class ApproveForm(FlaskForm):
    review_due = DateField(
        "Review due",
        validators=[DataRequired("Enter the date by which counsel will review it again.")],
        description="The scripts page flags the version once this date has passed.",
    )


class ShippedDraftForm(FlaskForm):
    """Carries the shipped pack's sha256 as the page showed it, so a release that changed
    the pack in between is not taken up unseen."""

    sha = HiddenField(validators=[DataRequired()])


STEP_WORDS = {
    "start": "Start",
    "staff": "Your name",
    "agents": "Agents",
    "request": "Request",
    "document": "Document",
    "exigency": "Emergency",
    "outcome": "Outcome",
    "close": "Finish",
}


class PreviewForm(FlaskForm):
    """Sample facts for a preview: nothing is stored, so no token is needed."""

    class Meta:
        csrf = False

    step = SelectField(
        "Desk screen", choices=options([(s, STEP_WORDS[s]) for s in STEPS]), default="start"
    )
    situation = SelectField(
        "Situation",
        choices=options([(s, SITUATION_LABELS[s]) for s in SITUATIONS]),
        default="default",
    )
