"""The kiosk: idle screen, one-tap start, and the guided capture. URLs carry no ids."""

from __future__ import annotations

import secrets
from collections.abc import Callable
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
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from kiosk import webdb
from kiosk.auth.devices import check_start_token, start_token
from kiosk.auth.policy import current_kiosk
from kiosk.clock import now_utc
from kiosk.desk import forms
from kiosk.desk.blueprint import bp
from kiosk.models import Agent, DeskMessage, Encounter, Kiosk, NamedPerson, User
from kiosk.notify.links import Links
from kiosk.notify.localtime import clock_time
from kiosk.protocol import encounters as ops
from kiosk.protocol import office as office_ops
from kiosk.protocol.documents import DOC_LABELS, DOC_MEANING, DocType, TriageAnswers
from kiosk.protocol.events import Actor
from kiosk.protocol.privacy import STATUS_WORDS, WARNING, status_words
from kiosk.protocol.scripts import STEPS, Block
from kiosk.protocol.scriptstore import pack_by_id
from kiosk.protocol.staff import check_pin, desk_staff
from kiosk.security import csrf

STEP_LABELS = {
    "start": "Start",
    "staff": "Your name",
    "agents": "Agents",
    "request": "Request",
    "document": "Document",
    "exigency": "Emergency",
    "outcome": "Outcome",
    "close": "Finish",
}
INVALID = 422


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


def _actor(encounter: Encounter) -> Actor:
    user = _desk_user(encounter)
    return ops.kiosk_actor(_kiosk(), user.id if user else None, user.display_name if user else "")


def _block(encounter: Encounter, step: str) -> Block:
    assert encounter.script_version_id is not None
    pack = pack_by_id(webdb.session(), encounter.script_version_id)
    return pack.block(step, ops.facts_for(encounter))


def _alert(encounter: Encounter) -> dict[str, Any]:
    state = ops.alert_state(
        webdb.session(), encounter, now_utc(), current_app.config["UNDELIVERED_AFTER_SECONDS"]
    )
    if state.state == "notified" and state.notified_at is not None:
        text = f"Office notified at {clock_time(state.notified_at, encounter.school.timezone)}"
    elif state.state == "undelivered":
        numbers = " or ".join(state.phones) or "the district office"
        text = f"Not delivered yet: call the office at {numbers}"
    else:
        text = "Notifying the office…"
    return {"state": state.state, "text": text}


STEP_ENDPOINTS = {step: f"desk.{step}" for step in STEPS} | {
    "start": "desk.home",
    "request": "desk.request_step",
}


def _page(
    step: str, encounter: Encounter, status: int = 200, template: str | None = None, **context: Any
) -> Any:
    now = now_utc()
    live = _live(encounter, step)
    body = render_template(
        f"desk/{template or step}.html",
        step=step,
        steps=[(s, STEP_LABELS[s], STEP_ENDPOINTS[s]) for s in STEPS],
        encounter=encounter,
        block=_block(encounter, step),
        live=live,
        alert=live["alert"],
        desk_user=_desk_user(encounter),
        can_stand_down=ops.can_stand_down(
            encounter, now, current_app.config["MISTAKE_WINDOW_SECONDS"]
        ),
        doc_labels=DOC_LABELS,
        doc_meaning=DOC_MEANING,
        doc_type=DocType,
        status_words=STATUS_WORDS,
        mistake_form=forms.EmptyForm(formdata=None),
        **context,
    )
    return body, status


def _warn_status_words(*values: str | None) -> None:
    found: list[str] = []
    for value in values:
        found += status_words(value)
    if found:
        flash(WARNING, "warning")


def _next(step: str) -> Response:
    index = STEPS.index(step)
    return redirect(url_for(STEP_ENDPOINTS[STEPS[min(index + 1, len(STEPS) - 1)]]))


def with_encounter(view: Callable[[Encounter], Any]) -> Callable[[], Any]:
    """Give the view the kiosk's open encounter, or send the desk back to idle."""

    def wrapped() -> Any:
        encounter = _open_encounter()
        if encounter is None:
            return redirect(url_for("desk.home"))
        return view(encounter)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


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
    return _page("start", encounter, form=forms.EmptyForm())


