"""The guided capture: agents, the request and the people named, the document, the
emergency, the outcome and the desk's finish. Each step is one form, so no button on a page
drops what was typed on it."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, request, session, url_for
from sqlalchemy import select

from kiosk import webdb
from kiosk.clock import now_utc
from kiosk.desk import forms
from kiosk.desk.blueprint import bp
from kiosk.desk.common import (
    INVALID,
    after_save,
    desk_actor,
    links,
    page,
    top_situation,
    warn_status_words,
    with_encounter,
    writing,
)
from kiosk.localtime import local
from kiosk.models import Agent, Encounter, NamedPerson
from kiosk.protocol import capture, document_record
from kiosk.protocol import encounters as ops
from kiosk.protocol.documents import (
    TRIAGE_QUESTIONS,
    DocType,
)
from kiosk.protocol.picks import PICKS


def _agent_values(form: forms.AgentForm) -> capture.AgentInput:
    chosen = set(form.id_shown.data or [])
    return capture.AgentInput(
        **{
            name: form[name].data or None
            for name in capture.AgentInput.__dataclass_fields__
            if name not in ("id_shown", "card_kept")
        },
        id_shown=",".join(k for k in ops.ID_SHOWN if k in chosen) or None,
        card_kept=bool(form.card_kept.data),
    )


def _agent_form(row: Agent | None = None) -> forms.AgentForm:
    if row is None:
        return forms.AgentForm()
    data = {name: getattr(row, name) for name in capture.AgentInput.__dataclass_fields__}
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
        before = top_situation(encounter, "agents")
        values = _agent_values(form)
        actor = desk_actor(encounter)
        key = current_app.config["INDEX_KEY"]
        with writing(encounter) as (db, current):
            saved = capture.save_agent(
                db, current, actor, now_utc(), values, position, index_key=key
            )
            after = top_situation(current, "agents")
        warn_status_words(values.name, values.title)
        if saved is not None:
            flash(f"Agent {saved.position} saved.", "info")
        edit = request.form.get("edit", type=int)
        if edit is not None:
            return redirect(url_for("desk.agents", position=edit))
        if request.form.get("then") == "another" or position is not None:
            return redirect(url_for("desk.agents"))
        return after_save("agents", before, after)
    status = INVALID if form.errors else 200
    return page("agents", encounter, status, form=form, agents=encounter.agents, editing=row)


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
        actor = desk_actor(encounter)
        before = top_situation(encounter, "request")
        values = capture.RequestInput(
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
        key = current_app.config["INDEX_KEY"]
        with writing(encounter) as (db, current):
            now = now_utc()
            capture.save_request(db, current, actor, now, values, index_key=key)
            if name:
                relation = form.relation.data or "unknown"
                capture.add_named_person(db, current, actor, now, name, relation, key)
            if remove is not None:
                capture.withdraw_named_person(db, current, actor, now, remove)
            after = top_situation(current, "request")
        warn_status_words(values.purpose, values.consent_claim, values.request_other, name)
        if remove is not None:
            flash("Name removed from the list. The change is kept in the record.", "info")
        if name:
            flash("Name added.", "info")
        if action == "add_person" or remove is not None:
            return redirect(url_for("desk.request_step") + "#people")
        return after_save("request", before, after)
    status = INVALID if form.errors or request.method == "POST" else 200
    return _request_page(encounter, form, status)


def _request_page(encounter: Encounter, form: forms.RequestForm, status: int) -> Any:
    return page(
        "request",
        encounter,
        status,
        form=form,
        people=_people(encounter),
        relations=dict(forms.RELATIONS),
    )


def _document_form(encounter: Encounter) -> forms.DocumentForm:
    db = webdb.session()
    current = document_record.first_document(db, encounter)
    answers = document_record.stored_answers(current)
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
    actor = desk_actor(encounter)
    pick = document_record.pick_by_key(request.form.get("pick"))
    # The photo first: checked and re-encoded before the write lock is taken.
    prepared = prepare_photo(form)
    before = top_situation(encounter, "document")
    answers = document_record.answers_from(form.data)
    details = document_record.DocumentDetailsInput(
        issuer=form.issuer.data,
        case_number=form.case_number.data,
        dates=form.dates.data,
        names_addresses=form.names_addresses.data,
        matches_school=form.matches_school.data or None,
    )
    photo_added = None
    with writing(encounter) as (db, current):
        now = now_utc()
        document_record.save_triage(
            db,
            current,
            actor,
            now,
            answers,
            links(),
            names_person=form.names_person.data or None,
            pick=pick,
        )
        document_record.save_document_details(db, current, actor, now, details)
        if prepared is not None:
            photo_added = keep_photo(db, current, form, prepared, actor)
        after = top_situation(current, "document")
    warn_status_words(details.names_addresses)
    if form.photo.errors:
        # Everything else was saved; the photo's problem shows next to it.
        return _document_page(encounter, form, INVALID)
    if photo_added is not None:
        flash("Photo added.", "info")
    if pick is not None or request.form.get("action") == "answers":
        return redirect(url_for("desk.document"))
    if request.form.get("action") == "photo" or request.endpoint == "desk.add_photo":
        return redirect(url_for("desk.document") + "#photos")
    return after_save("document", before, after)


def _document_page(encounter: Encounter, form: forms.DocumentForm, status: int) -> Any:
    from kiosk.desk.photos import photo_list

    impression = encounter.doc_confirmed_type or encounter.doc_first_impression
    current = document_record.first_document(webdb.session(), encounter)
    return page(
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
        before = top_situation(encounter, "exigency")
        values = capture.ExigencyInput(
            exigency={"yes": True, "no": False}.get(form.exigency.data or ""),
            exigency_reason=form.exigency_reason.data,
            exigency_directives=form.exigency_directives.data,
        )
        actor = desk_actor(encounter)
        with writing(encounter) as (db, current):
            capture.save_exigency(db, current, actor, now_utc(), values, links())
            after = top_situation(current, "exigency")
        warn_status_words(values.exigency_reason, values.exigency_directives)
        if values.exigency:
            # The emergency lasts: the desk stays where its words and its notes are.
            flash("Saved.", "info")
            return redirect(url_for("desk.exigency"))
        return after_save("exigency", before, after)
    status = INVALID if form.errors else 200
    return page("exigency", encounter, status, form=form)


@bp.route("/outcome", methods=["GET", "POST"])
@with_encounter
def outcome(encounter: Encounter) -> Any:
    """What happened; "Now" buttons stamp a time and save everything typed with it."""
    form = forms.OutcomeForm(obj=encounter)
    if form.validate_on_submit():
        stamp = request.form.get("now")
        if stamp in ("entry_started", "entry_ended"):
            form[stamp].data = _now_hm(encounter)
        before = top_situation(encounter, "outcome")
        values = capture.OutcomeInput(
            outcome=form.outcome.data or None,
            entry_areas=form.entry_areas.data,
            entry_started=form.entry_started.data,
            entry_ended=form.entry_ended.data,
            outcome_other=form.outcome_other.data,
            witnesses=form.witnesses.data,
        )
        actor = desk_actor(encounter)
        with writing(encounter) as (db, current):
            capture.save_outcome(db, current, actor, now_utc(), values)
            after = top_situation(current, "outcome")
        warn_status_words(values.entry_areas, values.outcome_other, values.witnesses)
        if stamp:
            flash(f"Time recorded: {form[stamp].data}.", "info")
            return redirect(url_for("desk.outcome"))
        return after_save("outcome", before, after)
    status = INVALID if form.errors else 200
    return page("outcome", encounter, status, form=form)


@bp.route("/close", methods=["GET", "POST"])
@with_encounter
def close(encounter: Encounter) -> Any:
    """Close the desk's part; afterwards the kiosk shows nothing of this encounter."""
    form = forms.EmptyForm()
    if form.validate_on_submit():
        actor = desk_actor(encounter)
        with writing(encounter) as (db, current):
            ops.close_desk(db, current, actor, now_utc())
        session.pop("desk_user", None)
        session.pop("pin_for", None)
        flash("The desk's part is closed. The district office keeps the record.", "info")
        return redirect(url_for("desk.home"))
    return page(
        "close",
        encounter,
        form=form,
        people_count=len(_people(encounter)),
    )
