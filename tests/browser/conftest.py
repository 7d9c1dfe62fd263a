"""Browser fixtures: a real gunicorn on a free loopback port, prepared through the app's own
CLI on a fresh SQLite file, a real SMTP server on loopback, and headless Debian Chromium."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.harness import CHROMIUM, CHROMIUM_ARGS
from kiosk import audit
from kiosk.config import load_settings
from tests.conftest import (
    CHEAP_COST_ENV,
    REQUIRE_ALL,
    SmtpSink,
    free_port,
    running_smtp,
    stop_process,
)

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
SCHOOL = "Lincoln Elementary School"
LINK = re.compile(r"^\s+(?P<school>[^:]+): (?P<url>https?://\S+/enroll/\S+)$", re.MULTILINE)
HEALTH_WAIT_SECONDS = 20.0


@pytest.fixture(scope="session", autouse=True)
def _browser_prerequisites() -> None:
    """Browser tests run once, on SQLite, and only where Debian's Chromium is installed."""
    if os.environ.get("KIOSK_TEST_DATABASE_URL"):
        pytest.skip("browser tests run once, in the SQLite pass")
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if REQUIRE_ALL:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    """One real SMTP server on loopback for every browser test (aiosmtpd, threaded)."""
    with running_smtp() as sink:
        yield sink


@dataclass
class KioskServer:
    """A gunicorn subprocess serving the app, and the CLI to prepare it."""

    base_url: str
    env: dict[str, str]
    demo_links: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    used_links: set[str] = field(default_factory=set)

    def record_session_info(self) -> dict[str, Any]:
        """Session info that lets a test's own session write rows of the record as the
        server's sessions do: chained with the instance's audit key."""
        settings = load_settings(self.env, self.env["KIOSK_INSTANCE_PATH"])
        return {audit.KEY_INFO: settings["AUDIT_KEY"]}

    def flask(self, *args: str) -> str:
        """Run `flask --app app ...` as an operator would, and return what it printed."""
        return run([str(BIN / "flask"), "--app", "app", *args], self.env)

    def enrollment_link(self, school: str = SCHOOL) -> str:
        """A fresh one-time enrollment link (the demo's first, then `kiosks enroll`)."""
        link = self.demo_links.get(school)
        if link and link not in self.used_links:
            self.used_links.add(link)
            return link
        output = self.flask("kiosks", "enroll", "--school", school)
        match = re.search(r"https?://\S+/enroll/\S+", output)
        assert match, f"no enrollment link in: {output!r}"
        return match.group(0)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""


def run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def wait_healthy(server: KioskServer) -> None:
    deadline = time.monotonic() + HEALTH_WAIT_SECONDS
    last: object = None
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.process.returncode}:\n{server.log_text()}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/healthz", timeout=2) as response:  # noqa: S310 - a fixed loopback URL
                if response.status == 200:
                    return
                last = response.status
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.1)
    pytest.fail(f"gunicorn not healthy after {HEALTH_WAIT_SECONDS}s ({last}):\n{server.log_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    stop_process(process, grace=10.0)


def start_server(directory: Path, smtp: SmtpSink, **extra: str) -> KioskServer:
    """Prepare a fresh instance through the CLI, start gunicorn, wait for /healthz."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("KIOSK_") and key not in ("PORT", "FLASK_APP")
    }
    env.update(
        {
            "KIOSK_INSTANCE_PATH": str(directory / "instance"),
            "KIOSK_DATABASE_URL": f"sqlite:///{directory / 'kiosk.db'}",
            "KIOSK_DEMO": "1",
            "KIOSK_BASE_URL": base_url,
            "KIOSK_SMTP_HOST": smtp.host,
            "KIOSK_SMTP_PORT": str(smtp.port),
            "KIOSK_SMTP_STARTTLS": "0",
            "KIOSK_SMTP_TIMEOUT": "2",
            "KIOSK_MAIL_FROM": "alerts@district.test",
            **CHEAP_COST_ENV,
            "KIOSK_WORKERS": "1",
            "PORT": str(port),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    run([str(BIN / "python"), "-m", "kiosk.keys"], env)
    output = run([str(BIN / "flask"), "--app", "app", "demo"], env)
    links = {m["school"].strip(): m["url"] for m in LINK.finditer(output)}
    assert SCHOOL in links, f"no enrollment link for {SCHOOL} in:\n{output}"
    server = KioskServer(base_url, env, links, log=directory / "gunicorn.log")
    with server.log.open("wb") as log:
        server.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:app"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(server)
    except BaseException:
        stop(server.process)
        raise
    return server


STARTED: list[KioskServer] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed browser test shows the end of each server's log beside the traceback."""
    report = yield
    if report.failed and STARTED:
        for server in STARTED:
            tail = "\n".join(server.log_text().splitlines()[-80:])
            report.sections.append((f"gunicorn {server.base_url}", tail))
    return report


COVER_SECONDS = "3"


@pytest.fixture(scope="session")
def kiosk_servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, smtp_sink: SmtpSink
) -> Iterator[Callable[..., KioskServer]]:
    """Servers, one per distinct setting, shared by the tests that ask. Every server some
    selected test will need is prepared at once, side by side, the first time one is asked for."""
    servers: dict[tuple[tuple[str, str], ...], Future[KioskServer]] = {}
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kiosk-server")

    def begin(**extra: str) -> Future[KioskServer]:
        key = tuple(sorted(extra.items()))
        if key not in servers:
            directory = tmp_path_factory.mktemp("kiosk-server")
            servers[key] = pool.submit(start_server, directory, smtp_sink, **extra)
        return servers[key]

    def get(**extra: str) -> KioskServer:
        if any("cover_server" in item.fixturenames for item in request.session.items):
            begin(KIOSK_COVER_AFTER_SECONDS=COVER_SECONDS)
        if any("server" in item.fixturenames for item in request.session.items):
            begin()
        server = begin(**extra).result()
        if server not in STARTED:
            STARTED.append(server)
        return server

    yield get
    pool.shutdown(wait=True)
    for future in servers.values():
        if future.exception() is None:
            server = future.result()
            if server.process is not None:
                stop(server.process)
            if server in STARTED:
                STARTED.remove(server)


