"""A district on several servers: two gunicorn servers on one PostgreSQL database, each with
its in-process deliverer, plus a `flask --app app outbox run` worker, and a real SMTP server on
loopback. 200 taps spread over both servers; acknowledgements go to either; escalations fall
due for all three deliverers at once. Every alert and escalation is delivered once (a repeat
would carry the same id), every escalation fires once, and each desk sees its
acknowledgement whichever server it polls."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from kiosk.auth.devices import enroll, issue_enrollment
from kiosk.auth.policy import DEVICE_COOKIE
from kiosk.clock import now_utc
from kiosk.db import unit_of_work
from kiosk.models import Encounter, EncounterEvent, OutboxMessage, School
from kiosk.webdb import database
from tests.conftest import (
    CHEAP_COST,
    CHEAP_COST_ENV,
    SmtpSink,
    free_port,
    key_environment,
    running_smtp,
    start_fields,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
TAPS = 200
ACK_LINE = "Acknowledge (opens a page where you confirm):"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
WAIT_SECONDS = 90.0


@pytest.fixture
def postgres_app(app: Flask) -> Flask:
    if not app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("several servers share one PostgreSQL database (the PostgreSQL pass)")
    return app


@dataclass
class Desk:
    school: str
    secret: str
    encounter: str = ""


def seed(app: Flask) -> list[Desk]:
    """The demo district, routing that waits long enough for nothing to escalate by itself,
    and one enrolled kiosk per tap, spread over both schools."""
    from kiosk.demo import seed as seed_demo
    from kiosk.protocol.scriptstore import current_script_version

    desks = []
    with unit_of_work(database(app).session_factory) as session:
        seed_demo(session, CHEAP_COST)
        current_script_version(session, now_utc())
        schools = session.scalars(select(School).order_by(School.id)).all()
        for school in schools:
            school.level2_after_minutes, school.level3_after_minutes = 120, 240
            # Always within hours: the level-1 contacts are the ones alerted, whenever it runs.
            school.hours_open, school.hours_close = "00:00", "23:59"
            school.school_days = "0,1,2,3,4,5,6"
        for index in range(TAPS):
            school = schools[index % len(schools)]
            kiosk, token = issue_enrollment(session, school, now_utc(), 1)
            result = enroll(session, token, now_utc())
            assert result is not None
            desks.append(Desk(school.name, result[1]))
    return desks


def environment(app: Flask, smtp: SmtpSink, base_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env.update(
        {
            "KIOSK_DATABASE_URL": app.config["DATABASE_URL"],
            **key_environment(app),
            "KIOSK_BASE_URL": base_url,
            "KIOSK_SMTP_HOST": smtp.host,
            "KIOSK_SMTP_PORT": str(smtp.port),
            "KIOSK_SMTP_STARTTLS": "0",
            "KIOSK_SMTP_TIMEOUT": "5",
            "KIOSK_MAIL_FROM": "alerts@district.test",
            **CHEAP_COST_ENV,
            "KIOSK_INSTANCE_PATH": str(Path(app.instance_path)),
            "KIOSK_WORKERS": "1",
            "KIOSK_THREADS": "4",
            "PORT": str(port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited:\n{log.read_text(errors='replace')}"
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310 - a fixed loopback URL
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} not healthy:\n{log.read_text(errors='replace')}")


@pytest.fixture
def servers(postgres_app: Flask, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Two servers and a worker on one database, with a real SMTP server."""
    app = postgres_app
    desks = seed(app)
    processes: list[subprocess.Popen[bytes]] = []
    with running_smtp() as smtp:
        try:
            urls = []
            for name in ("a", "b"):
                port = free_port()
                url = f"http://127.0.0.1:{port}"
                log = tmp_path / f"server-{name}.log"
                with log.open("wb") as out:
                    process = subprocess.Popen(
                        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:app"],
                        cwd=ROOT,
                        env=environment(app, smtp, url, port),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                processes.append(process)
                wait_healthy(url, process, log)
                urls.append(url)
            with (tmp_path / "worker.log").open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [str(BIN / "flask"), "--app", "app", "outbox", "run"],
                        cwd=ROOT,
                        env=environment(app, smtp, urls[0], 0),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            yield {"app": app, "desks": desks, "urls": urls, "smtp": smtp, "logs": tmp_path}
        finally:
            for process in processes:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)


def opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        _NoRedirect(),
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def call(
    browser: urllib.request.OpenerDirector,
    url: str,
    data: dict[str, str] | None = None,
    cookie: str | None = None,
) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body)  # noqa: S310 - loopback test servers
    if cookie:
        request.add_header("Cookie", f"{DEVICE_COOKIE}={cookie}")
    try:
        with browser.open(request, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def tap(desk: Desk, server: str) -> None:
    browser = opener()
    status, page = call(browser, f"{server}/desk/", cookie=desk.secret)
    assert status == 200, page[:300]
    status, _ = call(browser, f"{server}/desk/start", start_fields(page), cookie=desk.secret)
    assert status == 302


def text_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"{what} within {WAIT_SECONDS:.0f} s")