@bp.post("/start")
@csrf.exempt
@webdb.urgent_write
def start() -> Any:
    """The one tap: no login, no typing; a repeated tap returns the same encounter."""
    kiosk = _kiosk()
    form = forms.StartForm()
    if not check_start_token(
        current_app.config["SECRET_KEY"], kiosk.device_hash or "", form.start_token.data or ""
    ):
        return redirect(url_for("desk.home"))
    channel = form.channel.data if form.channel.data in ops.CHANNELS else "in_person"
    db = webdb.session()
    ops.start_encounter(
        db,
        kiosk,
        channel,
        (form.nonce.data or "")[:64],
        now_utc(),
        Links.from_settings(current_app.config),
    )
    db.commit()
    return redirect(url_for("desk.home"))


def _live(encounter: Encounter, step: str | None) -> dict[str, Any]:
    """Everything on a desk page that changes without the desk doing anything."""
    db = webdb.session()
    now = now_utc()
    zone = encounter.school.timezone
    ack = office_ops.first_acknowledgement(db, encounter)
    unread = db.scalar(
        select(func.count())
        .select_from(DeskMessage)
        .where(DeskMessage.encounter_id == encounter.id, DeskMessage.revealed_at.is_(None))
    )
    escalation = ops.escalation_state(db, encounter, now)
    live: dict[str, Any] = {
        "alert": _alert(encounter),
        "ack": None
        if ack is None
        else {
            "text": f"Acknowledged by {office_ops.acknowledger_name(db, ack)} "
            f"at {clock_time(ack.at, zone)}"
        },
        "messages": {"unread": int(unread or 0)},
        "escalation": {
            "missed": escalation.missed,
            "level": escalation.level,
            "seconds_to_next": escalation.seconds_to_next,
            "numbers": [{"label": label, "number": number} for label, number in escalation.numbers],
        },
        "document": _document_label(encounter),
    }
    if step in STEPS:
        block = _block(encounter, step)
        live["script"] = {
            "situation": block.situation,
            "say": block.say,
            "do": list(block.do),
            "never": list(block.never),
        }
    return live


def _document_label(encounter: Encounter) -> dict[str, Any] | None:
    """What the desk reads about the document: the office's confirmation wins."""
    value = encounter.doc_confirmed_type or encounter.doc_first_impression
    if not value:
        return None
    kind = DocType(value)
    confirmed = encounter.doc_confirmed_type is not None
    prefix = "Confirmed by the district office: " if confirmed else "First impression: "
    return {"text": prefix + DOC_LABELS[kind], "meaning": DOC_MEANING[kind], "confirmed": confirmed}


@bp.get("/status.json")
def status() -> Any:
    encounter = _open_encounter()
    if encounter is None:
        return jsonify(open=False)
    return jsonify(open=True, **_live(encounter, request.args.get("step")))


@bp.route("/messages", methods=["GET", "POST"])
@with_encounter
def messages(encounter: Encounter) -> Any:
    """Messages from the district office, revealed on a tap (the agent may read the screen)."""
    form = forms.EmptyForm()
    db = webdb.session()
    if form.validate_on_submit():
        shown = office_ops.reveal_desk_messages(db, encounter, _actor(encounter), now_utc())
        db.commit()
        return _page("start", encounter, template="messages", desk_messages=shown, form=form)
    return redirect(url_for("desk.home"))


@bp.get("/cover")
def cover() -> str:
    """Privacy cover without JavaScript: a blank screen; a tap returns to the record."""
    return render_template("desk/cover.html")


@bp.post("/mistake")
@with_encounter
def mistake(encounter: Encounter) -> Any:
    form = forms.EmptyForm()
    if not form.validate_on_submit():
        return redirect(url_for("desk.home"))
    db = webdb.session()
    try:
        ops.stand_down(
            db,
            encounter,
            _actor(encounter),
            now_utc(),
            current_app.config["MISTAKE_WINDOW_SECONDS"],
            Links.from_settings(current_app.config),
        )
    except ops.OperationError as exc:
        flash(str(exc), "error")
        return redirect(url_for("desk.home"))
    db.commit()
    session.pop("desk_user", None)
    flash("Marked as started by mistake. The district office has been told.", "info")
    return redirect(url_for("desk.home"))


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
    db = webdb.session()
    user = db.scalar(select(User).where(User.public_id == session.get("pin_for", "")))
    if user is None:
        return redirect(url_for("desk.staff"))
    form = forms.PinForm()
    if form.validate_on_submit():
        result = check_pin(db, encounter, _actor(encounter), user, form.pin.data or "", now_utc())
        db.commit()
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
    return ops.AgentInput(
        **{name: form[name].data or None for name in ops.AgentInput.__dataclass_fields__}
    )