@pytest.fixture(scope="session")
def server(kiosk_servers: Callable[..., KioskServer]) -> KioskServer:
    """The default server (privacy cover after the default 60 seconds)."""
    return kiosk_servers()


@pytest.fixture(scope="session")
def cover_server(kiosk_servers: Callable[..., KioskServer]) -> KioskServer:
    """A server whose kiosks draw the privacy cover after a few quiet seconds."""
    return kiosk_servers(KIOSK_COVER_AFTER_SECONDS=COVER_SECONDS)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            # Keep the back/forward cache a real desk browser has: the back button after
            # "Finish" must not bring a page of the encounter back from memory.
            ignore_default_args=["--disable-back-forward-cache"],
        )
        yield browser
        browser.close()


@dataclass
class Console:
    """Console errors and failed requests a page reported (CSP violations are console errors)."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        page.on(
            "console",
            lambda message: (
                self.errors.append(f"{message.location.get('url')}: {message.text}")
                if message.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def new_context(browser: Any) -> Iterator[Callable[..., Any]]:
    """Browser contexts (each its own cookie jar), closed after the test."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("viewport", {"width": 1024, "height": 900})
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def enroll_kiosk(page: Any, link: str) -> None:
    """Open a one-time link and press "Set up this kiosk", as the person setting it up would."""
    from playwright.sync_api import expect

    page.goto(link)
    expect(page.get_by_role("heading", name="Set up this device as a kiosk")).to_be_visible()
    page.get_by_role("button", name="Set up this kiosk").click()
    expect(page.locator("#start-button")).to_be_visible()


@dataclass
class Authenticator:
    """What a person's authenticator app and their sheet of recovery codes hold."""

    secret: str
    recovery_codes: list[str]
    last_step: int = -1


# Per server and email: the second factors sign_in set up, as a phone would keep them.
AUTHENTICATORS: dict[tuple[str, str], Authenticator] = {}


def sign_in(page: Any, base_url: str, email: str, password: str) -> None:
    """Sign in through the sign-in page, as a person at the office would; when the page
    asks for the second factor, set it up from the key on the page, or enter a code."""
    page.goto(base_url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in", exact=True).click()
    if page.url.endswith("/login/setup-code"):
        AUTHENTICATORS[(base_url, email)] = enroll_second_factor(page)
        with page.expect_navigation():
            page.get_by_role("link", name="I have kept these codes: continue").click()
    elif page.url.endswith("/login/code"):
        authenticator = AUTHENTICATORS.get((base_url, email))
        assert authenticator, f"{email} has a second factor this helper did not set up"
        page.get_by_label("Code", exact=True).fill(next_code(authenticator))
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in", exact=True).click()


def enroll_second_factor(page: Any) -> Authenticator:
    """On the setup page: read the key as a person types it into their app, confirm with the
    app's code, and keep the recovery codes shown."""
    import pyotp

    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    step = totp.timecode(datetime.now(UTC))
    page.get_by_label("Code from your authenticator app").fill(totp.generate_otp(step))
    with page.expect_navigation():
        page.get_by_role("button", name="Confirm code").click()
    codes = [code.strip() for code in page.locator(".recovery-codes code").all_inner_texts()]
    assert len(codes) == 10, page.content()
    return Authenticator(secret, codes, step)


def next_code(authenticator: Authenticator) -> str:
    """The app's code now (or the next one, accepted for a clock a little off) unless the
    server already took it; then a recovery code, as a person in a hurry could use."""
    import pyotp

    totp = pyotp.TOTP(authenticator.secret)
    current = totp.timecode(datetime.now(UTC))
    for step in (current, current + 1):
        if step > authenticator.last_step:
            authenticator.last_step = step
            return totp.generate_otp(step)
    return authenticator.recovery_codes.pop()
