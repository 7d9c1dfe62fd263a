"""The period and school the statistics and the board report cover: GET forms, so a page can
be bookmarked; nothing is stored, so no CSRF token (as for the log's filters)."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField
from wtforms.validators import InputRequired, Optional, ValidationError

from kiosk.forms import options
from kiosk.review.forms import ListChoice


class StatisticsForm(FlaskForm):
    class Meta:
        csrf = False

    school = ListChoice("School", choices=options([("", "All my schools")]), default="")
    date_from = DateField(
        "Started on or after (UTC date)", validators=[Optional()], format="%Y-%m-%d"
    )
    date_to = DateField(
        "Started on or before (UTC date)", validators=[Optional()], format="%Y-%m-%d"
    )

    def __init__(self, *args: Any, schools: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the schools the user may read: another school is refused like a made-up one.
        self.school.choices = options([("", "All my schools"), *schools])

    def validate_date_to(self, field: DateField) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("This date is before the first date.")


class BoardForm(FlaskForm):
    """The board report's period, as ?from=YYYY-MM-DD&to=YYYY-MM-DD (both required)."""

    class Meta:
        csrf = False

    date_from = DateField(
        "From (UTC date)",
        name="from",
        validators=[InputRequired("Enter the first day of the period.")],
        format="%Y-%m-%d",
    )
    date_to = DateField(
        "To (UTC date, included)",
        name="to",
        validators=[InputRequired("Enter the last day of the period.")],
        format="%Y-%m-%d",
    )

    def validate_date_to(self, field: DateField) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("This date is before the first date.")