@bp.route("/agents", methods=["GET", "POST"])
@with_encounter
def agents(encounter: Encounter) -> Any:
    form = forms.AgentForm()
    if form.validate_on_submit():
        db = webdb.session()
        values = _agent_values(form)
        ops.save_agent(db, encounter, _actor(encounter), now_utc(), values)
        db.commit()
        _warn_status_words(values.name, values.title)
        if not values.is_empty():
            flash("Agent saved.", "info")
        if request.form.get("then") == "another":
            return redirect(url_for("desk.agents"))
        return _next("agents")
    status = INVALID if form.errors else 200
    return _page("agents", encounter, status, form=form, agents=encounter.agents, editing=None)


@bp.route("/agents/<int:position>", methods=["GET", "POST"])
def agent(position: int) -> Any:
    encounter = _open_encounter()
    if encounter is None:
        return redirect(url_for("desk.home"))
    db = webdb.session()
    row = db.scalar(
        select(Agent).where(Agent.encounter_id == encounter.id, Agent.position == position)
    )
    if row is None:
        return redirect(url_for("desk.agents"))
    form = forms.AgentForm(obj=row)
    if form.validate_on_submit():
        ops.save_agent(db, encounter, _actor(encounter), now_utc(), _agent_values(form), position)
        db.commit()
        flash("Agent saved.", "info")
        return redirect(url_for("desk.agents"))
    status = INVALID if form.errors else 200
    return _page("agents", encounter, status, form=form, agents=encounter.agents, editing=row)


@bp.route("/request", methods=["GET", "POST"])
@with_encounter
def request_step(encounter: Encounter) -> Any:
    form = _request_form(encounter)
    person_form = forms.PersonForm(formdata=None)
    if form.validate_on_submit():
        db = webdb.session()
        values = ops.RequestInput(
            place=form.place.data or None,
            agents_present=form.agents_present.data,
            request_kinds=tuple(k for k, _ in forms.REQUEST_KINDS if k in form.request_kinds.data),
            request_other=form.request_other.data,
            purpose=form.purpose.data,
            consent_claimed=form.consent_claimed.data or None,
            consent_claim=form.consent_claim.data,
        )
        ops.save_request(db, encounter, _actor(encounter), now_utc(), values)
        db.commit()
        _warn_status_words(values.purpose, values.consent_claim, values.request_other)
        return _next("request")
    status = INVALID if form.errors else 200
    return _request_page(encounter, form, person_form, status)


def _request_form(encounter: Encounter, **kwargs: Any) -> forms.RequestForm:
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
        },
        **kwargs,
    )


def _request_page(
    encounter: Encounter, form: forms.RequestForm, person_form: forms.PersonForm, status: int
) -> Any:
    people = [p for p in encounter.named_people if p.withdrawn_at is None]
    return _page(
        "request",
        encounter,
        status,
        form=form,
        person_form=person_form,
        people=people,
        relations=dict(forms.RELATIONS),
        remove_form=forms.EmptyForm(formdata=None),
    )


@bp.post("/request/people")
@with_encounter
def add_person(encounter: Encounter) -> Any:
    person_form = forms.PersonForm()
    if person_form.validate_on_submit() and person_form.person_name.data:
        db = webdb.session()
        ops.add_named_person(
            db,
            encounter,
            _actor(encounter),
            now_utc(),
            person_form.person_name.data,
            person_form.relation.data or "unknown",
            current_app.config["ENCRYPTION_KEY"],
        )
        db.commit()
        flash("Name added.", "info")
        return redirect(url_for("desk.request_step") + "#people")
    if not person_form.errors and not person_form.person_name.data:
        person_form.person_name.errors = ["Type the name to add, or leave this empty."]
    form = _request_form(encounter, formdata=None)
    return _request_page(encounter, form, person_form, INVALID)


@bp.post("/request/people/<int:position>/withdraw")
def withdraw_person(position: int) -> Any:
    encounter = _open_encounter()
    if encounter is None:
        return redirect(url_for("desk.home"))
    if forms.EmptyForm().validate_on_submit():
        db = webdb.session()
        ops.withdraw_named_person(db, encounter, _actor(encounter), now_utc(), position)
        db.commit()
        flash("Name removed from the list. The change is kept in the record.", "info")
    return redirect(url_for("desk.request_step") + "#people")


