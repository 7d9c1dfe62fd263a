"""The kiosk: idle screen, one-tap start, fast paths and the guided capture. URLs carry no ids.

Every screen of an open encounter carries the "Now" panel: the words for the most urgent
situation recorded so far. Each step is one form, so no button on a page drops what was
typed on it.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
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
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from kiosk import reads, webdb
from kiosk.auth.devices import check_start_token, start_token
from kiosk.auth.policy import current_kiosk
from kiosk.clock import now_utc
from kiosk.db import locked
from kiosk.desk import forms
from kiosk.desk.blueprint import bp
from kiosk.models import Agent, Encounter, Kiosk, NamedPerson, User
from kiosk.notify.links import Links
from kiosk.notify.localtime import local
from kiosk.photos import discard_file
from kiosk.protocol import encounters as ops
from kiosk.protocol import office as office_ops
from kiosk.protocol.documents import DOC_LABELS, DOC_MEANING, PICKS, TRIAGE_QUESTIONS, DocType
from kiosk.protocol.events import Actor
from kiosk.protocol.privacy import STATUS_WORDS, WARNING, status_words
from kiosk.protocol.scripts import STEPS
from kiosk.protocol.staff import desk_staff, pin_matches, record_pin
from kiosk.security import csrf

STEP_LABELS = {
    "start": "Now",
    "staff": "Your name",
    "agents": "Agents",
    "request": "Request",
    "document": "Document",
    "exigency": "Emergency",
    "outcome": "Outcome",
    "close": "Finish",
}
INVALID = 422
# Where each fast path lands: the short form for that situation.
FAST_PATH_PAGES = {
    "emergency": "desk.exigency",
    "entering": "desk.outcome",
    "student": "desk.request_step",
    "records": "desk.request_step",
    "staff": "desk.request_step",
    "parent": "desk.request_step",
}
FAST_PATH_WORDS = {
    "emergency": "Recorded: they say it is an emergency. The district office is alerted.",
    "entering": "Recorded: they are going in.",
    "student": "Recorded: they want a student.",
    "records": "Recorded: they want records or information.",
    "staff": "Recorded: they want a staff member.",
    "parent": "Recorded: they want a parent, guardian or other adult.",
}


def _kiosk() -> Kiosk:
    kiosk = current_kiosk()
    assert kiosk is not None
    return kiosk


def _open_encounter() -> Encounter | None:
    return ops.current_encounter(webdb.session(), _kiosk())


def _desk_user(encounter: Encounter) -> User | None:
    """The staff member who identified for this encounter, if any."""
    mark = session.get("desk_user")
    if not mark or mark.get("encounter") != encounter.public_id:
        return None
    return webdb.session().scalar(select(User).where(User.public_id == mark.get("user")))


def _actor(encounter: Encounter, user: User | None = None) -> Actor:
    user = user or _desk_user(encounter)
    return ops.kiosk_actor(_kiosk(), user.id if user else None, user.display_name if user else "")


def _links() -> Links:
    return Links.from_settings(current_app.config)


def _live(encounter: Encounter, step: str | None) -> dict[str, Any]:
    """Everything on a desk page that changes without the desk doing anything."""
    undelivered_after = current_app.config["UNDELIVERED_AFTER_SECONDS"]
    return reads.desk_live(webdb.session(), encounter, step, now_utc(), undelivered_after)


def _version(encounter: Encounter) -> str:
    undelivered_after = current_app.config["UNDELIVERED_AFTER_SECONDS"]
    return reads.desk_version(encounter, now_utc(), undelivered_after)


def _top(encounter: Encounter, step: str) -> str:
    return reads.panel_situation(webdb.session(), encounter, step)


STEP_ENDPOINTS = {step: f"desk.{step}" for step in STEPS} | {
    "start": "desk.home",
    "request": "desk.request_step",
}


def _page(
    step: str, encounter: Encounter, status: int = 200, template: str | None = None, **context: Any
) -> Any:
    now = now_utc()
    # Remembered so that a form posted after the record ends is kept on it.
    session[REMEMBERED] = encounter.public_id
    live = _live(encounter, step)
    window = current_app.config["MISTAKE_WINDOW_SECONDS"]
    body = render_template(
        f"desk/{template or step}.html",
        step=step,
        steps=[(s, STEP_LABELS[s], STEP_ENDPOINTS[s]) for s in STEPS],
        encounter=encounter,
        panel=live["panel"],
        live=live,
        alert=live["alert"],
        desk_user=_desk_user(encounter),
        mistake_seconds=ops.stand_down_seconds_left(encounter, now, window),
        doc_labels=DOC_LABELS,
        doc_meaning=DOC_MEANING,
        doc_type=DocType,
        status_words=STATUS_WORDS,
        empty_form=forms.EmptyForm(formdata=None),
        **context,
    )
    return body, status


def _warn_status_words(*values: str | None) -> None:
    found: list[str] = []
    for value in values:
        found += status_words(value)
    if found:
        flash(WARNING, "warning")


def _after_save(step: str, before: str, after: str) -> Response:
    """Go on to the next step; the guided steps never carry the desk onto Finish.

    Every step shows the "Now" panel, so wherever the desk lands it has the words the
    situation needs; when a save changed them, the desk is told so.
    """
    if after != before:
        flash("Saved. The words to say have changed.", "info")
    index = STEPS.index(step)
    following = STEPS[min(index + 1, len(STEPS) - 1)]
    if following == "close":
        flash("Saved.", "info")
        return redirect(url_for(STEP_ENDPOINTS[step]))
    return redirect(url_for(STEP_ENDPOINTS[following]))


@contextlib.contextmanager
def _writing(encounter: Encounter) -> Iterator[tuple[Session, Encounter]]:
    """One unit of work on this encounter, loaded locked: operations decide on its state
    as it is now, not as it was when the page was read."""
    with webdb.unit_of_work() as db:
        yield db, ops.lock_encounter(db, encounter.id)


def _check_pin(encounter: Encounter, user: User, pin: str) -> Any:
    """Hash the PIN first, with no lock held; then record the result on the locked user."""
    matched = pin_matches(user, pin)
    actor = _actor(encounter, user)
    with _writing(encounter) as (db, current):
        person = locked(db, User, user.id)
        assert person is not None
        return record_pin(db, current, actor, person, matched, now_utc())


def with_encounter(view: Callable[..., Any]) -> Callable[..., Any]:
    """Give the view the kiosk's open encounter, or send the desk back to idle.

    A form posted after the desk's record ended is kept on that record (see _late_input).
    """

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        encounter = _open_encounter()
        if encounter is None:
            ended = _remembered_encounter() if request.method == "POST" else None
            if ended is not None:
                raise ops.DeskClosedError(ended.id)
            return redirect(url_for("desk.home"))
        return view(encounter, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


REMEMBERED = "desk_encounter"
# Form fields that carry no input of the desk's own.
NOT_INPUT = frozenset({"csrf_token", "action", "then", "edit", "remove", "now", "pin"})


def _remembered_encounter() -> Encounter | None:
    """The encounter this kiosk last showed, if it is this kiosk's."""
    public_id = session.get(REMEMBERED)
    if not public_id:
        return None
    return webdb.session().scalar(
        select(Encounter).where(Encounter.public_id == public_id, Encounter.kiosk_id == _kiosk().id)
    )


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
    kiosk = _kiosk()
    actor = ops.kiosk_actor(kiosk)
    with webdb.unit_of_work() as db:
        ended = ops.lock_encounter(db, error.encounter_id)
        added = ops.add_late_addition(db, ended, actor, now_utc(), step, fields)
    session.pop(REMEMBERED, None)
    session.pop("desk_user", None)
    if added is not None:
        flash("The district office closed this record; your note was added to it.", "info")
    else:
        flash("The district office closed this record.", "info")
    return redirect(url_for("desk.home"))


