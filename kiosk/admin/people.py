"""People: the list, invitations and reset links, roles, disabling, PINs, unlocking, CSV import.

The rules are kiosk.protocol.people and kiosk.protocol.roster (shared with `flask users`);
each change is one unit of work that also records it (kiosk.admin.changes). A change to
what a person may do ends their sessions in that same unit of work."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from kiosk import webdb
from kiosk.admin.blueprint import bp
from kiosk.admin.changes import record_change
from kiosk.admin.forms import (
    ApplyImportForm,
    GrantForm,
    ImportForm,
    InviteForm,
    PinForm,
    grant_choices,
)
from kiosk.auth import invitations, passwords, second_factor
from kiosk.auth.forms import EmptyForm
from kiosk.auth.policy import ADMIN, current_user, requires
from kiosk.clock import now_utc
from kiosk.db import locked
from kiosk.forms import options
from kiosk.models import ROLES, School, User
from kiosk.protocol import people, roster
from kiosk.protocol.people import ROLE_LABELS, Grant, Link
from kiosk.protocol.setup import SetupError


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def _schools() -> list[School]:
    return list(webdb.session().scalars(select(School).order_by(School.name)))


def _school_choices(schools: list[School]) -> Any:
    return options([("", "District-wide")] + [(str(s.id), s.name) for s in schools])


def _me() -> User:
    user = current_user()
    assert user is not None
    return user


def _days() -> int:
    return int(current_app.config["INVITATION_DAYS"])


def _subject(user: User) -> str:
    return f"user:{user.public_id}"


def _person_or_404(public_id: str) -> User:
    user = people.find_user_by_public_id(webdb.session(), public_id)
    if user is None:
        abort(404)
    return user


@bp.get("/people", endpoint="people")
@requires(ADMIN)
def people_list() -> str:
    schools = _schools()
    school_id = request.args.get("school", type=int)
    role = request.args.get("role", "")
    if role not in ROLES:
        role = ""
    if school_id not in {s.id for s in schools}:
        school_id = None
    db = webdb.session()
    now = now_utc()
    rows = people.overview(db, people.all_people(db, school_id, role or None), now)
    return render_template(
        "admin/people.html",
        rows=rows,
        schools=schools,
        school_id=school_id,
        role=role,
        role_labels=ROLE_LABELS,
    )


def _link_page(link_url: str, user: User, purpose: str, expires: Any, mailed: bool) -> str:
    return render_template(
        "admin/people_link.html",
        link=link_url,
        person=user,
        purpose=purpose,
        mailed=mailed,
        expires=invitations.expiry_words(expires),
    )


def _parse_grant(value: str) -> Grant | None:
    """A "role:school id" choice as a Grant (by school name), or None if it names nothing."""
    role, _, school_id = value.partition(":")
    if not school_id:
        return Grant(role, None)
    school = webdb.session().get(School, int(school_id)) if school_id.isdigit() else None
    return Grant(role, school.name) if school is not None else None


@bp.route("/people/invite", methods=["GET", "POST"])
@requires(ADMIN)
def person_invite() -> Response | str | tuple[str, int]:
    form = InviteForm()
    form.roles.choices = grant_choices(_schools())
    if form.validate_on_submit():
        grants = [_parse_grant(value) for value in form.roles.data or []]
        try:
            now = now_utc()
            if not form.email.data:
                return _add_desk_person(form.name.data or "", [g for g in grants if g])
            with webdb.unit_of_work() as db:
                link = people.invite(
                    db,
                    form.name.data or "",
                    form.email.data or "",
                    [g for g in grants if g is not None],
                    now,
                    _days(),
                    _me(),
                )
                after = people.snapshot(db, link.user)
                record_change(db, _me(), "user.invite", _subject(link.user), None, after)
                mailed = _mail(db, link, now)
                page = _link_details(link)
            return _link_page(*page, mailed=mailed)
        except SetupError as exc:
            field = form._fields.get(exc.field or "", form.roles)
            field.errors = [*field.errors, _sentence(exc)]
    status = 422 if form.is_submitted() else 200
    return render_template("admin/people_invite.html", form=form), status


def _add_desk_person(name: str, grants: list[Grant]) -> Response:
    """Someone who only uses a PIN at the desk: no link; their PIN is set next."""
    with webdb.unit_of_work() as db:
        user = people.add_desk_person(db, name, grants, now_utc())
        record_change(db, _me(), "user.create", _subject(user), None, people.snapshot(db, user))
    flash(f"{user.display_name} added. Set their PIN below.", "info")
    return redirect(url_for("admin.person", public_id=user.public_id))


def _mail(db: Any, link: Link, now: Any) -> bool:
    return invitations.mail_link(
        db, current_app.config, link.user, link.invitation, link.token, now
    )


def _link_details(link: Link) -> tuple[str, User, str, Any]:
    url = invitations.welcome_link(current_app.config["BASE_URL"], link.token)
    return url, link.user, link.purpose, link.invitation.expires_at


def _person_page(user: User, status: int = 200, **forms: Any) -> tuple[str, int]:
    db = webdb.session()
    now = now_utc()
    schools = _schools()
    grant_form = forms.get("grant_form") or GrantForm(formdata=None)
    grant_form.school.choices = _school_choices(schools)
    return (
        render_template(
            "admin/person.html",
            person=user,
            grants=people.grants_of(db, user.id),
            role_labels=ROLE_LABELS,
            pin_locked=people.pin_locked(user, now),
            signin_locked=people.signin_locked(db, user, now),
            has_second_factor=second_factor.enrolled(user),
            link=invitations.open_link(db, user.id, now),
            is_me=user.id == _me().id,
            grant_form=grant_form,
            pin_form=forms.get("pin_form") or PinForm(formdata=None),
            form=EmptyForm(formdata=None),
            expiry_words=invitations.expiry_words,
            error=forms.get("error"),
        ),
        status,
    )


@bp.get("/people/<public_id>")
@requires(ADMIN)
def person(public_id: str) -> tuple[str, int]:
    return _person_page(_person_or_404(public_id))


def _change(user: User, action: str, operation: Any, message: str) -> Response | tuple[str, int]:
    """Run one change to a person in a unit of work, recorded; go back to their page, or show
    it again with the rule that refused the change."""
    try:
        with webdb.unit_of_work() as db:
            row = locked(db, User, user.id)
            assert row is not None
            before = people.snapshot(db, row)
            operation(db, row)
            db.refresh(row)
            record_change(db, _me(), action, _subject(row), before, people.snapshot(db, row))
    except SetupError as exc:
        return _person_page(user, 409, error=_sentence(exc))
    flash(message, "info")
    return redirect(url_for("admin.person", public_id=user.public_id))


@bp.post("/people/<public_id>/link")
@requires(ADMIN)
def person_link(public_id: str) -> Response | str | tuple[str, int]:
    """A new invitation (no password yet) or a password reset (the old one stops working and
    their sessions end at once)."""
    user = _person_or_404(public_id)
    if not EmptyForm().validate_on_submit():
        return _person_page(user, 400, error="The form expired. Please try again.")
    now = now_utc()
    try:
        with webdb.unit_of_work() as db:
            row = db.get(User, user.id)
            assert row is not None
            before = people.snapshot(db, row)
            link = people.send_link(db, row, now, _days(), _me())
            record_change(
                db,
                _me(),
                f"user.{link.purpose}_link",
                _subject(row),
                before,
                people.snapshot(db, row),
            )
            mailed = _mail(db, link, now)
            page = _link_details(link)
    except SetupError as exc:
        return _person_page(user, 409, error=_sentence(exc))
    return _link_page(*page, mailed=mailed)


@bp.post("/people/<public_id>/disable")
@requires(ADMIN)
def person_disable(public_id: str) -> Response | tuple[str, int]:
    user = _person_or_404(public_id)
    if not EmptyForm().validate_on_submit():
        return _person_page(user, 400, error="The form expired. Please try again.")
    now = now_utc()
    return _change(
        user,
        "user.disable",
        lambda db, row: people.set_active(db, row, False, now, _me()),
        f"{user.display_name} is disabled: signed out everywhere, no sign-in, no PIN.",
    )


@bp.post("/people/<public_id>/enable")
@requires(ADMIN)
def person_enable(public_id: str) -> Response | tuple[str, int]:
    user = _person_or_404(public_id)
    if not EmptyForm().validate_on_submit():
        return _person_page(user, 400, error="The form expired. Please try again.")
    now = now_utc()
    return _change(
        user,
        "user.enable",
        lambda db, row: people.set_active(db, row, True, now, _me()),
        f"{user.display_name} is enabled.",
    )


@bp.post("/people/<public_id>/roles")
@requires(ADMIN)
def person_grant_add(public_id: str) -> Response | tuple[str, int]:
    user = _person_or_404(public_id)
    form = GrantForm()
    schools = _schools()
    form.school.choices = _school_choices(schools)
    if not form.validate_on_submit():
        return _person_page(user, 422, grant_form=form)
    names = {str(s.id): s.name for s in schools}
    grant = Grant(form.role.data or "", names.get(form.school.data or ""))
    try:
        people.check_grant(grant)
    except SetupError as exc:
        field = form.school if exc.field == "school" else form.role
        field.errors = [*field.errors, _sentence(exc)]
        return _person_page(user, 422, grant_form=form)
    return _change(
        user,
        "user.grant",
        lambda db, row: people.add_grant(db, row, grant),
        f"{grant.label()} given to {user.display_name}; their sessions ended.",
    )


@bp.post("/people/<public_id>/roles/<int:grant_id>/remove")
@requires(ADMIN)
def person_grant_remove(public_id: str, grant_id: int) -> Response | tuple[str, int]:
    user = _person_or_404(public_id)
    if not EmptyForm().validate_on_submit():
        return _person_page(user, 400, error="The form expired. Please try again.")
    return _change(
        user,
        "user.revoke",
        lambda db, row: people.remove_grant_by_id(db, row, grant_id, _me()),
        f"Role removed from {user.display_name}; their sessions ended.",
    )


@bp.post("/people/<public_id>/pin")
@requires(ADMIN)
def person_pin(public_id: str) -> Response | tuple[str, int]:
    user = _person_or_404(public_id)
    if request.form.get("clear"):
        if not EmptyForm().validate_on_submit():
            return _person_page(user, 400, error="The form expired. Please try again.")
        return _change(
            user,
            "user.pin_clear",
            lambda db, row: people.set_pin(db, row, None),
            f"{user.display_name}'s PIN is cleared.",
        )
    form = PinForm()
    if not form.validate_on_submit():
        return _person_page(user, 422, pin_form=form)
    # Hashing is slow on purpose: done before the write lock is taken.
    hashed = passwords.hash_password(form.pin.data or "")
    return _change(
        user,
        "user.pin_set",
        lambda db, row: people.set_pin(db, row, hashed),
        f"{user.display_name}'s new PIN is set.",
    )


@bp.post("/people/<public_id>/unlock")
@requires(ADMIN)
def person_unlock(public_id: str) -> Response | tuple[str, int]:
    user = _person_or_404(public_id)
    if not EmptyForm().validate_on_submit():
        return _person_page(user, 400, error="The form expired. Please try again.")
    cleared: list[str] = []

    def unlock(db: Any, row: User) -> None:
        key = people.unlock(db, row)
        if key:
            cleared.append(key)

    response = _change(user, "user.unlock", unlock, f"{user.display_name} is unlocked.")
    known = current_app.extensions.get("signin_lockouts")
    for key in cleared:
        if known is not None:
            known.forget(key)
    return response


@bp.post("/people/<public_id>/second-factor/reset")
@requires(ADMIN)
def person_second_factor_reset(public_id: str) -> Response | tuple[str, int]:
    """A lost phone: the person's second factor and recovery codes are removed and their
    sessions end; they set it up again at their next sign-in if their role requires it."""
    user = _person_or_404(public_id)
    if not EmptyForm().validate_on_submit():
        return _person_page(user, 400, error="The form expired. Please try again.")
    with webdb.unit_of_work() as db:
        row = db.get(User, user.id)
        assert row is not None
        had = second_factor.reset(db, row)
        if had:
            record_change(
                db,
                _me(),
                "user.reset_second_factor",
                _subject(row),
                {"second_factor": "on"},
                {"second_factor": "off"},
            )
    message = (
        f"{user.display_name}'s second factor was removed; they set it up again at their next "
        "sign-in."
        if had
        else f"{user.display_name} had no second factor; nothing changed."
    )
    flash(message, "info")
    return redirect(url_for("admin.person", public_id=user.public_id))


@bp.route("/people/import", methods=["GET", "POST"])
@requires(ADMIN)
def people_import() -> str | tuple[str, int]:
    """Upload a CSV file and see exactly what it would change; nothing is written here."""
    form = ImportForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("admin/people_import.html", form=form), status
    upload = form.file.data
    raw = upload.read(roster.MAX_BYTES + 1) if upload else b""
    if not raw:
        form.file.errors = ["Choose a CSV file."]
        return render_template("admin/people_import.html", form=form), 422
    try:
        text = roster.decode(raw)
        plan = roster.plan_import(webdb.session(), text)
    except SetupError as exc:
        form.file.errors = [_sentence(exc)]
        return render_template("admin/people_import.html", form=form), 422
    return _preview(text, plan)


def _preview(text: str, plan: roster.Plan, error: str | None = None, status: int = 200) -> Any:
    apply_form = ApplyImportForm(formdata=None)
    apply_form.content.data = text
    apply_form.fingerprint.data = plan.fingerprint()
    return (
        render_template(
            "admin/people_import_preview.html",
            plan=plan,
            apply_form=apply_form,
            form=ImportForm(formdata=None),
            error=error,
        ),
        status,
    )


@bp.post("/people/import/apply")
@requires(ADMIN)
def people_import_apply() -> Response | str | tuple[str, int]:
    """Write what the preview showed, in one unit of work, or nothing."""
    form = ApplyImportForm()
    if not form.validate_on_submit() or not form.content.data:
        flash("Nothing to apply: upload the file again.", "warning")
        return redirect(url_for("admin.people_import"))
    text = form.content.data
    now = now_utc()
    try:
        with webdb.unit_of_work() as db:
            plan, links = roster.apply_import(
                db, text, form.fingerprint.data or "", now, _days(), _me()
            )
            for link in links:
                record_change(
                    db,
                    _me(),
                    "user.invite",
                    _subject(link.user),
                    None,
                    people.snapshot(db, link.user),
                )
            for planned in plan.new_grants:
                person = people.find_user(db, planned.email)
                record_change(
                    db,
                    _me(),
                    "user.grant",
                    _subject(person),
                    None,
                    {"role added": planned.grant.label()},
                )
            mailed = [_mail(db, link, now) for link in links]
            made = [
                {
                    "name": link.user.display_name,
                    "email": link.user.email,
                    "link": _link_details(link)[0],
                    "mailed": was_mailed,
                }
                for link, was_mailed in zip(links, mailed, strict=True)
            ]
    except SetupError as exc:
        try:
            plan = roster.plan_import(webdb.session(), text)
        except SetupError:
            flash(_sentence(exc), "error")
            return redirect(url_for("admin.people_import"))
        return _preview(text, plan, error=_sentence(exc), status=409)
    return render_template(
        "admin/people_import_done.html",
        plan=plan,
        made=made,
        expires=invitations.expiry_words(now + timedelta(days=_days())),
    )
