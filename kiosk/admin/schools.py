"""Schools and the district: names, time zones, school hours and days, office phones."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from kiosk import webdb
from kiosk.admin.blueprint import bp
from kiosk.admin.changes import record_change
from kiosk.admin.forms import OTHER_ZONE, DistrictForm, SchoolForm
from kiosk.auth.policy import ADMIN, current_user, requires
from kiosk.db import locked
from kiosk.models import District, School
from kiosk.protocol import setup
from kiosk.protocol.setup import COMMON_ZONES, DAY_NAMES, SetupError


def _district_form() -> DistrictForm:
    district = webdb.session().scalar(select(District).limit(1))
    form = DistrictForm()
    if not form.is_submitted() and district is not None:
        form.district_name.data = district.name
        form.district_phone.data = district.office_phone
    return form


def _list(district_form: DistrictForm | None = None) -> str:
    schools = webdb.session().scalars(select(School).order_by(School.name)).all()
    return render_template(
        "admin/schools.html",
        schools=schools,
        day_names=DAY_NAMES,
        district_form=district_form or _district_form(),
    )


@bp.get("/schools")
@requires(ADMIN)
def schools() -> str:
    return _list()


@bp.post("/schools/district")
@requires(ADMIN)
def district_save() -> Response | tuple[str, int]:
    form = DistrictForm()
    if form.validate_on_submit():
        try:
            with webdb.unit_of_work() as db:
                district = db.scalar(select(District).limit(1))
                before = (
                    {"name": district.name, "office_phone": district.office_phone}
                    if district is not None
                    else None
                )
                district = setup.set_district(
                    db, form.district_name.data or "", form.district_phone.data or ""
                )
                after = {"name": district.name, "office_phone": district.office_phone}
                record_change(db, current_user(), "district.update", "district", before, after)
            flash("District saved.", "info")
            return redirect(url_for("admin.schools"))
        except SetupError as exc:
            form.district_name.errors = [*form.district_name.errors, _sentence(exc)]
    return _list(form), 422


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def _school_form(school: School | None) -> SchoolForm:
    form = SchoolForm()
    if not form.is_submitted() and school is not None:
        form.name.data = school.name
        if school.timezone in COMMON_ZONES:
            form.timezone.data = school.timezone
        else:
            form.timezone.data = OTHER_ZONE
            form.timezone_other.data = school.timezone
        form.office_phone.data = school.office_phone
        form.hours_open.data = school.hours_open
        form.hours_close.data = school.hours_close
        form.school_days.data = [d for d in school.school_days.split(",") if d]
    return form


def _place_error(form: SchoolForm, exc: SetupError) -> None:
    """Show the rule's message next to the field it is about (the name if it names none)."""
    name = exc.field if exc.field in form._fields else "name"
    if name == "timezone" and form.timezone.data == OTHER_ZONE:
        name = "timezone_other"
    field = form._fields[name]
    field.errors = [*field.errors, _sentence(exc)]


def _values(form: SchoolForm) -> setup.SchoolInput:
    return setup.SchoolInput(
        name=form.name.data or "",
        timezone=form.chosen_zone(),
        office_phone=form.office_phone.data or "",
        hours_open=form.hours_open.data or "",
        hours_close=form.hours_close.data or "",
        school_days=tuple(int(d) for d in form.school_days.data or [] if d.isdigit()),
    )


@bp.route("/schools/new", methods=["GET", "POST"])
@requires(ADMIN)
def school_new() -> Response | str | tuple[str, int]:
    form = _school_form(None)
    if form.validate_on_submit():
        try:
            with webdb.unit_of_work() as db:
                school = setup.save_school(db, _values(form))
                record_change(
                    db,
                    current_user(),
                    "school.create",
                    f"school:{school.public_id}",
                    None,
                    setup.school_values(school),
                )
                name = school.name
            flash(f"{name} added.", "info")
            return redirect(url_for("admin.schools"))
        except SetupError as exc:
            _place_error(form, exc)
    status = 422 if form.is_submitted() else 200
    return render_template("admin/school_form.html", form=form, school=None), status


@bp.route("/schools/<public_id>", methods=["GET", "POST"])
@requires(ADMIN)
def school_edit(public_id: str) -> Response | str | tuple[str, int]:
    school = webdb.session().scalar(select(School).where(School.public_id == public_id))
    if school is None:
        abort(404)
    form = _school_form(school)
    if form.validate_on_submit():
        try:
            with webdb.unit_of_work() as db:
                row = locked(db, School, school.id)
                assert row is not None
                before = setup.school_values(row)
                setup.save_school(db, _values(form), row)
                record_change(
                    db,
                    current_user(),
                    "school.update",
                    f"school:{row.public_id}",
                    before,
                    setup.school_values(row),
                )
                name = row.name
            flash(f"{name} saved.", "info")
            return redirect(url_for("admin.schools"))
        except SetupError as exc:
            _place_error(form, exc)
    status = 422 if form.is_submitted() else 200
    return render_template("admin/school_form.html", form=form, school=school), status
