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
import contextlib
import itertools
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

try:
    from bench.harness import (
        BIN,
        PROCESSES,
        BenchError,
        Flood,
        KioskClient,
        MailRecorder,
        app_settings,
        caller_environment,
        cpu_seconds,
        error_lines,
        free_port,
        gunicorn,
        logger,
        percentile,
        rate_of,
        run_bench,
        run_cli,
        start_smtp,
        summary_ms,
    )
except ModuleNotFoundError:  # run as `python bench/alert_latency.py`: bench/ is on sys.path
    from harness import (  # type: ignore[no-redef]
        BIN,
        PROCESSES,
        BenchError,
        Flood,
        KioskClient,
        MailRecorder,
        app_settings,
        caller_environment,
        cpu_seconds,
        error_lines,
        free_port,
        gunicorn,
        logger,
        percentile,
        rate_of,
        run_bench,
        run_cli,
        start_smtp,
        summary_ms,
    )

SCHOOLS = ("Lincoln Elementary School", "Riverside Middle School")
TARGETS = {"p95_ms": 250.0, "ratio_to_floor": 0.3, "signin_flood_ratio": 1.5}
# Wrong-password sign-ins posted without pause while the desks tap (the flood run).
FLOOD_THREADS = 8
FLOOD_EMAIL = "dana.reyes@demo-district.example"

DEFAULT_CONFIG = "gunicorn.conf.py"
FLOOR_CONFIG = "bench/floor_gunicorn.conf.py"
LINK_RE = re.compile(r"(https?://\S+/enroll/[A-Za-z0-9_\-]+)")

log = logger("alert_latency")


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
        # Passed on to gunicorn (same for app and floor): KIOSK_WORKERS, _THREADS, _LOG_LEVEL.
        self.base_env = caller_environment()
        self.workers = int(self.base_env.get("KIOSK_WORKERS", "2"))
        self.threads = int(self.base_env.get("KIOSK_THREADS", "4"))

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def error_budget(self, count: int) -> int:
        return max(3, count // 200)

    # setup -----------------------------------------------------------------------------

    def start_smtp(self) -> None:
        self.controller = start_smtp(self.recorder)
        self.smtp_port = self.controller.port
        log(f"SMTP server on 127.0.0.1:{self.smtp_port}")

    def app_env(self) -> dict[str, str]:
        return app_settings(self.base_env, self.tmp, self.app_port, self.smtp_port)

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
    def server(
        self, name: str, target: str, env: dict[str, str], config: str | None = None
    ) -> Iterator[int]:
        port = int(env["PORT"])
        log_path = self.tmp / f"{name}.log"
        try:
            with gunicorn(target, env, log_path, config or self.options.gunicorn_config):
                log(f"{name}: gunicorn {self.workers}x{self.threads} gthread on 127.0.0.1:{port}")
                yield port
        finally:
            errors = error_lines(log_path, 200_000)
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
        # The repo's settings, without the kiosk's settings check (unless another is given).
        config = FLOOR_CONFIG if options.gunicorn_config == DEFAULT_CONFIG else None
        with self.server("floor", "bench.floor_app:app", env, config) as port:
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
        """The same closed loop of taps while FLOOD_THREADS, in another process, post wrong
        passwords non-stop."""
        options = self.options
        if options.flood_n <= 0:
            return {"starts": [], "signins": 0, "refused": 0, "signin_errors": 0}
        log(f"app: {options.flood_n} starts while {FLOOD_THREADS} threads sign in wrongly")
        with Flood(port, FLOOD_THREADS, FLOOD_EMAIL, self.tmp / "flood.log") as flood:
            loop = Loop(
                options.flood_n, self.deadline, self.error_budget(options.flood_n), self.recorder
            )
            result = closed_loop(loop, clients, 0)
        counts = flood.counts
        log(f"app: {counts['signins']} wrong sign-ins checked, {counts['refused']} refused")
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
        default=DEFAULT_CONFIG,
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
    )


if __name__ == "__main__":
    sys.exit(main())