@bp.get("/")
def home() -> Any:
    encounter = _open_encounter()
    if encounter is None:
        kiosk = _kiosk()
        form = forms.StartForm(
            formdata=None,
            nonce=secrets.token_urlsafe(16),
            start_token=start_token(current_app.config["SECRET_KEY"], kiosk.device_hash or ""),
        )
        return render_template("desk/idle.html", form=form, school=kiosk.school)
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
    kiosk = _kiosk()
    if request.form.get("answer") == "new":
        nonce = secrets.token_urlsafe(16)
        with webdb.unit_of_work(urgent=True) as db:
            old = ops.lock_encounter(db, encounter.id)
            here = locked(db, Kiosk, kiosk.id)
            assert here is not None
            ops.start_instead_of(db, here, old, ops.kiosk_actor(here), nonce, now_utc(), _links())
        session.pop("desk_user", None)
        flash("A new request: the district office is being notified.", "info")
        return redirect(url_for("desk.home"))
    actor = _actor(encounter)
    with _writing(encounter) as (db, current):
        ops.confirm_same_visit(db, current, actor, now_utc())
    return redirect(url_for("desk.home"))


def _channel_form(encounter: Encounter) -> forms.ChannelForm:
    return forms.ChannelForm(data={"channel": encounter.channel, "place": encounter.place})


