"""The review log page: HTTP only; the query lives in kiosk.review.log."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import current_app, render_template, request, url_for
from sqlalchemy.orm import Session

from kiosk import webdb
from kiosk.auth.policy import current_user, may, requires, schools_for
from kiosk.localtime import local
from kiosk.models import Encounter, User
from kiosk.office.common import audit_view, office_user, visible
from kiosk.protocol import search
from kiosk.protocol.documents import DOC_LABELS
from kiosk.review import log
from kiosk.review.blueprint import bp
from kiosk.review.forms import ReviewFilterForm, ReviewSearchForm, make_cursor
from kiosk.sealing import blind_index
from kiosk.vocabulary import CHANNELS, OUTCOMES

INVALID = 422
DOCUMENTS = {kind.value: label for kind, label in DOC_LABELS.items()}
# The filters' names, in the form's order: kept across pages, searches and downloads.
FILTERS = ReviewFilterForm.FILTER_NAMES


@bp.app_context_processor
def _nav() -> dict[str, Any]:
    """The office menu offers the log to whoever may read records."""
    return {"can_read_records": lambda: may(current_user(), "encounter.read")}


@bp.get("/", endpoint="log")
@requires("encounter.read")
def log_page() -> Any:
    """Every encounter the user may read, open or ended, newest first, 50 to a page."""
    db = webdb.session()
    user = office_user()
    form, filters = checked_filters(db, user)
    searched = ReviewSearchForm(formdata=None)
    kept = kept_filters(request.args)
    if filters is None:
        # A list that ignored a filter would look filtered when it is not: show none.
        return render_log(form, searched, kept, None)
    rows, more = log.page(db, visible(user), filters)
    next_url = None
    if more:
        cursor = make_cursor(rows[-1].started_at, rows[-1].id)
        next_url = url_for("review.log", **kept, after=cursor)
    return render_log(
        form,
        searched,
        kept,
        rows,
        csv_url=url_for("review.export_csv", **kept),
        json_url=url_for("review.export_json", **kept),
        next_url=next_url,
        first_url=url_for("review.log", **kept),
        paged=filters.after is not None,
    )


@bp.post("/search", endpoint="search")
@requires("encounter.read")
def search_page() -> Any:
    """The log narrowed by words and a person's name as well as the filters. Posted, so
    neither appears in an address; the next page is posted the same way."""
    db = webdb.session()
    user = office_user()
    form, filters = checked_filters(db, user, request.form)
    searched = ReviewSearchForm()
    kept = kept_filters(request.form)
    if not searched.validate_on_submit() or filters is None:
        return render_log(form, searched, kept, None, searching=True), INVALID
    key = current_app.config["INDEX_KEY"]
    name = searched.name.data
    filters = replace(
        filters,
        words=search.planned(db, search.parse(key, searched.words.data or "")),
        name_index=blind_index(key, name) if name else None,
    )
    if name:
        # Which encounters named a person is itself a look at that person's record.
        audit_view("review.name_search", "review:log")
    rows, more = log.page(db, visible(user), filters)
    cursor = make_cursor(rows[-1].started_at, rows[-1].id) if more else None
    return render_log(
        form,
        searched,
        kept,
        rows,
        searching=True,
        next_cursor=cursor,
        paged=filters.after is not None,
    )


def render_log(
    form: ReviewFilterForm,
    searched: ReviewSearchForm,
    kept: dict[str, str],
    rows: list[Encounter] | None,
    **context: Any,
) -> str:
    """The log page: the filters, the search, and the rows if there are any to show."""
    return render_template(
        "review/log.html",
        form=form,
        search_form=searched,
        kept=kept,
        rows=[_row(e) for e in rows or []],
        shown=rows is not None,
        **context,
    )


def kept_filters(data: Any) -> dict[str, str]:
    """The filters as typed, to carry into the next page and the search form."""
    return {name: value for name in FILTERS if (value := data.get(name))}


def checked_filters(
    db: Session, user: User, data: Any = None
) -> tuple[ReviewFilterForm, log.Filters | None]:
    """Read the filters from the address (or a posted search); None if any is not valid.
    The log and its exports share this, so a download holds exactly the rows the page
    lists."""
    schools = log.readable_schools(db, schools_for(user, "encounter.read"))
    form = ReviewFilterForm(
        request.args if data is None else data,
        schools=[(s.public_id, s.name) for s in schools],
    )
    if not form.validate():
        return form, None
    return form, form.filters({s.public_id: s.id for s in schools})


def _row(encounter: Encounter) -> dict[str, Any]:
    """What a row shows: categories, states and times, never names or free text."""
    zone = encounter.school.timezone
    document = encounter.doc_confirmed_type or encounter.doc_first_impression
    acknowledged = encounter.first_acknowledged_at
    return {
        "id": encounter.public_id,
        "url": url_for("review.encounter", public_id=encounter.public_id),
        "school": encounter.school.name,
        "started": local(encounter.started_at, zone).strftime("%Y-%m-%d %H:%M %Z"),
        "channel": dict(CHANNELS).get(encounter.channel, encounter.channel),
        "status": encounter.status.replace("_", " ").capitalize(),
        "stood_down": encounter.stood_down_at is not None,
        "outcome": dict(OUTCOMES).get(encounter.outcome or "", encounter.outcome or ""),
        "document": DOCUMENTS.get(document, document) if document else "",
        "document_confirmed": encounter.doc_confirmed_type is not None,
        "exigency": bool(encounter.exigency),
        "acknowledged": local(acknowledged, zone).strftime("%H:%M %Z") if acknowledged else "",
        "late": encounter.acknowledged_late,
    }
