"""The forms of the scripts pages: a pack by blocks or as JSON, an approval, the shipped pack
taken up, and the sample facts of a preview."""

from __future__ import annotations

import re
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from kiosk.forms import CleanText, options
from kiosk.protocol.scripts import ANY_STEP, COMPLY, SITUATION_LABELS, SITUATIONS, STEPS
from kiosk.protocol.scriptstore import MAX_PACK_CHARS, ScriptError, parse_pack_text, validated

STEP_WORDS = {
    "start": "Start",
    "staff": "Your name",
    "agents": "Agents",
    "request": "Request",
    "document": "Document",
    "exigency": "Emergency",
    "outcome": "Outcome",
    "close": "Finish",
    ANY_STEP: "Every step",
}
# Long enough for any line counsel writes; the pack as a whole is capped by MAX_PACK_CHARS.
LINE_LIMIT = 1000
LINES_LIMIT = 8000


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


class BlockForm(Form):
    """One block: where it applies, how urgent it is, and its words."""

    step = SelectField("Step", choices=options([(s, STEP_WORDS[s]) for s in (*STEPS, ANY_STEP)]))
    situation = SelectField(
        "Situation", choices=options([(s, SITUATION_LABELS[s]) for s in SITUATIONS])
    )
    priority = IntegerField(
        "Priority",
        validators=[Optional(), NumberRange(0, 1000, "Enter a whole number from 0 to 1000.")],
        description="0 to 1000; when several situations are true, the highest shows first.",
    )
    say = StringField(
        "Say", validators=[Length(max=LINE_LIMIT), CleanText()], render_kw={"class": "wide"}
    )
    do = TextAreaField(
        "Do (one per line)",
        validators=[Length(max=LINES_LIMIT), CleanText(multiline=True)],
        render_kw={"rows": 4, "class": "wide"},
    )
    never = TextAreaField(
        "Never (one per line)",
        validators=[Length(max=LINES_LIMIT), CleanText(multiline=True)],
        render_kw={"rows": 4, "class": "wide"},
    )
    remove = BooleanField("Remove this block when saving")


_WHERE = re.compile(r"^block (\d+)(?: \([^)]*\))?: (.*)$", re.DOTALL)


class BlocksForm(FlaskForm):
    """The pack block by block: what the editor shows by default."""

    label = StringField(
        "Label",
        validators=[DataRequired("Enter a label."), Length(max=80), CleanText()],
        description="How this version is named in lists, for example the date of the review.",
        render_kw={"class": "wide"},
    )
    notice = TextAreaField(
        "Notice",
        validators=[
            DataRequired("Enter the notice."),
            Length(max=LINES_LIMIT),
            CleanText(multiline=True),
        ],
        description="Shown with the words on these pages: who wrote them and for what use.",
        render_kw={"rows": 3, "class": "wide"},
    )
    blocks = FieldList(FormField(BlockForm))
    # The validated pack, once validate() passed; a problem with the pack as a whole.
    parsed: dict[str, Any] | None = None
    pack_error: str | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> BlocksForm:
        """The editor filled in from a stored pack."""
        blocks = [
            {
                "step": b.get("step"),
                "situation": b.get("situation"),
                "priority": b.get("priority"),
                "say": b.get("say", ""),
                "do": "\n".join(b.get("do") or []),
                "never": "\n".join(b.get("never") or []),
            }
            for b in data.get("blocks") or []
        ]
        return cls(
            formdata=None,
            data={"label": data.get("label"), "notice": data.get("notice"), "blocks": blocks},
        )

    def kept(self) -> list[Any]:
        """The block entries that stay (not marked for removal), in order."""
        return [entry for entry in self.blocks if not entry.form.remove.data]

    def pack_data(self) -> dict[str, Any]:
        blocks = []
        for entry in self.kept():
            block = entry.form
            item: dict[str, Any] = {
                "step": block.step.data,
                "situation": block.situation.data,
                "say": (block.say.data or "").strip(),
                "do": _lines(block.do.data),
                "never": _lines(block.never.data),
            }
            if block.priority.data is not None:
                item["priority"] = block.priority.data
            blocks.append(item)
        return {
            "label": (self.label.data or "").strip(),
            "status": "draft",
            "notice": (self.notice.data or "").strip(),
            "blocks": blocks,
        }

    def validate(self, extra_validators: Any = None) -> bool:
        if not super().validate(extra_validators):
            return False
        try:
            self.parsed = validated(self.pack_data())
        except ScriptError as exc:
            self._place(str(exc))
            return False
        return True

    def _place(self, message: str) -> None:
        """Put load_pack()'s reason next to the field it is about."""
        found = _WHERE.match(message)
        kept = self.kept()
        if found is None or not 0 < int(found.group(1)) <= len(kept):
            self.pack_error = message
            return
        block = kept[int(found.group(1)) - 1].form
        reason = found.group(2)
        if reason.startswith("unknown step") or reason.startswith("the default situation"):
            field = block.step
        elif reason.startswith("unknown situation") or reason.startswith("a second block"):
            field = block.situation
        elif reason.startswith("priority"):
            field = block.priority
        elif reason.startswith("do"):
            field = block.do
        elif reason.startswith("never"):
            field = block.never
        elif "comply" in reason:
            field = next(
                (f for f in (block.say, block.do, block.never) if COMPLY.search(f.data or "")),
                block.say,
            )
        else:
            field = block.say
        field.errors = [*field.errors, _sentence(message)]


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


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
