"""The legal hold of one encounter: counsel sets or releases it; `retention run` keeps the
content of a held encounter past the retention period. HTTP only; the rules live in
kiosk.retention."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, url_for

from kiosk import retention, webdb
from kiosk.auth.forms import EmptyForm
from kiosk.auth.policy import requires
from kiosk.clock import now_utc
from kiosk.models import Encounter, User
from kiosk.office.common import find, office_user
from kiosk.review.blueprint import bp
from kiosk.review.hold_forms import HoldForm

HOLD = "retention.hold"


def hold_context(encounter: Encounter, form: HoldForm | None = None) -> dict[str, Any]:
    """What the hold partial (review/_hold.html) needs, for any page that includes it."""
    held_by = (
        webdb.session().get(User, encounter.held_by_user_id)
        if encounter.held_by_user_id is not None
        else None
    )
    return {
        "hold_encounter": encounter,
        "hold_form": form or HoldForm(formdata=None, reason=encounter.hold_reason),
        "release_form": EmptyForm(formdata=None),
        "held_by": held_by.display_name if held_by is not None else "",
        "retention_days": current_app.config["RETENTION_DAYS"],
    }


def _page(encounter: Encounter, form: HoldForm | None = None) -> str:
    return render_template("review/hold.html", encounter=encounter, **hold_context(encounter, form))


@bp.get("/encounters/<public_id>/hold", endpoint="hold")
@requires(HOLD)
def hold_page(public_id: str) -> Any:
    """The hold's state and the form to set or release it; counsel only."""
    return _page(find(public_id, HOLD))


@bp.post("/encounters/<public_id>/hold", endpoint="hold_set")
@requires(HOLD)
def hold_set(public_id: str) -> Any:
    record = find(public_id, HOLD)
    form = HoldForm()
    if not form.validate_on_submit():
        return _page(record, form), 422
    user = office_user()
    try:
        with webdb.unit_of_work() as db:
            changed = retention.set_hold(
                db,
                record.id,
                now_utc(),
                form.reason.data or "",
                user.id,
                current_app.config["AUDIT_KEY"],
                actor=f"user:{user.public_id}",
            )
    except retention.RetentionError as exc:
        form.reason.errors = [*form.reason.errors, str(exc)]
        return _page(record, form), 409
    flash("On legal hold." if changed else "Nothing changed: the hold was already set.", "info")
    return redirect(url_for("review.hold", public_id=public_id))


@bp.post("/encounters/<public_id>/hold/release", endpoint="hold_release")
@requires(HOLD)
def hold_release(public_id: str) -> Any:
    record = find(public_id, HOLD)
    if not EmptyForm().validate_on_submit():
        flash("The page had expired. Please try again.", "error")
        return redirect(url_for("review.hold", public_id=public_id))
    user = office_user()
    with webdb.unit_of_work() as db:
        changed = retention.release_hold(
            db, record.id, now_utc(), current_app.config["AUDIT_KEY"], f"user:{user.public_id}"
        )
    flash("Hold released." if changed else "Nothing changed: there was no hold.", "info")
    return redirect(url_for("review.hold", public_id=public_id))
