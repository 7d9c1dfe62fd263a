"""The kiosk: idle screen, one-tap start, fast paths, the status the desk polls, the cover,
messages, "started by mistake" and who is at the desk. URLs carry no ids.

Every screen of an open encounter carries the "Now" panel: the words for the most urgent
situation recorded so far. The guided capture lives in kiosk.desk.capture.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import (
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select
from werkzeug.wrappers import Response

from kiosk import reads, webdb
from kiosk.auth.devices import check_start_token, start_token
from kiosk.auth.policy import current_kiosk
from kiosk.clock import now_utc
from kiosk.db import locked
from kiosk.desk import forms
from kiosk.desk.blueprint import bp
from kiosk.desk.common import (
    FAST_PATH_PAGES,
    FAST_PATH_WORDS,
    INVALID,
    NOT_INPUT,
    REMEMBERED,
    check_pin,
    desk_actor,
    desk_user,
    desk_version,
    kiosk_here,
    links,
    live_state,
    open_encounter,
    page,
    with_encounter,
    writing,
)
from kiosk.localtime import local
from kiosk.models import Encounter, Kiosk, User
from kiosk.protocol import capture
from kiosk.protocol import encounters as ops
from kiosk.protocol import office as office_ops
from kiosk.protocol.staff import desk_staff
from kiosk.security import csrf


@bp.errorhandler(ops.DeskClosedError)
def _late_input(error: ops.DeskClosedError) -> Response:
    """The record ended while the desk was typing: keep what was sent, and say so."""
    fields = {
        name: " | ".join(v for v in values if v)
        for name, values in request.form.to_dict(flat=False).items()
        if name not in NOT_INPUT
    }
    if request.files and any(f.filename for f in request.files.values()):
        fields["photo"] = "A photo was sent after the record ended; it was not kept."
    if request.endpoint == "desk.fast":
        fields["tapped"] = str((request.view_args or {}).get("what", ""))
    step = (request.endpoint or "desk.unknown").removeprefix("desk.").removesuffix("_step")
    kiosk = kiosk_here()
    actor = ops.kiosk_actor(kiosk)
    with webdb.unit_of_work() as db:
        ended = ops.lock_encounter(db, error.encounter_id)
        added = capture.add_late_addition(db, ended, actor, now_utc(), step, fields)
    session.pop(REMEMBERED, None)
    session.pop("desk_user", None)
    if added is not None:
        flash("The district office closed this record; your note was added to it.", "info")
    else:
        flash("The district office closed this record.", "info")
    return redirect(url_for("desk.home"))


# The idle screen asks for news this often: it checks the kiosk in (so a quiet kiosk is
# noticed, kiosk/protocol/checkins.py), and learns at once when the device is revoked.
IDLE_POLL_MS = 60_000


@bp.get("/")
def home() -> Any:
    encounter = open_encounter()
    if encounter is None:
        kiosk = kiosk_here()
        form = forms.StartForm(
            formdata=None,
            nonce=secrets.token_urlsafe(16),
            start_token=start_token(current_app.config["SECRET_KEY"], kiosk.device_hash or ""),
        )
        return render_template(
            "desk/idle.html", form=form, school=kiosk.school, idle_poll_ms=IDLE_POLL_MS
        )
    if ops.is_stale(encounter, now_utc()):
        return _same_visit_page(encounter)
    return _start_page(encounter, _channel_form(encounter))


def _same_visit_page(encounter: Encounter, status: int = 200) -> Any:
    """An old record is still open here: ask before going on with it."""
    zone_name = encounter.school.timezone
    started = local(encounter.started_at, zone_name)
    today = local(now_utc(), zone_name).date()
    when = (
        started.strftime("%H:%M")
        if started.date() == today
        else started.strftime("%H:%M on %A %d %B")
    )
    return render_template(
        "desk/same_visit.html",
        form=forms.EmptyForm(),
        started=when,
        school=encounter.school,
    ), status


@bp.post("/visit")
@with_encounter
def visit(encounter: Encounter) -> Any:
    """Answer "Is this the same visit?": go on with it, or start a new request."""
    form = forms.EmptyForm()
    if not form.validate_on_submit():
        return _same_visit_page(encounter, INVALID)
    kiosk = kiosk_here()
    if request.form.get("answer") == "new":
        nonce = secrets.token_urlsafe(16)
        with webdb.unit_of_work(urgent=True) as db:
            old = ops.lock_encounter(db, encounter.id)
            here = locked(db, Kiosk, kiosk.id)
            assert here is not None
            ops.start_instead_of(db, here, old, ops.kiosk_actor(here), nonce, now_utc(), links())
        session.pop("desk_user", None)
        flash("A new request: the district office is being notified.", "info")
        return redirect(url_for("desk.home"))
    actor = desk_actor(encounter)
    with writing(encounter) as (db, current):
        ops.confirm_same_visit(db, current, actor, now_utc())
    return redirect(url_for("desk.home"))


def _channel_form(encounter: Encounter) -> forms.ChannelForm:
    return forms.ChannelForm(data={"channel": encounter.channel, "place": encounter.place})


def _start_page(encounter: Encounter, channel_form: forms.ChannelForm, status: int = 200) -> Any:
    words = dict(forms.CHANNELS).get(encounter.channel, encounter.channel)
    if encounter.place and encounter.place != "phone":
        words += ", " + dict(forms.PLACES).get(encounter.place, encounter.place).lower()
    return page("start", encounter, status, channel_form=channel_form, channel_words=words)


@bp.post("/start")
@csrf.exempt
def start() -> Any:
    """The one tap: no login, no typing; a repeated tap returns the same encounter."""
    kiosk = kiosk_here()
    form = forms.StartForm()
    if not check_start_token(
        current_app.config["SECRET_KEY"], kiosk.device_hash or "", form.start_token.data or ""
    ):
        return redirect(url_for("desk.home"))
    channel = form.channel.data if form.channel.data in ops.CHANNELS else "in_person"
    # An off-site place is only asked beside "our staff, reporting from elsewhere".
    place = form.place.data if channel == "offsite" else None
    nonce = (form.nonce.data or "")[:64]
    # The tap goes ahead of every other writer: nothing stands between it and the alert.
    with webdb.unit_of_work(urgent=True) as db:
        tapped = locked(db, Kiosk, kiosk.id)
        assert tapped is not None
        ops.start_encounter(db, tapped, channel, nonce, now_utc(), links(), place=place)
    return redirect(url_for("desk.home"))


@bp.get("/status.json")
def status() -> Any:
    """What changed at the desk; a kiosk that sends back its last version is told cheaply
    when nothing did."""
    encounter = open_encounter()
    if encounter is None:
        return jsonify(open=False)
    version = desk_version(encounter)
    if request.args.get("since") == version:
        pace = reads.desk_pace(encounter)
        return jsonify(open=True, unchanged=True, version=version, poll_ms=pace)
    return jsonify(open=True, **live_state(encounter, request.args.get("step")))


@bp.route("/messages", methods=["GET", "POST"])
@with_encounter
def messages(encounter: Encounter) -> Any:
    """Messages from the district office, revealed on a tap (the agent may read the screen)."""
    form = forms.EmptyForm()
    if form.validate_on_submit():
        actor = desk_actor(encounter)
        with writing(encounter) as (db, current):
            shown = office_ops.reveal_desk_messages(db, current, actor, now_utc())
        return page("start", encounter, template="messages", desk_messages=shown, form=form)
    return redirect(url_for("desk.home"))


@bp.get("/cover")
def cover() -> str:
    """Privacy cover without JavaScript: neutral, but never hiding the numbers to call."""
    numbers: list[str] = []
    message = False
    if current_kiosk() is not None:
        encounter = open_encounter()
        if encounter is not None:
            live = live_state(encounter, None)
            numbers, message = live["cover"]["numbers"], live["cover"]["message"]
    return render_template("desk/cover.html", numbers=numbers, message=message)


@bp.route("/now/<what>", methods=["POST"])
@with_encounter
def fast(encounter: Encounter, what: str) -> Any:
    """One tap records what the agents say or do; the panel shows its words at once."""
    if what not in capture.FAST_PATHS:
        return redirect(url_for("desk.home"))
    if not forms.EmptyForm().validate_on_submit():
        flash("That tap did not go through. Please tap again.", "error")
        return redirect(url_for("desk.home"))
    actor = desk_actor(encounter)
    try:
        with writing(encounter) as (db, current):
            capture.record_situation(db, current, actor, now_utc(), what, links())
    except ops.OperationError as exc:
        flash(str(exc), "error")
        return redirect(url_for("desk.home"))
    flash(FAST_PATH_WORDS[what], "info")
    anchor = "#people" if what in ("student", "records", "staff") else ""
    if what == "parent":
        anchor = "#child"
    return redirect(url_for(FAST_PATH_PAGES[what]) + anchor)


@bp.get("/person")
@with_encounter
def person(encounter: Encounter) -> Any:
    """Who they want: a staff member, or a parent, guardian or other adult."""
    return page("start", encounter, template="person")


@bp.post("/channel")
@with_encounter
def channel(encounter: Encounter) -> Any:
    """Correct how the request is made and where; the panel follows."""
    form = forms.ChannelForm()
    if form.validate_on_submit():
        actor = desk_actor(encounter)
        try:
            with writing(encounter) as (db, current):
                changed = ops.set_channel(
                    db,
                    current,
                    actor,
                    now_utc(),
                    form.channel.data or current.channel,
                    form.place.data or None,
                    links(),
                )
        except ops.OperationError as exc:
            if exc.field in form:
                form[exc.field].errors = [str(exc)]
            else:
                flash(str(exc), "error")
                return redirect(url_for("desk.home"))
        else:
            if changed:
                flash("Saved. The words to say follow it.", "info")
            return redirect(url_for("desk.home"))
    return _start_page(encounter, form, INVALID)


@bp.route("/mistake", methods=["GET", "POST"])
@with_encounter
def mistake(encounter: Encounter) -> Any:
    """Stand down an alert started by mistake: a second screen confirms it, with a PIN
    when someone has identified."""
    window = current_app.config["MISTAKE_WINDOW_SECONDS"]
    now = now_utc()
    if ops.stand_down_seconds_left(encounter, now, window) is None:
        flash(
            "It is too late to mark this as started by mistake. "
            "Close the desk's part instead; the district office will review it.",
            "error",
        )
        return redirect(url_for("desk.home"))
    user = desk_user(encounter)
    form = forms.MistakeForm()
    if request.method == "POST" and form.validate_on_submit():
        actor = desk_actor(encounter, user)
        if user is not None:
            result = check_pin(encounter, user, form.pin.data or "")
            if not result.ok:
                form.pin.errors = [result.message]
                return page("start", encounter, INVALID, "mistake", form=form, person=user)
        try:
            with writing(encounter) as (db, current):
                ops.stand_down(db, current, actor, now_utc(), window, links())
        except ops.OperationError as exc:
            flash(str(exc), "error")
            return redirect(url_for("desk.home"))
        session.pop("desk_user", None)
        flash("Stood down as started by mistake. The district office has been told.", "info")
        return redirect(url_for("desk.home"))
    status = INVALID if form.errors else 200
    return page("start", encounter, status, "mistake", form=form, person=user)


@bp.route("/staff", methods=["GET", "POST"])
@with_encounter
def staff(encounter: Encounter) -> Any:
    """Tap your name (then your PIN). Optional; the alert is already out."""
    people = desk_staff(webdb.session(), encounter.school_id)
    form = forms.StaffPickForm()
    if form.validate_on_submit():
        chosen = next((p for p in people if p.public_id == form.user.data), None)
        if chosen is not None:
            session["pin_for"] = chosen.public_id
            return redirect(url_for("desk.pin"))
    return page("staff", encounter, form=form, people=people)


@bp.route("/staff/pin", methods=["GET", "POST"])
@with_encounter
def pin(encounter: Encounter) -> Any:
    user = webdb.session().scalar(select(User).where(User.public_id == session.get("pin_for", "")))
    if user is None:
        return redirect(url_for("desk.staff"))
    form = forms.PinForm()
    if form.validate_on_submit():
        result = check_pin(encounter, user, form.pin.data or "")
        if result.ok:
            session["desk_user"] = {"user": user.public_id, "encounter": encounter.public_id}
            session.pop("pin_for", None)
            flash(f"Thank you, {user.display_name}.", "info")
            return redirect(url_for("desk.agents"))
        form.pin.errors = [result.message]
        return page("staff", encounter, INVALID, "pin", form=form, person=user)
    status = INVALID if form.errors else 200
    return page("staff", encounter, status, "pin", form=form, person=user)
