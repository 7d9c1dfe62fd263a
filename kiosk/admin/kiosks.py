"""The kiosks page: every kiosk by school, enrolling one (by link or short code), renaming
one, and taking one back. The rules are in kiosk.protocol.setup and kiosk.auth.devices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from kiosk import webdb
from kiosk.admin.blueprint import bp
from kiosk.admin.changes import record_change
from kiosk.admin.kiosk_forms import EnrollKioskForm, RenameKioskForm
from kiosk.auth import devices
from kiosk.auth.forms import EmptyForm
from kiosk.auth.policy import ADMIN, current_user, requires
from kiosk.clock import now_utc
from kiosk.db import locked
from kiosk.localtime import local
from kiosk.models import Kiosk, School
from kiosk.protocol import checkins, setup

INVALID = 422
STATUS_WORDS = {
    "active": "Active",
    "revoked": "Revoked",
    "expired": "Expired (unused 90 days)",
    "waiting": "Waiting for setup",
}


@dataclass(frozen=True)
class KioskRow:
    """One line of the kiosks table, in words."""

    public_id: str
    name: str
    school: str
    enrolled: str
    last_check_in: str
    status: str
    status_word: str
    silent: bool


def _when(moment: datetime | None, zone_name: str, empty: str) -> str:
    if moment is None:
        return empty
    return local(moment, zone_name).strftime("%Y-%m-%d %H:%M %Z")


def _rows(session: Session, now: datetime) -> list[KioskRow]:
    minutes = current_app.config["CHECKIN_ALERT_MINUTES"]
    rows = []
    for kiosk in setup.all_kiosks(session):
        zone_name = kiosk.school.timezone
        state = devices.status(kiosk, now)
        rows.append(
            KioskRow(
                public_id=kiosk.public_id,
                name=kiosk.label,
                school=kiosk.school.name,
                enrolled=_when(kiosk.enrolled_at, zone_name, "Not yet"),
                last_check_in=_when(kiosk.last_seen_at, zone_name, "Never"),
                status=state,
                status_word=STATUS_WORDS[state] + _expired_note(kiosk, state, now),
                silent=state == "active" and checkins.is_silent(kiosk, now, minutes),
            )
        )
    return rows


def _expired_note(kiosk: Kiosk, state: str, now: datetime) -> str:
    """A waiting kiosk whose link and code have both run out needs a new one."""
    if state != "waiting":
        return ""
    times = (kiosk.enrollment_expires_at, kiosk.enrollment_code_expires_at)
    if any(t is not None and t > now for t in times):
        return ""
    return " (link and code expired)"


def _schools(session: Session) -> list[tuple[str, str]]:
    return [(s.public_id, s.name) for s in session.scalars(select(School).order_by(School.name))]


def _kiosk(public_id: str) -> Kiosk:
    kiosk = webdb.session().scalar(select(Kiosk).where(Kiosk.public_id == public_id))
    if kiosk is None:
        abort(404)
    return kiosk


def _facts(kiosk: Kiosk) -> dict[str, str]:
    """What the audit log keeps of a kiosk: never its link, code or device secret."""
    return {"school": kiosk.school.name, "name": kiosk.label}


@bp.route("/kiosks", methods=["GET", "POST"])
@requires(ADMIN)
def kiosks() -> str | tuple[str, int]:
    """The list, and the form that enrolls a kiosk: its link and code are shown once."""
    session = webdb.session()
    form = EnrollKioskForm()
    form.school.choices = _schools(session)
    if form.validate_on_submit():
        config = current_app.config
        now = now_utc()
        try:
            with webdb.unit_of_work() as db:
                school = db.scalar(select(School).where(School.public_id == form.school.data))
                if school is None:
                    raise setup.SetupError("choose the school")
                enrollment = setup.enroll_kiosk(
                    db,
                    school,
                    form.name.data or "",
                    now,
                    secret_key=config["SECRET_KEY"],
                    link_hours=config["ENROLLMENT_HOURS"],
                    code_minutes=config["ENROLLMENT_CODE_MINUTES"],
                )
                kiosk = enrollment.kiosk
                record_change(
                    db,
                    current_user(),
                    "kiosk.enroll",
                    f"kiosk:{kiosk.public_id}",
                    None,
                    _facts(kiosk),
                )
                shown = _shown(enrollment)
        except setup.SetupError as exc:
            form.name.errors = [*form.name.errors, str(exc).capitalize() + "."]
        else:
            return render_template("admin/kiosk_enrolled.html", **shown)
    status = INVALID if form.errors else 200
    return render_template(
        "admin/kiosks.html",
        form=form,
        renew_form=EmptyForm(formdata=None),
        rows=_rows(session, now_utc()),
        alert_minutes=current_app.config["CHECKIN_ALERT_MINUTES"],
    ), status


def _shown(enrollment: setup.Enrollment) -> dict[str, Any]:
    """What the page shows once: the link, the code, until when; read inside the unit of
    work, shown after it."""
    config = current_app.config
    kiosk = enrollment.kiosk
    zone_name = kiosk.school.timezone
    return {
        "name": kiosk.label,
        "school": kiosk.school.name,
        "link": f"{config['BASE_URL']}/enroll/{enrollment.token}",
        "code": devices.shown_code(enrollment.code),
        "code_page": f"{config['BASE_URL']}/enroll",
        "link_hours": config["ENROLLMENT_HOURS"],
        "code_minutes": config["ENROLLMENT_CODE_MINUTES"],
        "link_expires": _when(kiosk.enrollment_expires_at, zone_name, ""),
        "code_expires": _when(kiosk.enrollment_code_expires_at, zone_name, ""),
    }


@bp.post("/kiosks/<public_id>/renew")
@requires(ADMIN)
def kiosk_renew(public_id: str) -> Response | str:
    """A new link and code for a kiosk still waiting for its device (the old ones stop)."""
    kiosk = _kiosk(public_id)
    form = EmptyForm()
    if not form.validate_on_submit():
        return redirect(url_for("admin.kiosks"))
    config = current_app.config
    try:
        with webdb.unit_of_work() as db:
            row = locked(db, Kiosk, kiosk.id)
            assert row is not None
            enrollment = setup.renew_enrollment(
                db,
                row,
                now_utc(),
                secret_key=config["SECRET_KEY"],
                link_hours=config["ENROLLMENT_HOURS"],
                code_minutes=config["ENROLLMENT_CODE_MINUTES"],
            )
            record_change(
                db,
                current_user(),
                "kiosk.renew",
                f"kiosk:{row.public_id}",
                None,
                {**_facts(row), "setup": "new link and code"},
            )
            shown = _shown(enrollment)
    except setup.SetupError as exc:
        flash(str(exc).capitalize() + ".", "warning")
        return redirect(url_for("admin.kiosks"))
    return render_template("admin/kiosk_enrolled.html", **shown)


@bp.route("/kiosks/<public_id>/rename", methods=["GET", "POST"])
@requires(ADMIN)
def kiosk_rename(public_id: str) -> Response | str | tuple[str, int]:
    kiosk = _kiosk(public_id)
    form = RenameKioskForm(data={"name": kiosk.label})
    if form.validate_on_submit():
        try:
            with webdb.unit_of_work() as db:
                row = locked(db, Kiosk, kiosk.id)
                assert row is not None
                before = _facts(row)
                setup.rename_kiosk(db, row, form.name.data or "")
                record_change(
                    db,
                    current_user(),
                    "kiosk.rename",
                    f"kiosk:{row.public_id}",
                    before,
                    _facts(row),
                )
                name = row.label
        except setup.SetupError as exc:
            form.name.errors = [*form.name.errors, str(exc).capitalize() + "."]
        else:
            flash(f"Renamed the kiosk to {name}.", "info")
            return redirect(url_for("admin.kiosks"))
    status = INVALID if form.errors else 200
    return render_template("admin/kiosk_rename.html", form=form, kiosk=kiosk), status


@bp.route("/kiosks/<public_id>/revoke", methods=["GET", "POST"])
@requires(ADMIN)
def kiosk_revoke(public_id: str) -> Response | str | tuple[str, int]:
    """GET asks to confirm; POST takes the kiosk back (its next request says so)."""
    kiosk = _kiosk(public_id)
    form = EmptyForm()
    if form.validate_on_submit():
        with webdb.unit_of_work() as db:
            row = locked(db, Kiosk, kiosk.id)
            assert row is not None
            before = {**_facts(row), "status": devices.status(row, now_utc())}
            if devices.revoke(db, row, now_utc()):
                record_change(
                    db,
                    current_user(),
                    "kiosk.revoke",
                    f"kiosk:{row.public_id}",
                    before,
                    {**_facts(row), "status": "revoked"},
                )
        flash(f"{kiosk.label} at {kiosk.school.name} is no longer set up.", "info")
        return redirect(url_for("admin.kiosks"))
    return render_template(
        "admin/kiosk_revoke.html",
        form=form,
        kiosk=kiosk,
        state=STATUS_WORDS[devices.status(kiosk, now_utc())],
    ), (INVALID if form.errors else 200)