@bp.route("/document", methods=["GET", "POST"])
@with_encounter
def document(encounter: Encounter) -> Any:
    """Plain questions lead to a first impression; the script follows it at once."""
    db = webdb.session()
    current = ops.first_document(db, encounter)
    answers = TriageAnswers.from_mapping(_json(current.answers) if current else {})
    triage_form = forms.TriageForm(data=answers.to_dict())
    details_form = forms.DocumentDetailsForm(formdata=None, obj=current)
    if triage_form.validate_on_submit():
        values = TriageAnswers.from_mapping(
            {key: triage_form[key].data for key in answers.to_dict()}
        )
        ops.save_triage(
            db,
            encounter,
            _actor(encounter),
            now_utc(),
            values,
            Links.from_settings(current_app.config),
        )
        db.commit()
        return redirect(url_for("desk.document") + "#impression")
    status = INVALID if triage_form.errors else 200
    return _document_page(encounter, triage_form, details_form, status)


def _json(raw: str) -> dict[str, Any]:
    import json

    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _document_page(
    encounter: Encounter,
    triage_form: Any,
    details_form: forms.DocumentDetailsForm,
    status: int,
    photo_form: Any = None,
) -> Any:
    # kiosk.desk.photos imports this module for its routes, so its context is imported here.
    from kiosk.desk.photos import photo_context

    impression = encounter.doc_confirmed_type or encounter.doc_first_impression
    return _page(
        "document",
        encounter,
        status,
        triage_form=triage_form,
        details_form=details_form,
        impression=DocType(impression) if impression else None,
        **photo_context(encounter, photo_form),
    )


@bp.post("/document/details")
@with_encounter
def document_details(encounter: Encounter) -> Any:
    db = webdb.session()
    details_form = forms.DocumentDetailsForm()
    if details_form.validate_on_submit():
        values = ops.DocumentDetailsInput(
            issuer=details_form.issuer.data,
            case_number=details_form.case_number.data,
            dates=details_form.dates.data,
            names_addresses=details_form.names_addresses.data,
            matches_school=details_form.matches_school.data or None,
        )
        ops.save_document_details(db, encounter, _actor(encounter), now_utc(), values)
        db.commit()
        _warn_status_words(values.names_addresses)
        return _next("document")
    current = ops.first_document(db, encounter)
    answers = TriageAnswers.from_mapping(_json(current.answers) if current else {})
    triage_form = forms.TriageForm(formdata=None, data=answers.to_dict())
    return _document_page(encounter, triage_form, details_form, INVALID)


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
        db = webdb.session()
        values = ops.ExigencyInput(
            exigency={"yes": True, "no": False}.get(form.exigency.data or ""),
            exigency_reason=form.exigency_reason.data,
            exigency_directives=form.exigency_directives.data,
        )
        ops.save_exigency(
            db,
            encounter,
            _actor(encounter),
            now_utc(),
            values,
            Links.from_settings(current_app.config),
        )
        db.commit()
        _warn_status_words(values.exigency_reason, values.exigency_directives)
        return _next("exigency")
    status = INVALID if form.errors else 200
    return _page("exigency", encounter, status, form=form)


@bp.route("/outcome", methods=["GET", "POST"])
@with_encounter
def outcome(encounter: Encounter) -> Any:
    form = forms.OutcomeForm(obj=encounter)
    if form.validate_on_submit():
        db = webdb.session()
        values = ops.OutcomeInput(
            outcome=form.outcome.data or None,
            entry_areas=form.entry_areas.data,
            entry_started=form.entry_started.data,
            entry_ended=form.entry_ended.data,
            outcome_other=form.outcome_other.data,
            witnesses=form.witnesses.data,
        )
        ops.save_outcome(db, encounter, _actor(encounter), now_utc(), values)
        db.commit()
        _warn_status_words(values.entry_areas, values.outcome_other, values.witnesses)
        return _next("outcome")
    status = INVALID if form.errors else 200
    return _page("outcome", encounter, status, form=form)


@bp.route("/close", methods=["GET", "POST"])
@with_encounter
def close(encounter: Encounter) -> Any:
    """Close the desk's part; afterwards the kiosk shows nothing of this encounter."""
    form = forms.EmptyForm()
    if form.validate_on_submit():
        db = webdb.session()
        ops.close_desk(db, encounter, _actor(encounter), now_utc())
        db.commit()
        session.pop("desk_user", None)
        session.pop("pin_for", None)
        flash("The desk's part is closed. The district office keeps the record.", "info")
        return redirect(url_for("desk.home"))
    return _page(
        "close",
        encounter,
        form=form,
        people_count=len([p for p in encounter.named_people if p.withdrawn_at is None]),
        named_person_model=NamedPerson,
    )
