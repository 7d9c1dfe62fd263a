"""Start-to-alert latency: from the tap on a kiosk to the SMTP server receiving the alert.

Everything runs on loopback, set up the way a user would:

* a real SMTP server (aiosmtpd) in this process records when each message arrives;
* a temp folder gets keys (`python -m kiosk.keys`), a demo district (`flask --app app demo`)
  and more kiosks (`flask --app app kiosks enroll`), alternating between the two schools;
* gunicorn serves the app with the repo's gunicorn.conf.py (gthread, KIOSK_WORKERS x
  KIOSK_THREADS, in-process delivery);
* one client thread per connection, each its own enrolled kiosk (cookie jar, keep-alive).

One start is one loop iteration of a kiosk: GET /desk/ (idle page: nonce, start_token),
POST /desk/start (302), GET /desk/close (CSRF token), POST /desk/close (302). Latency runs
from sending POST /desk/start to the SMTP server receiving that encounter's level-1 alert;
the close is in the loop but not in the latency, and the loop does not wait for the email
(a closed loop over HTTP: delivery has to keep up with what the desk can start). Messages are
matched by their Message-ID `<{encounter public id}.{contact}.email.alert.1.0@domain>`; the
public id is joined to the start request through the nonce the client sent (encounters.
start_nonce), read from the database once the server has stopped.

The floor is bench/floor_app.py (bare Flask, one SQLite insert per request) behind the same
gunicorn settings, driven by the same client and loop: floor_rps is floor iterations ("starts")
per second, so ratio_to_floor compares like with like (both have four requests per start).

The open loop issues 20 starts per second for 10 s on the enrolled kiosks whatever the
completions; latency is counted from the scheduled time (no coordinated omission).

Prints exactly one JSON line on stdout; progress goes to stderr. Bounded throughout: fixed
counts, socket timeouts, an overall deadline; servers run in their own process groups and are
killed on exit, error or timeout.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import http.client
import itertools
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv" / "bin").is_dir() else Path(sys.executable).parent
SCHOOLS = ("Lincoln Elementary School", "Riverside Middle School")
MAIL_FROM = "alerts@district.test"
TARGETS = {"p95_ms": 250.0, "ratio_to_floor": 0.3, "signin_flood_ratio": 1.5}
# Wrong-password sign-ins posted without pause while the desks tap (the flood run).
FLOOD_THREADS = 8
FLOOD_EMAIL = "dana.reyes@demo-district.example"
# Settings the bench passes on to gunicorn (same for app and floor); other KIOSK_* are dropped.
PASSED_SETTINGS = ("KIOSK_WORKERS", "KIOSK_THREADS", "KIOSK_LOG_LEVEL")

NONCE_RE = re.compile(r'id="nonce" name="nonce" type="hidden" value="([^"]*)"')
START_TOKEN_RE = re.compile(r'id="start_token" name="start_token" type="hidden" value="([^"]*)"')
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
LINK_RE = re.compile(r"(https?://\S+/enroll/[A-Za-z0-9_\-]+)")
MESSAGE_ID_RE = re.compile(
    rb"^Message-ID:\s*<([A-Za-z0-9_\-]+)\.(\d+)\.email\.(\w+)\.(\d+)\.(\d+)@[^>]*>",
    re.MULTILINE | re.IGNORECASE,
)
STALE_CONNECTION = (
    http.client.RemoteDisconnected,
    http.client.CannotSendRequest,
    http.client.ResponseNotReady,
    ConnectionResetError,
    BrokenPipeError,
)


def log(message: str) -> None:
    print(f"[alert_latency {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds() -> float:
    """CPU time of this process (client threads and the SMTP server share the 2 cores)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "p50": round(percentile(values, 50) * 1000, 1),
        "p95": round(percentile(values, 95) * 1000, 1),
        "p99": round(percentile(values, 99) * 1000, 1),
        "max": round(max(values) * 1000, 1),
    }


class BenchError(RuntimeError):
    """The benchmark could not be run as set up."""


# --------------------------------------------------------------------------- processes


