"""Races with one winner: real threads released together by a barrier, on SQLite and (in the
second CI pass) PostgreSQL. The loser gets a clear answer, nothing illegal is applied, and no
message goes out for a change that lost. Also: the desk's late input is kept, and the SQLite
writer lock times out and refuses re-entry instead of hanging."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kiosk.auth.policy import DEVICE_COOKIE
from kiosk.db import WriterLock, WriterLockError, unit_of_work
from kiosk.models import (
    Acknowledgement,
    Encounter,
    LateAddition,
    OutboxMessage,
    School,
)
from kiosk.webdb import database
from tests.conftest import (
    csrf_token,
    encounters,
    enroll_client,
    events,
    key_environment,
    start_fields,
    tap_start,
)
from tests.test_office import login

TRIALS = 6
LINCOLN = "Lincoln Elementary School"
DANA = "dana.reyes@demo-district.example"  # level 1 designee of Lincoln
MORGAN = "morgan.blake@demo-district.example"  # level 2 designee of Lincoln


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released at the same instant; return their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racing request hung"
    assert not errors, errors
    return results


def rows(app: Flask, encounter_id: int, kind: str) -> list[OutboxMessage]:
    with database(app).session_factory() as session:
        return list(
            session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.encounter_id == encounter_id, OutboxMessage.kind == kind
                )
            )
        )


def new_encounter(app: Flask, desk: FlaskClient) -> Encounter:
    """Close whatever the desk has open, tap again, and return the new encounter."""
    page = desk.get("/desk/").get_data(as_text=True)
    if "Notify district office" not in page:
        token = csrf_token(desk, "/desk/close")
        desk.post("/desk/close", data={"csrf_token": token})
    tap_start(desk)
    return encounters(app)[-1]


@pytest.fixture
def desk(app: Flask, district: Any) -> FlaskClient:
    client, _ = enroll_client(app, LINCOLN)
    return client


def office_post(client: FlaskClient, encounter: Encounter, action: str, **data: Any) -> Any:
    page = f"/office/encounters/{encounter.public_id}"
    token = csrf_token(client, page)
    return lambda: client.post(f"{page}/{action}", data={"csrf_token": token, **data})


def test_two_acknowledgements_at_once_have_exactly_one_first(app: Flask, desk: FlaskClient) -> None:
    dana, morgan = login(app, DANA), login(app, MORGAN)
    for _ in range(TRIALS):
        encounter = new_encounter(app, desk)
        answers = together(
            office_post(dana, encounter, "acknowledge"),
            office_post(morgan, encounter, "acknowledge"),
        )
        assert [a.status_code for a in answers] == [302, 302]
        firsts = [
            json.loads(e.data)["first"]
            for e in events(app, encounter.id)
            if e.kind == "acknowledged"
        ]
        assert sorted(firsts) == [False, True], firsts
        with database(app).session_factory() as session:
            acks = session.scalars(
                select(Acknowledgement).where(Acknowledgement.encounter_id == encounter.id)
            ).all()
            stored = session.get(Encounter, encounter.id)
        assert len(acks) == 2
        assert stored is not None and stored.first_acknowledged_at == min(a.at for a in acks)


def test_resolve_against_stand_down_has_one_winner_and_the_loser_sends_nothing(
    app: Flask, desk: FlaskClient
) -> None:
    dana = login(app, DANA)
    winners = set()
    for _ in range(TRIALS):
        encounter = new_encounter(app, desk)
        mistake_token = csrf_token(desk, "/desk/mistake")
        resolve = office_post(dana, encounter, "resolve", outcome="left")
        together(
            resolve, lambda t=mistake_token: desk.post("/desk/mistake", data={"csrf_token": t})
        )
        [final] = [e for e in encounters(app) if e.id == encounter.id]
        kinds = [e.kind for e in events(app, encounter.id)]
        assert final.status in ("resolved", "stood_down")
        winners.add(final.status)
        if final.status == "resolved":
            assert "stood_down" not in kinds
            assert rows(app, encounter.id, "standdown") == []
        else:
            assert "resolved" not in kinds
            assert len(rows(app, encounter.id, "standdown")) == 1
        assert kinds.count("resolved") + kinds.count("stood_down") == 1
    assert winners  # each trial had exactly one


def test_confirming_the_document_never_lands_after_the_resolution(
    app: Flask, desk: FlaskClient
) -> None:
    dana, morgan = login(app, DANA), login(app, MORGAN)
    for _ in range(TRIALS):
        encounter = new_encounter(app, desk)
        together(
            office_post(dana, encounter, "resolve", outcome="left"),
            office_post(morgan, encounter, "document", doc_type="administrative_warrant"),
        )
        kinds = [e.kind for e in events(app, encounter.id)]
        assert "resolved" in kinds
        if "document_confirmed" in kinds:
            assert kinds.index("document_confirmed") < kinds.index("resolved")


def test_resolve_against_a_late_desk_note_keeps_the_note(app: Flask, desk: FlaskClient) -> None:
    dana = login(app, DANA)
    for trial in range(TRIALS):
        encounter = new_encounter(app, desk)
        token = csrf_token(desk, "/desk/request")
        purpose = f"Asked for the school's records, trial {trial}."
        note = lambda t=token, p=purpose: desk.post(  # noqa: E731 - binds the loop variables now
            "/desk/request", data={"csrf_token": t, "purpose": p}
        )
        _, desk_answer = together(office_post(dana, encounter, "resolve", outcome="left"), note)
        assert desk_answer.status_code == 302
        [final] = [e for e in encounters(app) if e.id == encounter.id]
        assert final.status == "resolved"
        with database(app).session_factory() as session:
            late = session.scalars(
                select(LateAddition).where(LateAddition.encounter_id == encounter.id)
            ).all()
        # Either it was saved before the resolution, or it is kept as a late addition.
        if final.purpose == purpose:
            assert late == []
        else:
            assert [json.loads(row.content) for row in late] == [{"purpose": purpose}]
            kinds = [e.kind for e in events(app, encounter.id)]
            assert kinds.index("late_addition") > kinds.index("resolved")


def test_two_taps_at_one_kiosk_start_one_encounter(app: Flask, district: Any) -> None:
    for _ in range(TRIALS):
        before = len(encounters(app))
        # Two pages of one kiosk (say, two tabs): the same device, two idle screens.
        one, _ = enroll_client(app, LINCOLN)
        cookie = one.get_cookie(DEVICE_COOKIE, domain="localhost")
        assert cookie is not None
        two = app.test_client()
        two.set_cookie(DEVICE_COOKIE, cookie.value, domain="localhost")
        first = start_fields(one.get("/desk/").get_data(as_text=True))
        second = start_fields(two.get("/desk/").get_data(as_text=True))
        answers = together(
            lambda c=one, f=first: c.post("/desk/start", data=f),
            lambda c=two, f=second: c.post("/desk/start", data=f),
        )
        assert [a.status_code for a in answers] == [302, 302]
        assert len(encounters(app)) == before + 1
        encounter = encounters(app)[-1]
        assert len(rows(app, encounter.id, "alert")) == 1


# ---- the desk's input after the record ended


def test_a_form_posted_after_the_office_resolved_is_kept_and_the_desk_is_told(
    app: Flask, desk: FlaskClient
) -> None:
    encounter = new_encounter(app, desk)
    token = csrf_token(desk, "/desk/outcome")
    dana = login(app, DANA)
    office_post(dana, encounter, "resolve", outcome="left")()
    response = desk.post(
        "/desk/outcome",
        data={"csrf_token": token, "witnesses": "Ms. Park", "entry_areas": "Main hallway"},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/desk/"
    page = desk.get("/desk/").get_data(as_text=True)
    assert "The district office closed this record; your note was added to it." in page
    assert "Notify district office" in page
    with database(app).session_factory() as session:
        [late] = session.scalars(select(LateAddition)).all()
    assert late.encounter_id == encounter.id and late.step == "outcome"
    assert json.loads(late.content) == {"witnesses": "Ms. Park", "entry_areas": "Main hallway"}
    [event] = [e for e in events(app, encounter.id) if e.kind == "late_addition"]
    assert "Park" not in event.data and "hallway" not in event.data
    record = dana.get(f"/office/encounters/{encounter.public_id}").get_data(as_text=True)
    assert "Added by the desk after the record ended" in record
    assert "Ms. Park" in record


def test_a_pin_is_never_kept_as_a_late_addition(app: Flask, desk: FlaskClient) -> None:
    encounter = new_encounter(app, desk)
    token = csrf_token(desk, "/desk/mistake")
    office_post(login(app, DANA), encounter, "resolve", outcome="left")()
    desk.post("/desk/mistake", data={"csrf_token": token, "pin": "123456"})
    with database(app).session_factory() as session:
        assert session.scalars(select(LateAddition)).all() == []


# ---- the SQLite writer lock


def test_the_writer_lock_refuses_re_entry_at_once(tmp_path: Any) -> None:
    lock = WriterLock(str(tmp_path / "w.lock"), timeout=5)
    lock.acquire()
    try:
        with pytest.raises(WriterLockError, match="already holds"):
            lock.acquire()
    finally:
        lock.release()


def test_the_writer_lock_times_out_with_a_clear_error(tmp_path: Any) -> None:
    lock = WriterLock(str(tmp_path / "w.lock"), timeout=0.2)
    held = threading.Event()
    done = threading.Event()

    def holder() -> None:
        lock.acquire()
        held.set()
        done.wait(timeout=10)
        lock.release()

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(timeout=5)
    try:
        with pytest.raises(WriterLockError, match="waited 0.2 s"):
            lock.acquire()
    finally:
        done.set()
        thread.join(timeout=10)
    lock.acquire()  # free again once the holder is done
    lock.release()


def test_a_writer_waiting_on_another_process_gets_the_lock_when_it_lets_go(
    tmp_path: Any,
) -> None:
    """A wait on another process times out with a clear error; otherwise the wait is the
    kernel's and the lock passes on at once, and a wait that gave up earlier does not keep
    the lock from anyone."""
    import subprocess
    import sys

    path = tmp_path / "w.lock"
    script = (
        "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.readline(); "
        "fcntl.flock(fd, fcntl.LOCK_UN); print('free', flush=True); sys.stdin.read()"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", script, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert other.stdin is not None and other.stdout is not None
    try:
        assert other.stdout.readline().strip() == "held"
        gave_up = WriterLock(str(path), timeout=0.1)
        with pytest.raises(WriterLockError, match="another process"):
            gave_up.acquire()
        lock = WriterLock(str(path), timeout=30)
        got: list[float] = []
        waiting = threading.Thread(target=lambda: (lock.acquire(), got.append(1.0)))
        waiting.start()
        other.stdin.write("release\n")
        other.stdin.flush()
        assert other.stdout.readline().strip() == "free"
        waiting.join(timeout=20)
        assert got == [1.0]
        lock.release()
        gave_up.acquire()  # the abandoned wait let go of the lock once it had it
        gave_up.release()
    finally:
        other.stdin.close()
        other.wait(timeout=10)
        other.stdout.close()


def test_a_unit_of_work_inside_another_fails_instead_of_hanging(app: Flask) -> None:
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("only SQLite has a writer lock")
    factory = database(app).session_factory
    with unit_of_work(factory) as outer:
        outer.scalars(select(School)).all()
        with pytest.raises(WriterLockError), unit_of_work(factory) as inner:
            inner.scalars(select(School)).all()


def test_taps_write_beside_an_outbox_worker_in_another_process(
    make_app: Any, district: Any, tmp_path: Any
) -> None:
    """The SQLite writer lock between processes: a real `flask --app app outbox run` claims
    and marks rows while desks tap in this process; every tap answers, nothing is locked out,
    and every alert reaches the SMTP server once."""
    import os
    import signal
    import subprocess
    import time
    from pathlib import Path

    from tests.conftest import running_smtp, smtp_settings

    with running_smtp() as smtp:
        app = make_app(**smtp_settings(smtp))
        url = app.config["DATABASE_URL"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
        env.update(
            {
                "KIOSK_DATABASE_URL": url,
                **key_environment(app),
                "KIOSK_SMTP_HOST": smtp.host,
                "KIOSK_SMTP_PORT": str(smtp.port),
                "KIOSK_SMTP_STARTTLS": "0",
                "KIOSK_MAIL_FROM": "alerts@district.test",
                "KIOSK_INSTANCE_PATH": str(tmp_path / "worker-instance"),
            }
        )
        root = Path(__file__).resolve().parents[1]
        log = (tmp_path / "worker.log").open("wb")
        worker = subprocess.Popen(
            [str(root / ".venv" / "bin" / "flask"), "--app", "app", "outbox", "run"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            clients = [enroll_client(app, LINCOLN)[0] for _ in range(8)]
            pages = [c.get("/desk/").get_data(as_text=True) for c in clients]
            answers = together(
                *[
                    (lambda c=c, p=p: c.post("/desk/start", data=start_fields(p)))
                    for c, p in zip(clients, pages, strict=True)
                ]
            )
            assert [a.status_code for a in answers] == [302] * len(clients)
            deadline = time.monotonic() + 30
            while len(set(smtp.message_ids())) < len(clients):
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, "the worker did not deliver every alert"
                smtp.received.wait(0.2)
                smtp.received.clear()
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=15)
            log.close()
        assert len(smtp.message_ids()) == len(set(smtp.message_ids())) == len(clients)
        assert "database is locked" not in (tmp_path / "worker.log").read_text()
