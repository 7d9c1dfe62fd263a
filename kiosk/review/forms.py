"""The review log's filters: a GET form, so a filtered list can be bookmarked and shared.

Nothing is stored, so no CSRF token is needed (and one would only clutter the address).
None of the filters carries a name or free text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SelectField
from wtforms.validators import Optional, ValidationError

from kiosk.forms import options
from kiosk.protocol.documents import DOC_LABELS
from kiosk.vocabulary import AGENCIES, CHANNELS, OUTCOMES, REQUEST_KINDS

ANY = ("", "Any")
YES_NO = [ANY, ("yes", "Yes"), ("no", "No")]
# The cursor of the next page: the last row's start time (microseconds since the epoch)
# and id, so a page follows the one before it whatever arrived in between.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR = re.compile(r"^(\d{1,20})-(\d{1,20})$")


def parse_cursor(value: str) -> tuple[datetime, int] | None:
    """Return the (started_at, id) a "next page" link carries, or None if it is malformed."""
    match = CURSOR.match(value or "")
    if match is None:
        return None
    try:
        # Whole microseconds, never a float: the key must match the stored time exactly.
        moment = EPOCH + timedelta(microseconds=int(match.group(1)))
    except OverflowError:
        return None
    return moment, int(match.group(2))


def make_cursor(started_at: datetime, row_id: int) -> str:
    return f"{(started_at - EPOCH) // timedelta(microseconds=1)}-{row_id}"


class ListChoice(SelectField):
    """A select whose refusal says what to do, for a value typed into the address."""

    def pre_validate(self, form: Any) -> None:
        if self.data not in {choice[0] for choice in self.iter_choices()}:
            raise ValidationError("Choose one of the options in the list.")


class ReviewFilterForm(FlaskForm):
    """Filters on the encounters' summary columns only."""

    class Meta:
        csrf = False

    school = ListChoice("School", choices=options([ANY]), default="")
    date_from = DateField(
        "Started on or after (UTC date)", validators=[Optional()], format="%Y-%m-%d"
    )
    date_to = DateField(
        "Started on or before (UTC date)", validators=[Optional()], format="%Y-%m-%d"
    )
    state = ListChoice(
        "Open or ended",
        choices=options([ANY, ("open", "Open (not yet closed)"), ("ended", "Ended")]),
        default="",
    )
    channel = ListChoice("How the request came", choices=options([ANY, *CHANNELS]), default="")
    document = ListChoice(
        "Document (confirmed, else as first recorded)",
        choices=options([ANY] + [(t.value, label) for t, label in DOC_LABELS.items()]),
        default="",
    )
    exigency = ListChoice("Emergency declared", choices=options(YES_NO), default="")
    outcome = ListChoice(
        "Outcome", choices=options([ANY, ("none", "Not recorded"), *OUTCOMES]), default=""
    )
    stood_down = ListChoice("Stood down at the desk", choices=options(YES_NO), default="")
    late = ListChoice("Acknowledged late", choices=options(YES_NO), default="")
    agency = ListChoice("Agency", choices=options([ANY, *AGENCIES]), default="")
    request_kind = ListChoice(
        "What was asked for", choices=options([ANY, *REQUEST_KINDS]), default=""
    )
    after = HiddenField()

    def __init__(self, *args: Any, schools: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the schools the user may read: another school is refused like a made-up one.
        self.school.choices = options([("", "All my schools"), *schools])

    def validate_date_to(self, field: DateField) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("This date is before the first date.")

    def validate_after(self, field: HiddenField) -> None:
        if field.data and parse_cursor(field.data) is None:
            raise ValidationError("This page link is not valid. Start again from the first page.")
