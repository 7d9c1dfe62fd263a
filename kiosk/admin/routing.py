"""Alert routing per school: who is alerted at each level and by which channel, when the
alert escalates, and the district's phones. The rules are kiosk.protocol.setup's, shared
with the command line; every change is recorded with who made it, before and after."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response

from kiosk import webdb
from kiosk.admin import routing_forms as forms
from kiosk.admin.blueprint import bp
from kiosk.admin.changes import record_change
from kiosk.auth.policy import ADMIN, current_user, requires
from kiosk.config import missing_sms_settings
from kiosk.db import locked
from kiosk.models import Contact, School, User
from kiosk.protocol import setup
from kiosk.vocabulary import PLACE_PHRASES

LEVEL_HEADINGS = (
    ("level1", "Level 1: alerted at once"),
    ("after_hours", "After hours: alerted first outside school hours"),
    ("level2", "Level 2: if nobody has acknowledged"),
    ("level3", "Level 3: if still nobody has"),
    ("places", "Off-site places"),
)
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _admin() -> User:
    user = current_user()
    assert user is not None
    return user


def _school(public_id: str) -> School:
    school = webdb.session().scalar(select(School).where(School.public_id == public_id))
    if school is None:
        abort(404)
    return school


def _contact(school: School, contact_id: int) -> Contact:
    contact = webdb.session().get(Contact, contact_id)
    if contact is None or contact.school_id != school.id:
        abort(404)
    return contact


def _attach(form: FlaskForm, error: setup.SetupError, fallback: str) -> None:
    """Show a rule's reason next to the field it names (or the form's first field)."""
    name = error.field if error.field in form else fallback
    form[name].errors = [*form[name].errors, _sentence(str(error))]


def _sentence(reason: str) -> str:
    reason = reason.replace(" (--webhook-secret)", "").replace(" (--phone)", "")
    reason = reason.replace("by --places or --after-hours", "by places or as after hours")
    return reason[:1].upper() + reason[1:] + ("" if reason.endswith(".") else ".")


def group(contact: Contact) -> str:
    if contact.places:
        return "places"
    if contact.after_hours:
        return "after_hours"
    return f"level{contact.level}"


def _hours(school: School) -> str:
    days = [int(d) for d in school.school_days.split(",") if d.strip().isdigit()]
    names = ", ".join(DAY_NAMES[d] for d in days if d < len(DAY_NAMES))
    return f"{school.hours_open}–{school.hours_close}, {names} ({school.timezone})"


@bp.get("/routing")
@requires(ADMIN)
def routing() -> str:
    """Choose a school; the district's phones are set here, for every school at once."""
    db = webdb.session()
    district = setup.the_district(db)
    form = forms.DistrictPhonesForm(
        formdata=None,
        office_phone=district.office_phone if district else "",
        hotline_phone=district.hotline_phone if district else "",
        hotline_enabled=district.hotline_enabled if district else False,
    )
    return _index(form)


def _index(form: forms.DistrictPhonesForm, status: int = 200) -> Any:
    db = webdb.session()
    schools = db.scalars(select(School).order_by(School.name)).all()
    counts = {school.id: 0 for school in schools}
    for contact in db.scalars(select(Contact).where(Contact.active)):
        counts[contact.school_id] = counts.get(contact.school_id, 0) + 1
    return render_template(
        "admin/routing.html",
        schools=schools,
        counts=counts,
        form=form,
        district=setup.the_district(db),
    ), status


@bp.post("/routing/district")
@requires(ADMIN)
def routing_district() -> Any:
    form = forms.DistrictPhonesForm()
    if form.validate_on_submit():
        try:
            with webdb.unit_of_work() as db:
                before = setup.district_values(setup.the_district(db))
                district = setup.set_district_phones(
                    db,
                    form.office_phone.data or "",
                    form.hotline_phone.data or "",
                    bool(form.hotline_enabled.data),
                )
                record_change(
                    db,
                    _admin(),
                    "district.phones",
                    f"district:{district.id}",
                    before,
                    setup.district_values(district),
                )
        except setup.SetupError as exc:
            _attach(form, exc, "office_phone")
        else:
            flash("District phones saved.", "info")
            return redirect(url_for("admin.routing"))
    return _index(form, 422)


@bp.get("/routing/<public_id>")
@requires(ADMIN)
def routing_school(public_id: str) -> Any:
    school = _school(public_id)
    form = forms.EscalationForm(
        formdata=None,
        level2_after_minutes=school.level2_after_minutes,
        level3_after_minutes=school.level3_after_minutes,
        realert_minutes=school.realert_minutes,
    )
    return _school_page(school, form)


def _school_page(school: School, form: forms.EscalationForm, status: int = 200) -> Any:
    contacts = setup.contacts_of(webdb.session(), school)
    groups: dict[str, list[Contact]] = {key: [] for key, _ in LEVEL_HEADINGS}
    for contact in contacts:
        groups[group(contact)].append(contact)
    return render_template(
        "admin/routing_school.html",
        school=school,
        groups=groups,
        headings=LEVEL_HEADINGS,
        form=form,
        hours=_hours(school),
        shown_address=setup.shown_address,
        place_words=PLACE_PHRASES,
    ), status


