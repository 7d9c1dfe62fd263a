"""Shared form pieces: limits derived from the columns, and clean-text validators."""

from __future__ import annotations

import unicodedata
from typing import Any

from flask_wtf import FlaskForm
from sqlalchemy import String
from sqlalchemy.orm import InstrumentedAttribute
from wtforms import Field, SelectChoice, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

# Text columns have no length of their own; this is the longest note we accept.
TEXT_LIMIT = 4000
ALLOWED_IN_NOTES = {"\n", "\r", "\t"}
# Characters that reorder or hide text: a name or badge number with them can read one
# way on screen and another in a search, an export or a printed record.
DIRECTION_CHARACTERS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
ZERO_WIDTH_CHARACTERS = frozenset("\u200b\u200c\u200d\u2060\ufeff")


def column_limit(column: InstrumentedAttribute[Any]) -> int:
    """Return the longest value a column holds (TEXT_LIMIT for unbounded text)."""
    column_type = column.property.columns[0].type
    if isinstance(column_type, String) and column_type.length:
        return int(column_type.length)
    if getattr(column_type, "length", None):  # a sealed column's plain-text limit
        return int(column_type.length)
    return TEXT_LIMIT


def options(pairs: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> list[SelectChoice]:
    """Turn (value, label) pairs into choices for radio, select and checkbox fields."""
    return [SelectChoice(value, label) for value, label in pairs]


def strip_or_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


class CleanText:
    """Reject NUL and control characters (line breaks too, unless the field is a note).

    One-line fields also refuse characters that change the direction of text or take
    no width: they make what is seen differ from what is stored.
    """

    def __init__(self, multiline: bool = False) -> None:
        self.multiline = multiline

    def __call__(self, form: FlaskForm, field: Field) -> None:
        value = field.data
        if not isinstance(value, str):
            return
        allowed = ALLOWED_IN_NOTES if self.multiline else set()
        for char in value:
            if char in allowed:
                continue
            if (
                char == "\x00"
                or unicodedata.category(char) in {"Cc", "Cs"}
                or char in "\u2028\u2029"
            ):
                if char in "\r\n\u2028\u2029":
                    raise ValidationError("Keep this on one line: remove the line breaks.")
                raise ValidationError("This contains a hidden control character. Please retype it.")
            if not self.multiline and char in DIRECTION_CHARACTERS:
                raise ValidationError(
                    "This contains a hidden character that reverses or reorders text. "
                    "Please retype it."
                )
            if not self.multiline and char in ZERO_WIDTH_CHARACTERS:
                raise ValidationError(
                    "This contains an invisible character with no width. Please retype it."
                )


def text(label: str, column: InstrumentedAttribute[Any], description: str = "") -> StringField:
    """A one-line optional text field limited by its column."""
    limit = column_limit(column)
    return StringField(
        label,
        description=description,
        filters=[strip_or_none],
        validators=[CleanText(), Length(max=limit, message=f"Keep this under {limit} characters.")],
        render_kw={"maxlength": limit, "autocomplete": "off"},
    )


def required_text(
    label: str, column: InstrumentedAttribute[Any], message: str, description: str = ""
) -> StringField:
    """A one-line required text field limited by its column; message says what to enter."""
    limit = column_limit(column)
    return StringField(
        label,
        description=description,
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        validators=[
            DataRequired(message),
            CleanText(),
            Length(max=limit, message=f"Keep this under {limit} characters."),
        ],
        render_kw={"maxlength": limit, "autocomplete": "off"},
    )


def note(label: str, column: InstrumentedAttribute[Any], description: str = "") -> TextAreaField:
    """A multi-line optional note limited by its column."""
    limit = column_limit(column)
    return TextAreaField(
        label,
        description=description,
        filters=[strip_or_none],
        validators=[
            CleanText(multiline=True),
            Length(max=limit, message=f"Keep this under {limit} characters."),
        ],
        render_kw={"maxlength": limit, "rows": 3, "data-watch": "status-words"},
    )
