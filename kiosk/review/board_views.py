"""The board report: HTTP only; the counts and their suppression live in kiosk.review.board.
It shows counts per school, never a name, free text or record."""

from __future__ import annotations

from typing import Any

from flask import current_app, render_template, request

from kiosk import webdb
from kiosk.auth.policy import requires, schools_for
from kiosk.office.common import office_user
from kiosk.review import board
from kiosk.review.blueprint import bp
from kiosk.review.log import Filters
from kiosk.review.stats_forms import BoardForm
from kiosk.review.stats_views import READ


@bp.get("/board", endpoint="board")
@requires(READ)
def board_report() -> Any:
    """Counts per school for a period, small counts suppressed, for printing."""
    below = current_app.config["BOARD_SUPPRESS_BELOW"]
    form = BoardForm(request.args)
    if not request.args or not form.validate():
        # The bare address shows the empty form, with no error before anything was asked.
        if not request.args:
            form = BoardForm(formdata=None)
        return render_template("review/board.html", form=form, shown=False, below=below)
    db = webdb.session()
    school_ids = schools_for(office_user(), READ)
    filters = Filters(date_from=form.date_from.data, date_to=form.date_to.data)
    return render_template(
        "review/board.html",
        form=form,
        shown=True,
        below=below,
        period=(form.date_from.data, form.date_to.data),
        outcomes=board.by_outcome(db, school_ids, filters, below),
        documents=board.by_document(db, school_ids, filters, below),
    )