def messages(smtp: SmtpSink, subject: str) -> list[Message]:
    with smtp.lock:
        return [m for m in smtp.messages if str(m["Subject"]).startswith(subject)]


def test_a_district_on_two_servers_and_a_worker_delivers_and_escalates_once(
    servers: dict[str, Any],
) -> None:
    app, desks, (one, two), smtp = (
        servers["app"],
        servers["desks"],
        servers["urls"],
        servers["smtp"],
    )
    # 200 taps, spread over both servers, many at once.
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda i: tap(desks[i], (one, two)[i % 2]), range(TAPS)))
    with database(app).session_factory() as session:
        encounters = session.scalars(select(Encounter).order_by(Encounter.id)).all()
    assert len(encounters) == TAPS

    # Every alert once: one per encounter, each id seen once or, if repeated, the same id.
    wait_for(lambda: len(set(ids(messages(smtp, "Front-office alert")))) >= TAPS, "every alert")
    alerts = messages(smtp, "Front-office alert")
    assert len(set(ids(alerts))) == TAPS
    assert {i.split(".")[0].lstrip("<") for i in ids(alerts)} == {e.public_id for e in encounters}

    # Half are acknowledged, from the link in the alert, on either server; each desk sees it
    # on the other server.
    by_encounter = {reference(m): m for m in alerts}
    acked = encounters[::2]
    kiosk_of = kiosk_secrets(app, desks)

    def acknowledge(index: int) -> None:
        encounter = acked[index]
        link = ack_link(by_encounter[encounter.public_id])
        server = (one, two)[index % 2]
        link = link.replace(urllib.parse.urlsplit(link)._replace(path="").geturl(), server, 1)
        browser = opener()
        status, page = call(browser, link)
        assert status == 200, page[:300]
        token = CSRF.search(page)
        assert token
        status, page = call(browser, link, {"csrf_token": token.group(1)})
        assert status == 200 and "Acknowledged at" in page, page[:300]
        other = (two, one)[index % 2]
        secret = kiosk_of[encounter.kiosk_id]
        deadline = time.monotonic() + 10
        while True:
            status, body = call(opener(), f"{other}/desk/status.json", cookie=secret)
            if status == 200 and json.loads(body).get("ack"):
                return
            assert time.monotonic() < deadline, f"the desk never saw its acknowledgement: {body}"
            time.sleep(0.2)  # the desk's own pace; nothing is ordered by it

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(acknowledge, range(len(acked))))

    # The other half fall due for escalation at once, for all three deliverers together.
    waiting = [e for e in encounters if e not in acked]
    with unit_of_work(database(app).session_factory) as session:
        session.execute(
            update(Encounter)
            .where(Encounter.id.in_([e.id for e in waiting]))
            .values(next_escalation_at=now_utc())
        )
    wait_for(
        lambda: len(set(ids(messages(smtp, "Escalated (level 2)")))) >= len(waiting),
        "every escalation",
    )
    with database(app).session_factory() as session:
        escalated = Counter(
            session.scalars(
                select(EncounterEvent.encounter_id).where(EncounterEvent.kind == "escalated")
            )
        )
        rows = Counter(
            session.scalars(
                select(OutboxMessage.encounter_id).where(OutboxMessage.kind == "escalation")
            )
        )
        levels = dict(
            session.execute(
                select(Encounter.id, Encounter.escalation_level).where(
                    Encounter.id.in_([e.id for e in waiting])
                )
            ).all()
        )
    assert set(escalated) == {e.id for e in waiting}
    assert set(escalated.values()) == {1}, "an escalation fired twice"
    assert set(rows.values()) == {1}
    assert set(levels.values()) == {2}
    escalations = messages(smtp, "Escalated (level 2)")
    assert len(set(ids(escalations))) == len(waiting)
    # Nothing acknowledged escalated.
    assert not {e.id for e in acked} & set(escalated)


def ids(found: list[Message]) -> list[str]:
    return [str(m["Message-ID"]) for m in found]


def reference(message: Message) -> str:
    [line] = [x for x in text_of(message).splitlines() if x.startswith("Reference: ")]
    return line.removeprefix("Reference: ").strip()


def ack_link(message: Message) -> str:
    lines = [line.strip() for line in text_of(message).splitlines()]
    return lines[lines.index(ACK_LINE) + 1]


def kiosk_secrets(app: Flask, desks: list[Desk]) -> dict[int, str]:
    from kiosk.auth.devices import hash_token
    from kiosk.models import Kiosk

    by_hash = {hash_token(d.secret): d.secret for d in desks}
    with database(app).session_factory() as session:
        return {
            k.id: by_hash[k.device_hash]
            for k in session.scalars(select(Kiosk))
            if k.device_hash in by_hash
        }