def _start_page(encounter: Encounter, channel_form: forms.ChannelForm, status: int = 200) -> Any:
    words = dict(forms.CHANNELS).get(encounter.channel, encounter.channel)
    if encounter.place and encounter.place != "phone":
        words += ", " + dict(forms.PLACES).get(encounter.place, encounter.place).lower()
    return _page("start", encounter, status, channel_form=channel_form, channel_words=words)


@bp.post("/start")
@csrf.exempt
def start() -> Any:
    """The one tap: no login, no typing; a repeated tap returns the same encounter."""
    kiosk = _kiosk()
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
        ops.start_encounter(db, tapped, channel, nonce, now_utc(), _links(), place=place)
    return redirect(url_for("desk.home"))


@bp.get("/status.json")
def status() -> Any:
    """What changed at the desk; a kiosk that sends back its last version is told cheaply
    when nothing did."""
    encounter = _open_encounter()
    if encounter is None:
        return jsonify(open=False)
    version = _version(encounter)
    if request.args.get("since") == version:
        pace = reads.desk_pace(encounter)
        return jsonify(open=True, unchanged=True, version=version, poll_ms=pace)
    return jsonify(open=True, **_live(encounter, request.args.get("step")))


@bp.route("/messages", methods=["GET", "POST"])
@with_encounter
def messages(encounter: Encounter) -> Any:
    """Messages from the district office, revealed on a tap (the agent may read the screen)."""
    form = forms.EmptyForm()
    if form.validate_on_submit():
        actor = _actor(encounter)
        with _writing(encounter) as (db, current):
            shown = office_ops.reveal_desk_messages(db, current, actor, now_utc())
        return _page("start", encounter, template="messages", desk_messages=shown, form=form)
    return redirect(url_for("desk.home"))


@bp.get("/cover")
def cover() -> str:
    """Privacy cover without JavaScript: neutral, but never hiding the numbers to call."""
    numbers: list[str] = []
    message = False
    if current_kiosk() is not None:
        encounter = _open_encounter()
        if encounter is not None:
            live = _live(encounter, None)
            numbers, message = live["cover"]["numbers"], live["cover"]["message"]
    return render_template("desk/cover.html", numbers=numbers, message=message)


@bp.route("/now/<what>", methods=["POST"])
@with_encounter
def fast(encounter: Encounter, what: str) -> Any:
    """One tap records what the agents say or do; the panel shows its words at once."""
    if what not in ops.FAST_PATHS:
        return redirect(url_for("desk.home"))
    if not forms.EmptyForm().validate_on_submit():
        flash("That tap did not go through. Please tap again.", "error")
        return redirect(url_for("desk.home"))
    actor = _actor(encounter)
    try:
        with _writing(encounter) as (db, current):
            ops.record_situation(db, current, actor, now_utc(), what, _links())
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
    return _page("start", encounter, template="person")


