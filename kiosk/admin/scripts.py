"""Script versions: the list, one version's words, an edit (always a new draft), a preview
in the desk's layout, and counsel's approval.

Admins edit; counsel approves; everyone who reads records may read a version, since an
encounter's record links to the version it showed. The rules live in
kiosk.protocol.scriptstore, shared with the command line."""

from __future__ import annotations

import json
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from kiosk import reads, webdb
from kiosk.admin.blueprint import bp
from kiosk.admin.changes import record_change
from kiosk.admin.script_forms import (
    STEP_WORDS,
    ApproveForm,
    BlocksForm,
    PackForm,
    PreviewForm,
    ShippedDraftForm,
)
from kiosk.auth.policy import ADMIN, current_user, may, requires
from kiosk.clock import now_utc
from kiosk.models import ScriptVersion, User
from kiosk.protocol import scriptstore as store
from kiosk.protocol.scripts import ANY_STEP, SITUATION_LABELS, STEPS, sample_facts

INVALID = 422


def _user() -> User:
    user = current_user()
    assert user is not None  # @requires saw to it
    return user


def _version(version_id: int) -> ScriptVersion:
    version = webdb.session().get(ScriptVersion, version_id)
    if version is None:
        abort(404)
    return version


def _subject(version: ScriptVersion) -> str:
    return f"script_version:{version.id}"


@bp.get("/scripts")
@requires("script.read")
def scripts() -> str:
    db = webdb.session()
    today = now_utc().date()
    shipped = store.shipped_changes(db)
    return render_template(
        "admin/scripts.html",
        versions=store.all_versions(db),
        in_use=store.in_use(db),
        today=today,
        overdue=store.review_overdue,
        shipped=shipped,
        shipped_form=ShippedDraftForm(formdata=None, sha=store.shipped_sha()),
        may_draft=may(current_user(), "script.draft"),
    )


def _version_page(version: ScriptVersion, approve_form: ApproveForm, status: int = 200) -> Any:
    db = webdb.session()
    in_use = store.in_use(db)
    pack = store.pack_for(version)
    steps = [*STEPS, ANY_STEP]
    blocks = sorted(pack.blocks.values(), key=lambda b: (steps.index(b.step), -b.priority))
    based_on = db.get(ScriptVersion, version.based_on_id) if version.based_on_id else None
    compare = based_on or (in_use if in_use is not None and in_use.id != version.id else None)
    return (
        render_template(
            "admin/script.html",
            version=version,
            pack=pack,
            blocks=blocks,
            in_use=in_use,
            today=now_utc().date(),
            overdue=store.review_overdue,
            compare=compare,
            changes=store.changes_between(compare, version) if compare else [],
            approve_form=approve_form,
            may_approve=may(current_user(), "script.approve", None),
            step_words=STEP_WORDS,
            may_edit=may(current_user(), ADMIN),
        ),
        status,
    )


@bp.get("/scripts/<int:id>")
@requires("script.read")
def script(id: int) -> Any:
    version = _version(id)
    form = ApproveForm(formdata=None, review_due=store.default_review_due(now_utc().date()))
    return _version_page(version, form)


def _save_draft(start: ScriptVersion, data: dict[str, Any]) -> int:
    """Store the edited pack as a new draft started from `start`; record it; return its id."""
    user = _user()
    with webdb.unit_of_work() as db:
        version = store.store_draft(
            db, store.NewVersion(data, user.display_name, start.id), now_utc()
        )
        record_change(db, user, "script.create", _subject(version), None, store.as_record(version))
        return version.id


def _saved(new_id: int) -> Response:
    flash(
        f"Saved as version {new_id}, a draft. Desks keep showing the version in use "
        "until counsel approves this one.",
        "info",
    )
    return redirect(url_for("admin.script", id=new_id))


