"""The statistics page: HTTP only; the counts live in kiosk.review.stats. It shows counts,
never a name, free text or record."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from kiosk import webdb
from kiosk.auth.policy import requires, schools_for
from kiosk.office.common import office_user
from kiosk.review import stats
from kiosk.review.blueprint import bp
from kiosk.review.log import Filters, readable_schools
from kiosk.review.stats_forms import StatisticsForm

# Same access as the log: whoever may read records, for the schools they may read.
READ = "encounter.read"


@bp.get("/statistics", endpoint="statistics")
@requires(READ)
def statistics() -> Any:
    """Counts for a period and school, each chart beside the table it draws."""
    db = webdb.session()
    school_ids = schools_for(office_user(), READ)
    schools = readable_schools(db, school_ids)
    form = StatisticsForm(request.args, schools=[(s.public_id, s.name) for s in schools])
    if not form.validate():
        # Counts that ignored a filter would look filtered when they are not: show none.
        return render_template("review/statistics.html", form=form, shown=False)
    by_public_id = {s.public_id: s.id for s in schools}
    filters = Filters(
        school_id=by_public_id.get(form.school.data or ""),
        date_from=form.date_from.data,
        date_to=form.date_to.data,
    )
    ack = stats.ack_times(db, school_ids, filters)
    return render_template(
        "review/statistics.html",
        form=form,
        shown=True,
        total=stats.total(db, school_ids, filters),
        charts=[
            ("by-school", "By school", "School", rows(stats.by_school(db, school_ids, filters))),
            (
                "by-month",
                "By month started (UTC)",
                "Month (UTC)",
                rows(stats.by_month(db, school_ids, filters)),
            ),
            ("by-agency", "By agency", "Agency", rows(stats.by_agency(db, school_ids, filters))),
            (
                "by-request",
                "By what was asked",
                "Asked for",
                rows(stats.by_request_kind(db, school_ids, filters)),
            ),
            (
                "by-outcome",
                "By outcome",
                "Outcome",
                rows(stats.by_outcome(db, school_ids, filters)),
            ),
        ],
        documents=[
            (label, [first, confirmed])
            for label, first, confirmed in stats.by_document(db, school_ids, filters)
        ],
        ack=ack,
        ack_rows=rows(ack.buckets),
        median=duration(ack.median_seconds),
        p90=duration(ack.p90_seconds),
    )


def rows(counts: list[stats.Count]) -> list[tuple[str, list[int]]]:
    """A chart's rows: each label with its one series of counts."""
    return [(c.label, [c.count]) for c in counts]


def duration(seconds: float | None) -> str:
    """A wait in whole minutes and seconds, as a reader says it."""
    if seconds is None:
        return "none acknowledged"
    minutes, rest = divmod(round(seconds), 60)
    if minutes == 0:
        return f"{rest} s"
    return f"{minutes} min {rest} s"