@bp.post("/channel")
@with_encounter
def channel(encounter: Encounter) -> Any:
    """Correct how the request is made and where; the panel follows."""
    form = forms.ChannelForm()
    if form.validate_on_submit():
        actor = _actor(encounter)
        try:
            with _writing(encounter) as (db, current):
                changed = ops.set_channel(
                    db,
                    current,
                    actor,
                    now_utc(),
                    form.channel.data or current.channel,
                    form.place.data or None,
                    _links(),
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
    user = _desk_user(encounter)
    form = forms.MistakeForm()
    if request.method == "POST" and form.validate_on_submit():
        actor = _actor(encounter, user)
        if user is not None:
            result = _check_pin(encounter, user, form.pin.data or "")
            if not result.ok:
                form.pin.errors = [result.message]
                return _page("start", encounter, INVALID, "mistake", form=form, person=user)
        try:
            with _writing(encounter) as (db, current):
                ops.stand_down(db, current, actor, now_utc(), window, _links())
        except ops.OperationError as exc:
            flash(str(exc), "error")
            return redirect(url_for("desk.home"))
        session.pop("desk_user", None)
        flash("Stood down as started by mistake. The district office has been told.", "info")
        return redirect(url_for("desk.home"))
    status = INVALID if form.errors else 200
    return _page("start", encounter, status, "mistake", form=form, person=user)


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
    return _page("staff", encounter, form=form, people=people)


@bp.route("/staff/pin", methods=["GET", "POST"])
@with_encounter
def pin(encounter: Encounter) -> Any:
    user = webdb.session().scalar(select(User).where(User.public_id == session.get("pin_for", "")))
    if user is None:
        return redirect(url_for("desk.staff"))
    form = forms.PinForm()
    if form.validate_on_submit():
        result = _check_pin(encounter, user, form.pin.data or "")
        if result.ok:
            session["desk_user"] = {"user": user.public_id, "encounter": encounter.public_id}
            session.pop("pin_for", None)
            flash(f"Thank you, {user.display_name}.", "info")
            return redirect(url_for("desk.agents"))
        form.pin.errors = [result.message]
        return _page("staff", encounter, INVALID, "pin", form=form, person=user)
    status = INVALID if form.errors else 200
    return _page("staff", encounter, status, "pin", form=form, person=user)


def _agent_values(form: forms.AgentForm) -> ops.AgentInput:
    chosen = set(form.id_shown.data or [])
    return ops.AgentInput(
        **{
            name: form[name].data or None
            for name in ops.AgentInput.__dataclass_fields__
            if name not in ("id_shown", "card_kept")
        },
        id_shown=",".join(k for k in ops.ID_SHOWN if k in chosen) or None,
        card_kept=bool(form.card_kept.data),
    )


def _agent_form(row: Agent | None = None) -> forms.AgentForm:
    if row is None:
        return forms.AgentForm()
    data = {name: getattr(row, name) for name in ops.AgentInput.__dataclass_fields__}
    data["id_shown"] = [k for k in (row.id_shown or "").split(",") if k]
    return forms.AgentForm(data=data)


@bp.route("/agents", methods=["GET", "POST"])
@bp.route("/agents/<int:position>", methods=["GET", "POST"])
@with_encounter
def agents(encounter: Encounter, position: int | None = None) -> Any:
    """One agent at a time; every button saves what is typed before it goes anywhere."""
    row = None
    if position is not None:
        row = webdb.session().scalar(
            select(Agent).where(Agent.encounter_id == encounter.id, Agent.position == position)
        )
        if row is None:
            return redirect(url_for("desk.agents"))
    form = _agent_form(row)
    if form.validate_on_submit():
        before = _top(encounter, "agents")
        values = _agent_values(form)
        actor = _actor(encounter)
        with _writing(encounter) as (db, current):
            saved = ops.save_agent(db, current, actor, now_utc(), values, position)
            after = _top(current, "agents")
        _warn_status_words(values.name, values.title)
        if saved is not None:
            flash(f"Agent {saved.position} saved.", "info")
        edit = request.form.get("edit", type=int)
        if edit is not None:
            return redirect(url_for("desk.agents", position=edit))
        if request.form.get("then") == "another" or position is not None:
            return redirect(url_for("desk.agents"))
        return _after_save("agents", before, after)
    status = INVALID if form.errors else 200
    return _page("agents", encounter, status, form=form, agents=encounter.agents, editing=row)


def _request_form(encounter: Encounter) -> forms.RequestForm:
    """Fill the request step from what is stored (kinds are kept as one comma-joined column)."""
    return forms.RequestForm(
        data={
            "place": encounter.place,
            "agents_present": encounter.agents_present,
            "request_kinds": [k for k in encounter.request_kinds.split(",") if k],
            "request_other": encounter.request_other,
            "purpose": encounter.purpose,
            "consent_claimed": encounter.consent_claimed,
            "consent_claim": encounter.consent_claim,
            "child_with": encounter.child_with,
        }
    )


def _people(encounter: Encounter) -> list[NamedPerson]:
    return list(
        webdb.session().scalars(
            select(NamedPerson)
            .where(NamedPerson.encounter_id == encounter.id, NamedPerson.withdrawn_at.is_(None))
            .order_by(NamedPerson.position)
        )
    )


@bp.route("/request", methods=["GET", "POST"])
@with_encounter
def request_step(encounter: Encounter) -> Any:
    """What is asked, and the people named, in one form: adding or removing a name saves
    everything else typed on the page too."""
    form = _request_form(encounter)
    action = request.form.get("action", "save")
    remove = request.form.get("remove", type=int)
    valid = form.validate_on_submit()
    if valid and action == "add_person" and not form.person_name.data:
        # Nothing is saved yet: the page comes back as typed, with the message by the box.
        form.person_name.errors = ["Type the name to add in this box first."]
        valid = False
    if valid:
        actor = _actor(encounter)
        before = _top(encounter, "request")
        values = ops.RequestInput(
            place=form.place.data or None,
            agents_present=form.agents_present.data,
            request_kinds=tuple(form.request_kinds.data or ()),
            request_other=form.request_other.data,
            purpose=form.purpose.data,
            consent_claimed=form.consent_claimed.data or None,
            consent_claim=form.consent_claim.data,
            child_with=form.child_with.data,
        )
        name = form.person_name.data
        key = current_app.config["ENCRYPTION_KEY"]
        with _writing(encounter) as (db, current):
            now = now_utc()
            ops.save_request(db, current, actor, now, values)
            if name:
                relation = form.relation.data or "unknown"
                ops.add_named_person(db, current, actor, now, name, relation, key)
            if remove is not None:
                ops.withdraw_named_person(db, current, actor, now, remove)
            after = _top(current, "request")
        _warn_status_words(values.purpose, values.consent_claim, values.request_other, name)
        if remove is not None:
            flash("Name removed from the list. The change is kept in the record.", "info")
        if name:
            flash("Name added.", "info")
        if action == "add_person" or remove is not None:
            return redirect(url_for("desk.request_step") + "#people")
        return _after_save("request", before, after)
    status = INVALID if form.errors or request.method == "POST" else 200
    return _request_page(encounter, form, status)


def _request_page(encounter: Encounter, form: forms.RequestForm, status: int) -> Any:
    return _page(
        "request",
        encounter,
        status,
        form=form,
        people=_people(encounter),
        relations=dict(forms.RELATIONS),
    )


def _document_form(encounter: Encounter) -> forms.DocumentForm:
    db = webdb.session()
    current = ops.first_document(db, encounter)
    answers = ops.stored_answers(current)
    data: dict[str, Any] = {**answers.to_dict()}
    if current is not None:
        for name in ("issuer", "case_number", "dates", "names_addresses", "matches_school"):
            data[name] = getattr(current, name)
        data["names_person"] = current.names_person
    return forms.DocumentForm(data=data)


@bp.route("/document", methods=["GET", "POST"])
@bp.post("/document/photos", endpoint="add_photo")
@with_encounter
def document(encounter: Encounter) -> Any:
    """Common documents by what the desk can see (one tap gives a first impression and its
    script), optional questions to refine it, photos and details, all in one form."""
    # kiosk.desk.photos imports this module for its helpers, so it is imported here.
    from kiosk.desk.photos import keep_photo, prepare_photo

    form = _document_form(encounter)
    if not form.validate_on_submit():
        status = INVALID if form.errors else 200
        return _document_page(encounter, form, status)
    actor = _actor(encounter)
    pick = ops.pick_by_key(request.form.get("pick"))
    # The photo first: checked and re-encoded before the write lock is taken.
    prepared = prepare_photo(form)
    before = _top(encounter, "document")
    answers = ops.answers_from(form.data)
    details = ops.DocumentDetailsInput(
        issuer=form.issuer.data,
        case_number=form.case_number.data,
        dates=form.dates.data,
        names_addresses=form.names_addresses.data,
        matches_school=form.matches_school.data or None,
    )
    photo_added = None
    try:
        with _writing(encounter) as (db, current):
            now = now_utc()
            ops.save_triage(
                db,
                current,
                actor,
                now,
                answers,
                _links(),
                names_person=form.names_person.data or None,
                pick=pick,
            )
            ops.save_document_details(db, current, actor, now, details)
            if prepared is not None:
                photo_added = keep_photo(db, current, form, prepared, actor)
            after = _top(current, "document")
    except SQLAlchemyError:
        if photo_added is not None:
            discard_file(current_app.config["PHOTO_DIR"], photo_added.stored_name)
        raise
    _warn_status_words(details.names_addresses)
    if form.photo.errors:
        # Everything else was saved; the photo's problem shows next to it.
        return _document_page(encounter, form, INVALID)
    if photo_added is not None:
        flash("Photo added.", "info")
    if pick is not None or request.form.get("action") == "answers":
        return redirect(url_for("desk.document"))
    if request.form.get("action") == "photo" or request.endpoint == "desk.add_photo":
        return redirect(url_for("desk.document") + "#photos")
    return _after_save("document", before, after)


def _document_page(encounter: Encounter, form: forms.DocumentForm, status: int) -> Any:
    from kiosk.desk.photos import photo_list

    impression = encounter.doc_confirmed_type or encounter.doc_first_impression
    current = ops.first_document(webdb.session(), encounter)
    return _page(
        "document",
        encounter,
        status,
        form=form,
        picks=PICKS,
        question_keys=[q.key for q in TRIAGE_QUESTIONS],
        picked=current.pick if current else None,
        impression=DocType(impression) if impression else None,
        photos=photo_list(encounter),
    )


def _now_hm(encounter: Encounter) -> str:
    return local(now_utc(), encounter.school.timezone).strftime("%H:%M")


@bp.route("/exigency", methods=["GET", "POST"])
@with_encounter
def exigency(encounter: Encounter) -> Any:
    choice = {True: "yes", False: "no", None: None}[encounter.exigency]
    # Built from plain data: a form given obj= would read the stored True/False instead.
    form = forms.ExigencyForm(
        data={
            "exigency": choice,
            "exigency_reason": encounter.exigency_reason,
            "exigency_directives": encounter.exigency_directives,
        }
    )
    if form.validate_on_submit():
        before = _top(encounter, "exigency")
        values = ops.ExigencyInput(
            exigency={"yes": True, "no": False}.get(form.exigency.data or ""),
            exigency_reason=form.exigency_reason.data,
            exigency_directives=form.exigency_directives.data,
        )
        actor = _actor(encounter)
        with _writing(encounter) as (db, current):
            ops.save_exigency(db, current, actor, now_utc(), values, _links())
            after = _top(current, "exigency")
        _warn_status_words(values.exigency_reason, values.exigency_directives)
        if values.exigency:
            # The emergency lasts: the desk stays where its words and its notes are.
            flash("Saved.", "info")
            return redirect(url_for("desk.exigency"))
        return _after_save("exigency", before, after)
    status = INVALID if form.errors else 200
    return _page("exigency", encounter, status, form=form)


@bp.route("/outcome", methods=["GET", "POST"])
@with_encounter
def outcome(encounter: Encounter) -> Any:
    """What happened; "Now" buttons stamp a time and save everything typed with it."""
    form = forms.OutcomeForm(obj=encounter)
    if form.validate_on_submit():
        stamp = request.form.get("now")
        if stamp in ("entry_started", "entry_ended"):
            form[stamp].data = _now_hm(encounter)
        before = _top(encounter, "outcome")
        values = ops.OutcomeInput(
            outcome=form.outcome.data or None,
            entry_areas=form.entry_areas.data,
            entry_started=form.entry_started.data,
            entry_ended=form.entry_ended.data,
            outcome_other=form.outcome_other.data,
            witnesses=form.witnesses.data,
        )
        actor = _actor(encounter)
        with _writing(encounter) as (db, current):
            ops.save_outcome(db, current, actor, now_utc(), values)
            after = _top(current, "outcome")
        _warn_status_words(values.entry_areas, values.outcome_other, values.witnesses)
        if stamp:
            flash(f"Time recorded: {form[stamp].data}.", "info")
            return redirect(url_for("desk.outcome"))
        return _after_save("outcome", before, after)
    status = INVALID if form.errors else 200
    return _page("outcome", encounter, status, form=form)


@bp.route("/close", methods=["GET", "POST"])
@with_encounter
def close(encounter: Encounter) -> Any:
    """Close the desk's part; afterwards the kiosk shows nothing of this encounter."""
    form = forms.EmptyForm()
    if form.validate_on_submit():
        actor = _actor(encounter)
        with _writing(encounter) as (db, current):
            ops.close_desk(db, current, actor, now_utc())
        session.pop("desk_user", None)
        session.pop("pin_for", None)
        flash("The desk's part is closed. The district office keeps the record.", "info")
        return redirect(url_for("desk.home"))
    return _page(
        "close",
        encounter,
        form=form,
        people_count=len(_people(encounter)),
    )