@bp.post("/routing/<public_id>/escalation")
@requires(ADMIN)
def routing_escalation(public_id: str) -> Any:
    school = _school(public_id)
    form = forms.EscalationForm()
    if form.validate_on_submit():
        values = setup.RoutingInput(
            level2_after_minutes=form.level2_after_minutes.data,
            level3_after_minutes=form.level3_after_minutes.data,
            realert_minutes=form.realert_minutes.data,
        )
        try:
            with webdb.unit_of_work() as db:
                row = locked(db, School, school.id)
                if row is None:
                    abort(404)
                before = setup.routing_values(row)
                setup.set_routing(db, school.name, values)
                record_change(
                    db,
                    _admin(),
                    "routing.update",
                    f"school:{row.public_id}",
                    before,
                    setup.routing_values(row),
                )
        except setup.SetupError as exc:
            _attach(form, exc, "level2_after_minutes")
        else:
            flash("Escalation times saved.", "info")
            return redirect(url_for("admin.routing_school", public_id=public_id))
    # The page is read again: nothing was saved, and the form keeps what was typed.
    webdb.session().expire_all()
    return _school_page(_school(public_id), form, 422)


@bp.route("/routing/<public_id>/contacts/new", methods=["GET", "POST"])
@requires(ADMIN)
def routing_contact_new(public_id: str) -> Any:
    school = _school(public_id)
    form = forms.ContactForm()
    if request.method == "GET":
        return _contact_page(school, form, None)
    if form.validate_on_submit():
        gateway = tuple(missing_sms_settings(current_app.config))
        try:
            with webdb.unit_of_work() as db:
                contact = setup.add_contact(db, form.values(school.name), gateway)
                record_change(
                    db,
                    _admin(),
                    "contact.create",
                    f"contact:{contact.id}",
                    None,
                    setup.contact_values(contact),
                )
                name = contact.name
        except setup.SetupError as exc:
            _attach(form, exc, "name")
        else:
            flash(f"Contact added: {name}.", "info")
            return redirect(url_for("admin.routing_school", public_id=public_id))
    _secret_not_kept(form)
    return _contact_page(school, form, None, 422)


def _secret_not_kept(form: forms.ContactForm) -> None:
    """A secret typed into a form that comes back is not written into the page: say so."""
    if form.webhook_secret.data and not form.webhook_secret.errors:
        form.webhook_secret.errors = [forms.RETYPE_MESSAGE]


def _contact_page(
    school: School, form: forms.ContactForm, contact: Contact | None, status: int = 200
) -> Any:
    return render_template(
        "admin/routing_contact.html",
        school=school,
        form=form,
        contact=contact,
        remove_form=FlaskForm() if contact else None,
    ), status


@bp.route("/routing/<public_id>/contacts/<int:contact_id>", methods=["GET", "POST"])
@requires(ADMIN)
def routing_contact_edit(public_id: str, contact_id: int) -> Any:
    school = _school(public_id)
    contact = _contact(school, contact_id)
    if request.method == "GET":
        form = forms.ContactForm(
            formdata=None,
            name=contact.name,
            level=str(contact.level),
            channel=contact.channel,
            address=contact.address,
            phone=contact.phone,
            after_hours=contact.after_hours,
            places=[p for p in contact.places.split(",") if p],
            webhook_format=contact.webhook_format,
            active=contact.active,
        )
        return _contact_page(school, form, contact)
    form = forms.ContactForm()
    if form.validate_on_submit():
        gateway = tuple(missing_sms_settings(current_app.config))
        try:
            with webdb.unit_of_work() as db:
                row = locked(db, Contact, contact.id)
                if row is None:
                    abort(404)
                before = setup.contact_values(row)
                setup.update_contact(
                    db, row, form.values(school.name), bool(form.active.data), gateway
                )
                record_change(
                    db,
                    _admin(),
                    "contact.update",
                    f"contact:{row.id}",
                    before,
                    setup.contact_values(row),
                )
                name = row.name
        except setup.SetupError as exc:
            _attach(form, exc, "name")
        else:
            flash(f"Contact saved: {name}.", "info")
            return redirect(url_for("admin.routing_school", public_id=public_id))
    _secret_not_kept(form)
    webdb.session().expire_all()
    return _contact_page(school, form, _contact(school, contact_id), 422)


@bp.post("/routing/<public_id>/contacts/<int:contact_id>/remove")
@requires(ADMIN)
def routing_contact_remove(public_id: str, contact_id: int) -> Response:
    school = _school(public_id)
    contact = _contact(school, contact_id)
    if not FlaskForm().validate_on_submit():
        flash("The page had expired. Please try again.", "error")
        return redirect(
            url_for("admin.routing_contact_edit", public_id=public_id, contact_id=contact_id)
        )
    with webdb.unit_of_work() as db:
        row = locked(db, Contact, contact.id)
        if row is None:
            abort(404)
        before = setup.contact_values(row)
        name = row.name
        outcome = setup.remove_contact(db, row)
        after = None if outcome == "deleted" else setup.contact_values(row)
        action = "contact.delete" if outcome == "deleted" else "contact.deactivate"
        record_change(db, _admin(), action, f"contact:{contact_id}", before, after)
    if outcome == "deleted":
        flash(f"Contact removed: {name}.", "info")
    else:
        flash(
            f"{name} is no longer alerted. Alerts were sent to this contact, so it stays on "
            "record, marked inactive.",
            "info",
        )
    return redirect(url_for("admin.routing_school", public_id=public_id))
