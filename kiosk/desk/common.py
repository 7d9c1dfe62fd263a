"""What every desk screen shares: the kiosk and its open encounter, the page with its "Now"
panel, and the one unit of work each write goes through."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from kiosk import reads, webdb
from kiosk.auth.policy import current_kiosk
from kiosk.clock import now_utc
from kiosk.db import locked
from kiosk.desk import forms
from kiosk.models import Encounter, Kiosk, User
from kiosk.notify.links import Links
from kiosk.protocol import encounters as ops
from kiosk.protocol.documents import DOC_LABELS, DOC_MEANING, DocType
from kiosk.protocol.events import Actor
from kiosk.protocol.privacy import STATUS_WORDS, WARNING, status_words
from kiosk.protocol.scripts import STEPS
from kiosk.protocol.staff import record_pin, verify_pin

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


def kiosk_here() -> Kiosk:
    """The kiosk of a view behind @kiosk_required; refused outright if there is none."""
    kiosk = current_kiosk()
    if kiosk is None:
        abort(403)
    return kiosk


def open_encounter() -> Encounter | None:
    return ops.current_encounter(webdb.session(), kiosk_here())


def desk_user(encounter: Encounter) -> User | None:
    """The staff member who identified for this encounter, if any."""
    mark = session.get("desk_user")
    if not mark or mark.get("encounter") != encounter.public_id:
        return None
    return webdb.session().scalar(select(User).where(User.public_id == mark.get("user")))


def desk_actor(encounter: Encounter, user: User | None = None) -> Actor:
    user = user or desk_user(encounter)
    return ops.kiosk_actor(
        kiosk_here(), user.id if user else None, user.display_name if user else ""
    )


def links() -> Links:
    return Links.from_settings(current_app.config)


def live_state(encounter: Encounter, step: str | None) -> dict[str, Any]:
    """Everything on a desk page that changes without the desk doing anything."""
    undelivered_after = current_app.config["UNDELIVERED_AFTER_SECONDS"]
    return reads.desk_live(webdb.session(), encounter, step, now_utc(), undelivered_after)


def desk_version(encounter: Encounter) -> str:
    undelivered_after = current_app.config["UNDELIVERED_AFTER_SECONDS"]
    return reads.desk_version(encounter, now_utc(), undelivered_after)


def top_situation(encounter: Encounter, step: str) -> str:
    return reads.panel_situation(webdb.session(), encounter, step)


STEP_ENDPOINTS = {step: f"desk.{step}" for step in STEPS} | {
    "start": "desk.home",
    "request": "desk.request_step",
}


def page(
    step: str, encounter: Encounter, status: int = 200, template: str | None = None, **context: Any
) -> Any:
    now = now_utc()
    # Remembered so that a form posted after the record ends is kept on it.
    session[REMEMBERED] = encounter.public_id
    live = live_state(encounter, step)
    window = current_app.config["MISTAKE_WINDOW_SECONDS"]
    body = render_template(
        f"desk/{template or step}.html",
        step=step,
        steps=[(s, STEP_LABELS[s], STEP_ENDPOINTS[s]) for s in STEPS],
        encounter=encounter,
        panel=live["panel"],
        live=live,
        alert=live["alert"],
        desk_user=desk_user(encounter),
        mistake_seconds=ops.stand_down_seconds_left(encounter, now, window),
        doc_labels=DOC_LABELS,
        doc_meaning=DOC_MEANING,
        doc_type=DocType,
        status_words=STATUS_WORDS,
        empty_form=forms.EmptyForm(formdata=None),
        **context,
    )
    return body, status


def warn_status_words(*values: str | None) -> None:
    found: list[str] = []
    for value in values:
        found += status_words(value)
    if found:
        flash(WARNING, "warning")


def after_save(step: str, before: str, after: str) -> Response:
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
def writing(encounter: Encounter) -> Iterator[tuple[Session, Encounter]]:
    """One unit of work on this encounter, loaded locked: operations decide on its state
    as it is now, not as it was when the page was read."""
    with webdb.unit_of_work() as db:
        yield db, ops.lock_encounter(db, encounter.id)


def check_pin(encounter: Encounter, user: User, pin: str) -> Any:
    """Hash the PIN first, with no lock held; then record the result on the locked user."""
    check = verify_pin(user, pin)
    actor = desk_actor(encounter, user)
    with writing(encounter) as (db, current):
        person = locked(db, User, user.id)
        assert person is not None
        return record_pin(db, current, actor, person, check, now_utc())


def with_encounter(view: Callable[..., Any]) -> Callable[..., Any]:
    """Give the view the kiosk's open encounter, or send the desk back to idle.

    A form posted after the desk's record ended is kept on that record (see _late_input).
    """

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        encounter = open_encounter()
        if encounter is None:
            ended = remembered_encounter() if request.method == "POST" else None
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


def remembered_encounter() -> Encounter | None:
    """The encounter this kiosk last showed, if it is this kiosk's."""
    public_id = session.get(REMEMBERED)
    if not public_id:
        return None
    return webdb.session().scalar(
        select(Encounter).where(
            Encounter.public_id == public_id, Encounter.kiosk_id == kiosk_here().id
        )
    )