class Processes:
    """Servers started by the bench, each in its own process group; all killed on exit."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []
        self.lock = threading.Lock()

    def start(self, command: list[str], env: dict[str, str], log_path: Path) -> Any:
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with self.lock:
            self.running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        """SIGTERM the server's group, wait, then SIGKILL whatever of the group is left.

        The leader is only reaped after the group is killed: until then its pid (the group
        id) cannot be reused, so the signals reach only processes this bench started.
        """
        try:
            if process.returncode is None:  # not reaped yet: the group id is still ours
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline and not _exited(process.pid):
                    time.sleep(0.05)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)  # workers that outlived the arbiter
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        finally:
            with self.lock:
                if process in self.running:
                    self.running.remove(process)

    def stop_all(self, grace: float = 5.0) -> None:
        with self.lock:
            processes = list(self.running)
        for process in processes:
            self.stop(process, grace)


PROCESSES = Processes()


def _exited(pid: int) -> bool:
    """True once the child has exited, without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    """Run a setup command to completion and return its stdout."""
    result = subprocess.run(
        args,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(
            f"{' '.join(args[:4])} failed ({result.returncode}): {result.stderr[-2000:]}"
        )
    return result.stdout


@contextlib.contextmanager
def app_environment(env: dict[str, str]) -> Iterator[None]:
    """The app reads its settings from os.environ: lend it these for in-process setup."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def wait_ready(port: int, process: Any, log_path: Path, timeout: float = 60) -> None:
    """Wait for GET /healthz to answer 200 (bounded), or fail with the server log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"server exited ({process.returncode}):\n{log_tail(log_path)}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            status = connection.getresponse().status
            connection.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise BenchError(f"server on port {port} not ready after {timeout}s:\n{log_tail(log_path)}")


# --------------------------------------------------------------------------- SMTP


class MailRecorder:
    """aiosmtpd handler: note when each alert arrives, keyed by the encounter's public id."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.alerts: dict[str, float] = {}
        self.alert_times: list[float] = []
        self.duplicates = 0
        self.other = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        at = time.perf_counter()
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "replace")
        match = MESSAGE_ID_RE.search(content)
        with self.condition:
            if match is None or match.group(3) != b"alert" or match.group(4) != b"1":
                self.other += 1
            else:
                public_id = match.group(1).decode()
                if public_id in self.alerts:
                    self.duplicates += 1
                else:
                    self.alerts[public_id] = at
                    self.alert_times.append(at)
            self.condition.notify_all()
        return "250 Message accepted for delivery"

    def count(self) -> int:
        with self.condition:
            return len(self.alerts)

    def wait_for(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.condition:
            while len(self.alerts) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.condition.wait(min(left, 0.5))
        return True


# --------------------------------------------------------------------------- HTTP client


class KioskClient:
    """One kiosk: its own keep-alive connection and cookie jar; no redirects followed."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.connection: http.client.HTTPConnection | None = None
        self.last_used = 0.0
        self.requests = 0
        self.reconnects = 0

    def close_connection(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _connection(self) -> http.client.HTTPConnection:
        # gunicorn closes idle keep-alive connections after 2 s; don't race it.
        if self.connection is not None and time.monotonic() - self.last_used > 1.5:
            self.close_connection()
        if self.connection is None:
            self.connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=self.timeout
            )
            self.reconnects += 1
        return self.connection

    def _store_cookies(self, headers: list[str]) -> None:
        for header in headers:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                expired = morsel["max-age"] == "0" or "1970" in morsel["expires"]
                if expired or morsel.value == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        """Send one request; return (status, Location, body). Retries once on a stale socket."""
        body = urlencode(form) if form is not None else None
        headers = {"Accept": "text/html"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in range(2):
            connection = self._connection()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except STALE_CONNECTION:
                self.close_connection()
                if attempt:
                    raise
                continue
            except BaseException:
                self.close_connection()
                raise
            self.last_used = time.monotonic()
            self.requests += 1
            self._store_cookies(response.headers.get_all("Set-Cookie") or [])
            if response.will_close:
                self.close_connection()
            location = response.getheader("Location") or ""
            return response.status, location, data.decode("utf-8", "replace")
        raise AssertionError("unreachable")

    def enroll(self, link: str) -> None:
        path = urlsplit(link).path
        status, _, page = self.request("GET", path)
        match = CSRF_RE.search(page)
        if status != 200 or match is None:
            raise BenchError(f"enrollment page {status} without a CSRF token")
        status, _, _ = self.request("POST", path, {"csrf_token": match.group(1)})
        if status != 302 or "kiosk_device" not in self.cookies:
            raise BenchError(f"enrollment answered {status} without a kiosk_device cookie")

    def idle_fields(self) -> dict[str, str]:
        """GET /desk/ and read the start control; close a leftover open encounter first."""
        for _ in range(3):
            status, _, page = self.request("GET", "/desk/")
            nonce, token = NONCE_RE.search(page), START_TOKEN_RE.search(page)
            if status == 200 and nonce and token:
                return {"nonce": nonce.group(1), "start_token": token.group(1)}
            if status == 200:
                self.close_desk()  # an encounter is still open at this desk
                continue
            raise BenchError(f"GET /desk/ answered {status}")
        raise BenchError("the desk never came back to the idle screen")

    def start(self, fields: dict[str, str]) -> None:
        status, location, _ = self.request(
            "POST", "/desk/start", {**fields, "channel": "in_person"}
        )
        if status != 302 or not location.endswith("/desk/"):
            raise BenchError(f"POST /desk/start answered {status} -> {location!r}")

    def close_desk(self) -> None:
        status, location, page = self.request("GET", "/desk/close")
        match = CSRF_RE.search(page)
        if status == 302 and location.endswith("/desk/"):
            return  # nothing open
        if status != 200 or match is None:
            raise BenchError(f"GET /desk/close answered {status} without a CSRF token")
        status, location, _ = self.request("POST", "/desk/close", {"csrf_token": match.group(1)})
        if status != 302:
            raise BenchError(f"POST /desk/close answered {status} -> {location!r}")


# --------------------------------------------------------------------------- loops


@dataclass
class Start:
    """One start: when it was meant to go out, sent, answered; and its whole iteration."""

    ticket: int
    nonce: str
    measured: bool
    scheduled: float
    sent: float
    answered: float
    iteration_start: float
    iteration_end: float = 0.0


@dataclass
class LoopResult:
    starts: list[Start] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    backlog_samples: list[int] = field(default_factory=list)

    def measured(self) -> list[Start]:
        return [s for s in self.starts if s.measured and s.iteration_end]


class Loop:
    """Shared ticketing, recording and error budget for the client threads of one loop."""

    def __init__(
        self, total: int, deadline: float, error_budget: int, recorder: MailRecorder | None = None
    ) -> None:
        self.total = total
        self.deadline = deadline
        self.error_budget = error_budget
        self.recorder = recorder
        self.tickets = itertools.count()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.result = LoopResult()

    def next_ticket(self) -> int | None:
        if self.stop.is_set() or time.monotonic() > self.deadline:
            return None
        with self.lock:
            ticket = next(self.tickets)
        return ticket if ticket < self.total else None

    def record(self, start: Start) -> None:
        with self.lock:
            self.result.starts.append(start)

    def fail(self, client: KioskClient, exc: BaseException) -> None:
        client.close_connection()
        with self.lock:
            self.result.errors.append(f"{type(exc).__name__}: {exc}")
            if len(self.result.errors) > self.error_budget:
                self.stop.set()

    def _sample_backlog(self, done: threading.Event) -> None:
        """Every 0.25 s: starts answered minus alerts received since the loop began."""
        assert self.recorder is not None
        base = self.recorder.count()
        while not done.wait(0.25):
            with self.lock:
                sent = len(self.result.starts)
            self.result.backlog_samples.append(sent - (self.recorder.count() - base))

    def run(self, clients: list[KioskClient], body: Callable[[KioskClient], None]) -> LoopResult:
        threads = [
            threading.Thread(target=body, args=(client,), name=f"kiosk-{i}", daemon=True)
            for i, client in enumerate(clients)
        ]
        done = threading.Event()
        if self.recorder is not None:
            threads.append(threading.Thread(target=self._sample_backlog, args=(done,), daemon=True))
        for thread in threads:
            thread.start()
        for thread in threads[: len(clients)]:
            thread.join(max(0.0, self.deadline - time.monotonic()) + 60)
        done.set()
        if any(thread.is_alive() for thread in threads[: len(clients)]):
            self.stop.set()
            raise BenchError("client threads did not stop in time")
        if len(self.result.errors) > self.error_budget:
            raise BenchError(f"too many errors: {self.result.errors[:5]}")
        return self.result


def closed_loop(loop: Loop, clients: list[KioskClient], warmup: int) -> LoopResult:
    """Each client runs start iterations back to back until the loop's tickets are used."""

    def body(client: KioskClient) -> None:
        while (ticket := loop.next_ticket()) is not None:
            began = time.perf_counter()
            try:
                fields = client.idle_fields()
                sent = time.perf_counter()
                client.start(fields)
                answered = time.perf_counter()
                start = Start(
                    ticket, fields["nonce"], ticket >= warmup, sent, sent, answered, began
                )
                loop.record(start)
                client.close_desk()
                start.iteration_end = time.perf_counter()
            except Exception as exc:
                loop.fail(client, exc)

    return loop.run(clients, body)


def open_loop(loop: Loop, clients: list[KioskClient], rate: float) -> LoopResult:
    """Issue start i at t0 + i/rate on whichever kiosk is free; latency counts from then."""
    origin = [0.0]

    def set_origin() -> None:
        origin[0] = time.perf_counter() + 0.05

    ready = threading.Barrier(len(clients), action=set_origin, timeout=120)

    def body(client: KioskClient) -> None:
        fields: dict[str, str] | None = None
        try:
            fields = client.idle_fields()  # every kiosk shows its start control
        except Exception as exc:
            loop.fail(client, exc)
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            loop.stop.set()
            return
        while (ticket := loop.next_ticket()) is not None:
            scheduled = origin[0] + ticket / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                if fields is None:
                    fields = client.idle_fields()
                sent = time.perf_counter()
                client.start(fields)
                answered = time.perf_counter()
                start = Start(ticket, fields["nonce"], True, scheduled, sent, answered, sent)
                fields = None
                loop.record(start)
                client.close_desk()
                start.iteration_end = time.perf_counter()
                fields = client.idle_fields()  # ready for the next scheduled start
            except Exception as exc:
                fields = None
                loop.fail(client, exc)

    return loop.run(clients, body)


def rate_of(starts: list[Start]) -> float:
    """Completed iterations per second over the window the measured ones span."""
    if not starts:
        return 0.0
    window = max(s.iteration_end for s in starts) - min(s.iteration_start for s in starts)
    return len(starts) / window if window > 0 else 0.0


# --------------------------------------------------------------------------- the run


@dataclass
class Options:
    n: int
    warmup: int
    connections: int
    open_rate: float
    open_seconds: float
    timeout: float
    drain_seconds: float
    keep: bool
    gunicorn_config: str
    flood_n: int


class Bench:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.started = time.monotonic()
        self.load_start = round(os.getloadavg()[0], 2)
        self.deadline = self.started + options.timeout - 30  # leave time to clean up
        self.tmp = Path(tempfile.mkdtemp(prefix="alert-latency-"))
        self.controller: Any = None
        self.recorder = MailRecorder()
        self.smtp_port = 0
        self.app_port = free_port()
        self.base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("KIOSK_") or k in PASSED_SETTINGS
        }
        self.base_env["PYTHONUNBUFFERED"] = "1"
        self.base_env.pop("FLASK_APP", None)
        self.workers = int(self.base_env.get("KIOSK_WORKERS", "2"))
        self.threads = int(self.base_env.get("KIOSK_THREADS", "4"))

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def error_budget(self, count: int) -> int:
        return max(3, count // 200)

    # setup -----------------------------------------------------------------------------

    def start_smtp(self) -> None:
        from aiosmtpd.controller import Controller

        self.smtp_port = free_port()
        self.controller = Controller(
            self.recorder, hostname="127.0.0.1", port=self.smtp_port, ready_timeout=10
        )
        self.controller.start()
        log(f"SMTP server on 127.0.0.1:{self.smtp_port}")

    def app_env(self) -> dict[str, str]:
        instance = self.tmp / "instance"
        return {
            **self.base_env,
            "KIOSK_INSTANCE_PATH": str(instance),
            "KIOSK_DATABASE_URL": f"sqlite:///{self.tmp / 'kiosk.db'}",
            "KIOSK_DEMO": "1",
            "KIOSK_BASE_URL": f"http://127.0.0.1:{self.app_port}",
            "KIOSK_SMTP_HOST": "127.0.0.1",
            "KIOSK_SMTP_PORT": str(self.smtp_port),
            "KIOSK_SMTP_STARTTLS": "0",
            "KIOSK_MAIL_FROM": MAIL_FROM,
            "PORT": str(self.app_port),
        }

    def set_up_district(self) -> list[str]:
        """Keys, demo district and enough kiosks through the CLI; return enrollment links."""
        env = self.app_env()
        run_cli([str(BIN / "python"), "-m", "kiosk.keys"], env)
        output = run_cli([str(BIN / "flask"), "--app", "app", "demo"], env)
        links = LINK_RE.findall(output)
        if len(links) != len(SCHOOLS):
            raise BenchError(f"expected {len(SCHOOLS)} demo enrollment links:\n{output}")
        extra = max(0, self.options.connections - len(links))

        def enroll_one(index: int) -> str:
            school = SCHOOLS[index % len(SCHOOLS)]
            command = [str(BIN / "flask"), "--app", "app", "kiosks", "enroll", "--school", school]
            found = LINK_RE.findall(run_cli(command, env))
            if len(found) != 1:
                raise BenchError(f"`kiosks enroll` printed {len(found)} links")
            return found[0]

        with ThreadPoolExecutor(max_workers=2) as pool:
            links += list(pool.map(enroll_one, range(extra)))
        log(f"district ready: {len(links)} enrollment links")
        return links[: self.options.connections]

    @contextlib.contextmanager
    def server(self, name: str, target: str, env: dict[str, str]) -> Iterator[int]:
        port = int(env["PORT"])
        log_path = self.tmp / f"{name}.log"
        # The control socket would default to ~/.gunicorn, shared with any other gunicorn.
        config = self.options.gunicorn_config
        command = [str(BIN / "gunicorn"), "-c", config, "--no-control-socket", target]
        process = PROCESSES.start(command, env, log_path)
        try:
            wait_ready(port, process, log_path)
            log(f"{name}: gunicorn {self.workers}x{self.threads} gthread on 127.0.0.1:{port}")
            yield port
        finally:
            PROCESSES.stop(process)
            errors = [
                line
                for line in log_tail(log_path, 200_000).splitlines()
                if "Traceback" in line or "ERROR" in line or "WORKER TIMEOUT" in line
            ]
            if errors:
                log(f"{name}: {len(errors)} error lines in {log_path}, e.g. {errors[0]!r}")

    # phases ----------------------------------------------------------------------------

    def run_floor(self) -> dict[str, Any]:
        env = {
            **self.base_env,
            "PORT": str(free_port()),
            "FLOOR_DATABASE": str(self.tmp / "floor.db"),
        }
        options = self.options
        with self.server("floor", "bench.floor_app:app", env) as port:
            clients = [KioskClient(port) for _ in range(options.connections)]
            log(f"floor: {options.warmup} warm-up + {options.n} starts, {len(clients)} connections")
            total = options.warmup + options.n
            loop = Loop(total, self.deadline, self.error_budget(total))
            cpu = cpu_seconds()
            result = closed_loop(loop, clients, options.warmup)
            cpu = cpu_seconds() - cpu
            for client in clients:
                client.close_connection()
        measured = result.measured()
        rps = rate_of(measured)
        log(f"floor: {rps:.1f} starts/s ({4 * rps:.1f} requests/s), {len(result.errors)} errors")
        return {
            "floor_rps": rps,
            "floor_http_rps": 4 * rps,
            "floor_errors": len(result.errors),
            "floor_start_post": summary_ms([s.answered - s.sent for s in measured]),
            "floor_client_cpu_ms_per_start": round(1000 * cpu / max(1, len(result.starts)), 2),
        }

    def run_app(self, links: list[str]) -> dict[str, Any]:
        options = self.options
        env = self.app_env()
        with self.server("app", "app:app", env) as port:
            clients = [KioskClient(port) for _ in links]
            for client, link in zip(clients, links, strict=True):
                client.enroll(link)
            log(f"app: {len(clients)} kiosks enrolled")

            log(f"app: {options.warmup} warm-up + {options.n} starts, {len(clients)} connections")
            total = options.warmup + options.n
            loop = Loop(total, self.deadline, self.error_budget(total), self.recorder)
            cpu = cpu_seconds()
            closed_result = closed_loop(loop, clients, options.warmup)
            cpu = cpu_seconds() - cpu
            backlog_at_end = len(closed_result.starts) - self.recorder.count()
            drained = self.drain(len(closed_result.starts))

            open_result = LoopResult()
            if options.open_seconds > 0 and options.open_rate > 0:
                count = int(round(options.open_rate * options.open_seconds))
                log(f"app: open loop, {options.open_rate:g} starts/s for {options.open_seconds:g}s")
                loop = Loop(count, self.deadline, self.error_budget(count), self.recorder)
                open_result = open_loop(loop, clients, options.open_rate)
                self.drain(len(closed_result.starts) + len(open_result.starts))
            flood = self.signin_flood(port, clients)
            for client in clients:
                client.close_connection()
        return {
            "closed": closed_result,
            "open": open_result,
            "flood": flood,
            "backlog_at_end": backlog_at_end,
            "drained": drained,
            "client_cpu_ms_per_start": round(1000 * cpu / max(1, len(closed_result.starts)), 2),
        }

    def signin_flood(self, port: int, clients: list[KioskClient]) -> dict[str, Any]:
        """The same closed loop of taps while FLOOD_THREADS post wrong passwords non-stop."""
        options = self.options
        if options.flood_n <= 0:
            return {"starts": [], "signins": 0, "refused": 0, "signin_errors": 0}
        stop = threading.Event()
        counts = {"signins": 0, "refused": 0, "errors": 0}
        lock = threading.Lock()

        def flood() -> None:
            client = KioskClient(port)
            status, _, page = client.request("GET", "/login")
            match = CSRF_RE.search(page)
            if status != 200 or match is None:
                with lock:
                    counts["errors"] += 1
                return
            form = {"csrf_token": match.group(1), "email": FLOOD_EMAIL, "password": "wrong"}
            while not stop.is_set():
                try:
                    status, _, _ = client.request("POST", "/login", form)
                except Exception:
                    status = 0
                outcome = {200: "signins", 429: "refused"}.get(status, "errors")
                with lock:
                    counts[outcome] += 1
            client.close_connection()

        threads = [
            threading.Thread(target=flood, name=f"signin-flood-{i}", daemon=True)
            for i in range(FLOOD_THREADS)
        ]
        for thread in threads:
            thread.start()
        log(f"app: {options.flood_n} starts while {FLOOD_THREADS} threads sign in wrongly")
        try:
            loop = Loop(
                options.flood_n, self.deadline, self.error_budget(options.flood_n), self.recorder
            )
            result = closed_loop(loop, clients, 0)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        log(f"app: {counts['signins']} wrong sign-ins answered during the flood")
        return {
            "starts": result.starts,
            "signins": counts["signins"],
            "refused": counts["refused"],
            "signin_errors": counts["errors"],
        }

    def drain(self, expected: int) -> bool:
        """Wait (bounded) until every start's alert has reached the SMTP server."""
        began = time.monotonic()
        wait = max(0.0, min(self.options.drain_seconds, self.left()))
        done = self.recorder.wait_for(expected, wait)
        got = self.recorder.count()
        log(f"delivered {got}/{expected} alerts ({time.monotonic() - began:.1f}s after the loop)")
        return done

    # analysis --------------------------------------------------------------------------

    def read_database(self) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """Map start nonces to encounter public ids; read the alert rows' server-side times."""
        connection = sqlite3.connect(str(self.tmp / "kiosk.db"), timeout=30)
        try:
            nonces = dict(
                connection.execute(
                    "SELECT start_nonce, public_id FROM encounters WHERE start_nonce IS NOT NULL"
                ).fetchall()
            )
            try:  # server-side times are a breakdown only; the schema may move on
                rows = connection.execute(
                    "SELECT e.public_id, o.status, o.attempts, o.created_at, o.sent_at "
                    "FROM outbox_messages o JOIN encounters e ON e.id = o.encounter_id "
                    "WHERE o.kind = 'alert' AND o.level = 1"
                ).fetchall()
            except sqlite3.Error as exc:
                log(f"no server-side breakdown: {exc}")
                rows = []
        finally:
            connection.close()
        alerts = [
            {
                "public_id": public_id,
                "status": status,
                "attempts": attempts,
                "created_at": _parse_time(created),
                "sent_at": _parse_time(sent),
            }
            for public_id, status, attempts, created, sent in rows
        ]
        return nonces, alerts

    def latencies(
        self, starts: list[Start], nonces: dict[str, str], from_scheduled: bool
    ) -> tuple[list[float], list[float], int]:
        """Return start-to-SMTP latencies, answer-to-SMTP times, and how many never arrived."""
        latencies, after_answer, missing = [], [], 0
        for start in starts:
            public_id = nonces.get(start.nonce)
            received = self.recorder.alerts.get(public_id or "")
            if received is None:
                missing += 1
                continue
            latencies.append(received - (start.scheduled if from_scheduled else start.sent))
            after_answer.append(received - start.answered)
        return latencies, after_answer, missing

    def run(self) -> dict[str, Any]:
        options = self.options
        self.start_smtp()
        links = self.set_up_district()
        floor = self.run_floor()
        app = self.run_app(links)
        nonces, rows = self.read_database()

        closed: LoopResult = app["closed"]
        measured = closed.measured()
        if not measured:
            raise BenchError("no measured start ran before the deadline: raise --timeout")
        latencies, after_answer, missing = self.latencies(measured, nonces, False)
        if not latencies:
            raise BenchError("no measured start was matched to an alert")
        open_starts = [s for s in app["open"].starts]
        open_lat, _, open_missing = self.latencies(open_starts, nonces, True)

        start_rps = rate_of(measured)
        floor_rps = floor["floor_rps"]
        ratio = start_rps / floor_rps if floor_rps else 0.0
        measured_ids = {nonces.get(s.nonce) for s in measured}
        measured_rows = [r for r in rows if r["public_id"] in measured_ids]
        server_side = [
            (r["sent_at"] - r["created_at"]).total_seconds()
            for r in measured_rows
            if r["sent_at"] and r["created_at"]
        ]
        arrivals = sorted(
            self.recorder.alerts[p] for p in measured_ids if p in self.recorder.alerts
        )
        delivery_rate = (
            (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
        )
        p95 = percentile(latencies, 95) * 1000
        open_p99 = percentile(open_lat, 99) * 1000 if open_lat else None
        lateness = [s.sent - s.scheduled for s in open_starts]
        # The tap's own answer time, quiet and during the sign-in flood.
        quiet_tap_p95 = percentile([s.answered - s.sent for s in measured], 95) * 1000
        flood_starts = app["flood"]["starts"]
        flood_tap_p95 = (
            percentile([s.answered - s.sent for s in flood_starts], 95) * 1000
            if flood_starts
            else None
        )
        flood_ratio = flood_tap_p95 / quiet_tap_p95 if flood_tap_p95 and quiet_tap_p95 else None
        if len(measured) < options.n:
            log(f"only {len(measured)} of {options.n} measured starts ran before the deadline")
        meets = (
            len(measured) == options.n
            and p95 < TARGETS["p95_ms"]
            and ratio >= TARGETS["ratio_to_floor"]
            and missing == 0
            and open_missing == 0
            and (flood_ratio is None or flood_ratio <= TARGETS["signin_flood_ratio"])
        )
        return {
            "bench": "alert_latency",
            "n": len(latencies),
            "p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "p95_ms": round(p95, 1),
            "p99_ms": round(percentile(latencies, 99) * 1000, 1),
            "start_rps": round(start_rps, 2),
            "floor_rps": round(floor_rps, 2),
            "ratio_to_floor": round(ratio, 3),
            "open_loop_20rps_p99_ms": round(open_p99, 1) if open_p99 is not None else None,
            "tap_p95_ms": round(quiet_tap_p95, 1),
            "tap_p95_ms_signin_flood": round(flood_tap_p95, 1) if flood_tap_p95 else None,
            "signin_flood_ratio": round(flood_ratio, 2) if flood_ratio else None,
            "targets": {
                "p95_ms_below": TARGETS["p95_ms"],
                "ratio_to_floor_at_least": TARGETS["ratio_to_floor"],
                "signin_flood_ratio_at_most": TARGETS["signin_flood_ratio"],
            },
            "meets_targets": meets,
            "details": {
                "connections": options.connections,
                "warmup": options.warmup,
                "requested_n": options.n,
                "complete": len(measured) == options.n and not missing,
                "gunicorn": f"gthread {self.workers}x{self.threads}",
                "undelivered": missing,
                "errors": len(closed.errors),
                "start_post_ms": summary_ms([s.answered - s.sent for s in measured]),
                "iteration_ms": summary_ms([s.iteration_end - s.iteration_start for s in measured]),
                "answer_to_smtp_ms": summary_ms(after_answer),
                "created_to_sent_ms": summary_ms(server_side),
                "delivery_rate_per_s": round(delivery_rate, 2),
                "backlog_max": max(closed.backlog_samples, default=0),
                "backlog_at_loop_end": app["backlog_at_end"],
                "drained": app["drained"],
                "retried_alerts": sum(1 for r in measured_rows if r["attempts"] > 1),
                "alert_rows_not_sent": sum(1 for r in rows if r["status"] != "sent"),
                "duplicate_alerts": self.recorder.duplicates,
                "client_and_smtp_cpu_ms_per_start": app["client_cpu_ms_per_start"],
                "floor_http_rps": round(floor["floor_http_rps"], 1),
                "floor_client_cpu_ms_per_start": floor["floor_client_cpu_ms_per_start"],
                "floor_start_post_ms": floor["floor_start_post"],
                "open_loop": {
                    "rate": options.open_rate,
                    "seconds": options.open_seconds,
                    "starts": len(open_starts),
                    "undelivered": open_missing,
                    "errors": len(app["open"].errors),
                    "latency_ms": summary_ms(open_lat),
                    "late_sends_over_10ms": sum(1 for x in lateness if x > 0.010),
                    "max_send_lateness_ms": round(max(lateness, default=0.0) * 1000, 1),
                    "backlog_max": max(app["open"].backlog_samples, default=0),
                },
                "signin_flood": {
                    "threads": FLOOD_THREADS,
                    "starts": len(flood_starts),
                    "wrong_signins_checked": app["flood"]["signins"],
                    "wrong_signins_refused_unchecked": app["flood"]["refused"],
                    "signin_errors": app["flood"]["signin_errors"],
                    "start_post_ms": summary_ms([s.answered - s.sent for s in flood_starts]),
                },
                "seconds": round(time.monotonic() - self.started, 1),
                # Other work on the machine skews both the app and the floor.
                "loadavg_1m_start_end": [self.load_start, round(os.getloadavg()[0], 2)],
            },
        }

    def cleanup(self) -> None:
        PROCESSES.stop_all()
        if self.controller is not None:
            with contextlib.suppress(Exception):
                self.controller.stop()
            self.controller = None
        if self.options.keep:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: small counts")
    parser.add_argument("--n", type=int, default=None, help="measured starts (2000)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up starts (200)")
    parser.add_argument("--connections", type=int, default=None, help="client threads (16)")
    parser.add_argument("--open-rate", type=float, default=20.0, help="open-loop starts/s")
    parser.add_argument("--open-seconds", type=float, default=None, help="open loop (10 s)")
    parser.add_argument("--timeout", type=float, default=600.0, help="overall limit (600 s)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder and logs")
    parser.add_argument(
        "--flood-n", type=int, default=None, help="starts during the sign-in flood (500)"
    )
    parser.add_argument(
        "--gunicorn-config",
        default="gunicorn.conf.py",
        help="gunicorn config for app and floor (e.g. a profiling wrapper); default the repo's",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    options = Options(
        n=args.n if args.n is not None else (100 if quick else 2000),
        warmup=args.warmup if args.warmup is not None else (20 if quick else 200),
        connections=args.connections or (4 if quick else 16),
        open_rate=args.open_rate,
        open_seconds=args.open_seconds if args.open_seconds is not None else (3 if quick else 10),
        timeout=args.timeout,
        drain_seconds=30 if quick else 60,
        keep=args.keep,
        gunicorn_config=args.gunicorn_config,
        flood_n=args.flood_n if args.flood_n is not None else (40 if quick else 500),
    )
    if options.n < 1 or options.warmup < 0 or options.connections < 1 or options.timeout < 60:
        parser.error("need --n >= 1, --warmup >= 0, --connections >= 1, --timeout >= 60")
    return options


def run_bench(
    name: str,
    bench: Any,
    timeout: float,
    report: Callable[[dict[str, Any]], str],
    say: Callable[[str], None],
) -> int:
    """Run a benchmark under a watchdog; print one JSON line (the result or the error)."""
    printed = threading.Lock()

    def emit(payload: dict[str, Any]) -> None:
        with printed:
            print(json.dumps(payload), flush=True)

    def on_timeout() -> None:
        say(f"overall timeout ({timeout:g}s): stopping")
        PROCESSES.stop_all(grace=2)
        emit({"bench": name, "error": f"timed out after {timeout:g}s"})
        os._exit(2)

    interrupted = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if interrupted.is_set():  # already stopping: let the cleanup finish
            return
        interrupted.set()
        raise KeyboardInterrupt(f"signal {signum}")

    watchdog = threading.Timer(timeout, on_timeout)
    watchdog.daemon = True
    watchdog.start()
    atexit.register(PROCESSES.stop_all)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        result = bench.run()
    except (Exception, KeyboardInterrupt) as exc:
        traceback.print_exc(file=sys.stderr)
        bench.cleanup()
        watchdog.cancel()
        emit({"bench": name, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    bench.cleanup()
    watchdog.cancel()
    emit(result)
    say(report(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    return run_bench(
        "alert_latency",
        Bench(options),
        options.timeout,
        lambda result: (
            f"p95 {result['p95_ms']} ms (target < {TARGETS['p95_ms']:g}), "
            f"ratio {result['ratio_to_floor']} (target >= {TARGETS['ratio_to_floor']:g}): "
            + ("meets targets" if result["meets_targets"] else "MISSES targets")
        ),
        log,
    )


if __name__ == "__main__":
    sys.exit(main())
