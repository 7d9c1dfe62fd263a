"""Test alerts: send one for a school, then see who acknowledged it and how fast.

A test alert travels the real path (outbox, channels, the level-1 contacts of the moment,
acknowledgement links) and is never a record: kiosk.protocol.test_alerts keeps it apart."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, url_for
from sqlalchemy import select

from kiosk import webdb
from kiosk.admin import routing_forms as forms
from kiosk.admin.blueprint import bp
from kiosk.admin.changes import record_change
from kiosk.auth.policy import ADMIN, current_user, requires
from kiosk.clock import now_utc
from kiosk.models import School
from kiosk.notify.links import Links
from kiosk.protocol import setup
from kiosk.protocol.test_alerts import recent_tests, send_test_alert


def _form() -> forms.TestAlertForm:
    form = forms.TestAlertForm()
    schools = webdb.session().execute(select(School.public_id, School.name).order_by(School.name))
    form.school.choices = [("", "Choose a school"), *((p, n) for p, n in schools)]
    return form


def _page(form: forms.TestAlertForm, status: int = 200) -> Any:
    return render_template(
        "admin/test_alerts.html", form=form, rows=recent_tests(webdb.session())
    ), status


@bp.get("/test-alerts")
@requires(ADMIN)
def test_alerts() -> Any:
    return _page(_form())


@bp.post("/test-alerts")
@requires(ADMIN)
def test_alerts_send() -> Any:
    form = _form()
    if form.validate_on_submit() and form.school.data:
        user = current_user()
        links = Links.from_settings(current_app.config)
        try:
            with webdb.unit_of_work() as db:
                school = db.scalar(select(School).where(School.public_id == form.school.data))
                if school is None:
                    raise setup.SetupError("Choose a school.", "school")
                sent = send_test_alert(db, school, links, now_utc(), user)
                record_change(
                    db,
                    user,
                    "test_alert.send",
                    f"test_alert:{sent.test.public_id}",
                    None,
                    {"school": school.public_id, "contacts": [c.id for c in sent.contacts]},
                )
                names = ", ".join(c.name for c in sent.contacts)
                count, school_name = len(sent.contacts), school.name
                when = " (outside school hours)" if sent.after_hours else ""
        except setup.SetupError as exc:
            reason = str(exc)
            form.school.errors = [*form.school.errors, reason[:1].upper() + reason[1:] + "."]
        else:
            flash(
                f"Test alert sent to {count} contact{'' if count == 1 else 's'} for "
                f"{school_name}{when}: {names}. It is marked TEST and needs acknowledging "
                "like a real alert.",
                "info",
            )
            return redirect(url_for("admin.test_alerts"))
    elif form.csrf_token.errors:
        flash("The page had expired. Please try again.", "error")
    elif not form.school.errors:
        form.school.errors = ["Choose a school."]
    return _page(form, 422)
