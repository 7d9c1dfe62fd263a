"""The review log's filters: a GET form, so a filtered list can be bookmarked and shared.

Nothing is stored, so no CSRF token is needed (and one would only clutter the address).
None of the filters carries a name or free text. Searches can (a person's name, words of
the stated purpose), so they are posted, with a CSRF token, and never put in an address.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from kiosk.forms import CleanText, note, options, strip_or_none
from kiosk.models import PrivilegedNote
from kiosk.protocol import search
from kiosk.protocol.documents import DOC_LABELS
from kiosk.review import log
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


class PeriodFilterForm(FlaskForm):
    """A school, a UTC date range and a page key, read from the address: the filters the
    review log and the API's FERPA records share. Subclasses add their categories."""

    class Meta:
        csrf = False

    school = ListChoice("School", choices=options([ANY]), default="")
    date_from = DateField(
        "Started on or after (UTC date)", validators=[Optional()], format="%Y-%m-%d"
    )
    date_to = DateField(
        "Started on or before (UTC date)", validators=[Optional()], format="%Y-%m-%d"
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


class ReviewFilterForm(PeriodFilterForm):
    """Filters on the encounters' summary columns only."""

    # Every filter's name (the page key `after` aside): the page, its files and the API's
    # description all list these.
    FILTER_NAMES = (
        "school",
        "date_from",
        "date_to",
        "state",
        "channel",
        "document",
        "exigency",
        "outcome",
        "stood_down",
        "late",
        "agency",
        "request_kind",
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

    def filters(self, school_ids: dict[str, int]) -> log.Filters:
        """The checked filters (call after validate()); school_ids maps the schools offered
        by public id. The log, its files and the API all read them here."""
        return log.Filters(
            school_id=school_ids.get(self.school.data or ""),
            date_from=self.date_from.data,
            date_to=self.date_to.data,
            state=self.state.data or "",
            channel=self.channel.data or "",
            document=self.document.data or "",
            exigency=self.exigency.data or "",
            outcome=self.outcome.data or "",
            stood_down=self.stood_down.data or "",
            late=self.late.data or "",
            agency=self.agency.data or "",
            request_kind=self.request_kind.data or "",
            after=parse_cursor(self.after.data) if self.after.data else None,
        )


SEARCH_LIMIT = 200


def search_field(label: str, description: str) -> StringField:
    return StringField(
        label,
        description=description,
        filters=[strip_or_none],
        validators=[
            CleanText(),
            Length(max=SEARCH_LIMIT, message=f"Keep this under {SEARCH_LIMIT} characters."),
        ],
        render_kw={"maxlength": SEARCH_LIMIT, "autocomplete": "off"},
    )


class ReviewSearchForm(FlaskForm):
    """Words and a name to search for: posted beside the filters, so neither reaches an
    address, a browser's history or an access log."""

    words = search_field(
        "Words in an agent's name, the agency or the stated purpose",
        "Each word must appear. End a word with * to match words that start with it, "
        "for example: immig*",
    )
    name = search_field(
        "A person named in the encounter",
        "The full name as the desk recorded it; capitals and extra spaces do not matter.",
    )

    def validate_words(self, field: StringField) -> None:
        if field.data and not any(ch.isalnum() for ch in field.data):
            raise ValidationError("Type at least one word, or leave this empty.")
        if len(search.words(field.data)) > search.MOST_WORDS:
            raise ValidationError(f"Search for at most {search.MOST_WORDS} words at a time.")


class PrivilegedNoteForm(FlaskForm):
    """A note by counsel, seen by counsel only."""

    text = note("Privileged note (seen by counsel only)", PrivilegedNote.text)