@bp.route("/scripts/<int:id>/edit", methods=["GET", "POST"])
@requires(ADMIN)
def script_edit(id: int) -> Any:
    """The block editor: each block's words in its own fields; add and remove blocks."""
    start = _version(id)
    if request.method == "GET":
        form = BlocksForm.from_data(json.loads(store.pack_text(start)))
    else:
        form = BlocksForm()
        if request.form.get("action") == "add":
            # Nothing is saved: the page comes back as typed, with an empty block at the end.
            form.blocks.append_entry()
            return _editor(start, form, opened=len(form.blocks) - 1)
        if form.validate_on_submit():
            assert form.parsed is not None
            try:
                return _saved(_save_draft(start, form.parsed))
            except store.ScriptError as exc:
                form.pack_error = str(exc)
        return _editor(start, form, status=INVALID)
    return _editor(start, form)


def _editor(start: ScriptVersion, form: BlocksForm, status: int = 200, opened: int = -1) -> Any:
    return (
        render_template(
            "admin/script_edit.html",
            version=start,
            form=form,
            opened=opened,
            step_words=STEP_WORDS,
            situation_labels=SITUATION_LABELS,
        ),
        status,
    )


@bp.route("/scripts/<int:id>/edit/json", methods=["GET", "POST"])
@requires(ADMIN)
def script_edit_json(id: int) -> Any:
    """The whole pack as JSON, for moving a pack between systems or changing many blocks."""
    start = _version(id)
    form = PackForm()
    if request.method == "GET":
        form.content.data = store.pack_text(start)
    elif form.validate_on_submit():
        assert form.parsed is not None
        try:
            return _saved(_save_draft(start, form.parsed))
        except store.ScriptError as exc:
            form.content.errors = [str(exc)]
    status = INVALID if form.errors else 200
    return render_template("admin/script_edit_json.html", version=start, form=form), status


@bp.post("/scripts/<int:id>/approve")
@requires("script.approve")
def script_approve(id: int) -> Any:
    _version(id)  # an unknown version is a 404 before anything else
    form = ApproveForm()
    if form.validate_on_submit():
        assert form.review_due.data is not None
        user = _user()
        try:
            with webdb.unit_of_work() as db:
                approver = db.get(User, user.id)
                assert approver is not None
                approved = store.approve(db, id, approver, form.review_due.data, now_utc())
                record_change(
                    db,
                    user,
                    "script.approve",
                    _subject(approved),
                    {"status": store.DRAFT},
                    {
                        "status": store.APPROVED,
                        "approved_by": f"user:{user.public_id}",
                        "review_due": form.review_due.data.isoformat(),
                    },
                )
        except store.ScriptError as exc:
            form.review_due.errors = [str(exc)]
        else:
            flash(f"Version {id} is approved. New encounters at every desk show it.", "info")
            return redirect(url_for("admin.script", id=id))
    webdb.session().expire_all()
    return _version_page(_version(id), form, INVALID)


@bp.post("/scripts/shipped")
@requires("script.draft")
def scripts_shipped_draft() -> Any:
    form = ShippedDraftForm()
    if not form.validate_on_submit():
        abort(400)
    if form.sha.data != store.shipped_sha():
        flash("The shipped pack changed since the page was shown. Look at it again.", "warning")
        return redirect(url_for("admin.scripts"))
    user = _user()
    try:
        with webdb.unit_of_work() as db:
            version = store.draft_from_shipped(db, user.display_name, now_utc())
            record_change(
                db, user, "script.create", _subject(version), None, store.as_record(version)
            )
            new_id = version.id
    except store.ScriptError as exc:
        flash(str(exc), "warning")
        return redirect(url_for("admin.scripts"))
    flash(f"The shipped pack is stored as version {new_id}, a draft.", "info")
    return redirect(url_for("admin.script", id=new_id))


@bp.get("/scripts/<int:id>/preview")
@requires("script.read")
def script_preview(id: int) -> Any:
    """The desk's "Now" panel for sample facts, as a kiosk lays it out; nothing recorded."""
    version = _version(id)
    form = PreviewForm(request.args)
    if not form.validate():
        form = PreviewForm(formdata=None)
    step, situation = form.step.data or "start", form.situation.data or "default"
    pack = store.pack_for(version)
    panel = reads.panel_data(pack, step, sample_facts(situation))
    return render_template(
        "admin/script_preview.html",
        version=version,
        form=form,
        panel=panel,
        situation_label=SITUATION_LABELS[situation],
    )
