"""SMTP on loopback: servers in this process that record what the app sends, and a black hole.

* MailRecorder: lean, for thousands of alerts; the first level-1 email alert of each encounter
  with its receive time, duplicates and other mail counted.
* Mailbox: every message with its receive time, Message-ID, To and body; alerts can be handed
  on as they arrive (to acknowledge them).
* BlackHole: accepts connections and never answers; SmtpSwitch serves one port with either.

Messages are told apart by their Message-ID,
`<{encounter public id}.{contact}.{channel}.{kind}.{level}.{sequence}@domain>`.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .base import BenchError, free_port

MESSAGE_ID_RE = re.compile(
    rb"^Message-ID:\s*<([A-Za-z0-9_\-]+)\.(\d+)\.(\w+)\.(\w+)\.(\d+)\.(\d+)@[^>]*>",
    re.MULTILINE | re.IGNORECASE,
)
TO_RE = re.compile(rb"^To:\s*(.+?)\r?$", re.MULTILINE | re.IGNORECASE)
# The alert's body: the acknowledgement link is on the line after this one.
ACK_LINE = "Acknowledge (opens a page where you confirm):"


def start_smtp(handler: Any) -> Any:
    """A started aiosmtpd server (a thread of this process) for `handler` on a free loopback
    port (`.port`); `.stop()` it when done."""
    from aiosmtpd.controller import Controller

    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    controller.start()
    return controller


class MailRecorder:
    """aiosmtpd handler: note when each alert arrives, keyed by the encounter's public id."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.alerts: dict[str, float] = {}
        self.alert_times: list[float] = []
        self.duplicates = 0
        self.other = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - the name the server library calls
        at = time.perf_counter()
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "replace")
        match = MESSAGE_ID_RE.search(content)
        with self.condition:
            if match is None or match.group(3, 4, 5) != (b"email", b"alert", b"1"):
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


@dataclass
class Mail:
    """One message as the Mailbox received it (at: perf_counter time of arrival)."""

    at: float
    message_id: str
    public_id: str
    contact_id: int
    kind: str
    level: int
    sequence: int
    to: str
    raw: bytes = field(repr=False)

    @property
    def is_alert(self) -> bool:
        return self.kind == "alert" and self.level == 1 and self.sequence == 0

    def ack_path(self) -> str | None:
        """The acknowledgement link's path, from the line after ACK_LINE in the body."""
        message = email.message_from_bytes(self.raw, policy=email.policy.default)
        part = message.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
        if part is None:
            return None
        lines = [line.strip() for line in part.get_content().splitlines()]
        for index, line in enumerate(lines[:-1]):
            if line == ACK_LINE and lines[index + 1]:
                return urlsplit(lines[index + 1]).path
        return None


class Mailbox:
    """aiosmtpd handler: keeps every message with its receive time; hands alerts on."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.mails: list[Mail] = []
        self.unparsed = 0
        self.on_alert: Any = None  # callable(Mail), set while alerts are acknowledged

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - the name the server library calls
        at = time.perf_counter()
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "replace")
        match = MESSAGE_ID_RE.search(raw)
        to = TO_RE.search(raw)
        mail = None
        if match is not None:
            mail = Mail(
                at=at,
                message_id=match.group(0).split(b"<", 1)[1].rstrip(b">").decode(),
                public_id=match.group(1).decode(),
                contact_id=int(match.group(2)),
                kind=match.group(4).decode(),
                level=int(match.group(5)),
                sequence=int(match.group(6)),
                to=to.group(1).decode(errors="replace").strip() if to else "",
                raw=raw,
            )
        with self.condition:
            if mail is None:
                self.unparsed += 1
            else:
                self.mails.append(mail)
            self.condition.notify_all()
            hand_on = self.on_alert
        if mail is not None and mail.is_alert and hand_on is not None:
            hand_on(mail)
        return "250 Message accepted for delivery"

    def alerts_for(self, public_ids: set[str]) -> dict[str, list[Mail]]:
        with self.condition:
            found: dict[str, list[Mail]] = {}
            for mail in self.mails:
                if mail.is_alert and mail.public_id in public_ids:
                    found.setdefault(mail.public_id, []).append(mail)
            return found

    def wait_for(self, public_ids: set[str], until: float) -> bool:
        """Wait (until a perf_counter time) for an alert of every encounter named."""
        with self.condition:
            while True:
                seen = {m.public_id for m in self.mails if m.is_alert}
                if public_ids <= seen:
                    return True
                left = until - time.perf_counter()
                if left <= 0:
                    return False
                self.condition.wait(min(left, 0.5))


class BlackHole:
    """Accepts SMTP connections and never says a word; holds the sockets until closed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.held: list[socket.socket] = []
        self.accepted_at: list[float] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, name="black-hole", daemon=True)

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 10
        while True:
            try:
                sock.bind(("127.0.0.1", self.port))
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    sock.close()
                    raise BenchError(f"black hole could not bind port {self.port}: {exc}") from exc
                time.sleep(0.05)
        sock.listen(128)
        sock.settimeout(0.2)
        self.sock = sock
        self.thread.start()

    def _accept(self) -> None:
        assert self.sock is not None
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.held.append(conn)
            self.accepted_at.append(time.perf_counter())

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(2)
        if self.sock is not None:
            self.sock.close()
        for conn in self.held:
            with contextlib.suppress(OSError):
                conn.close()
        self.held.clear()


def port_bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class SmtpSwitch:
    """One SMTP port, served by the recording server ("up") or the black hole ("down")."""

    def __init__(self, mailbox: Mailbox, port: int) -> None:
        self.mailbox = mailbox
        self.port = port
        self.controller: Any = None
        self.hole: BlackHole | None = None
        self.holes: list[BlackHole] = []

    def up(self) -> float:
        """Serve with the recording server; return the perf_counter time it listens."""
        from aiosmtpd.controller import Controller

        self._close_hole()
        if self.controller is not None:
            return time.perf_counter()
        deadline = time.monotonic() + 10
        while True:
            # A failed bind costs Controller.start() its whole ready_timeout: probe first.
            if port_bindable(self.port):
                controller = Controller(
                    self.mailbox, hostname="127.0.0.1", port=self.port, ready_timeout=5
                )
                try:
                    controller.start()
                    self.controller = controller
                    return time.perf_counter()
                except Exception as exc:
                    with contextlib.suppress(Exception):
                        controller.stop(no_assert=True)
                    if time.monotonic() > deadline:
                        raise BenchError(f"SMTP server could not start: {exc}") from exc
            elif time.monotonic() > deadline:
                raise BenchError(f"SMTP port {self.port} stays busy")
            time.sleep(0.05)

    def down(self) -> None:
        """Serve with a black hole."""
        self._close_controller()
        if self.hole is None:
            self.hole = BlackHole(self.port)
            self.hole.start()
            self.holes.append(self.hole)

    def _close_controller(self) -> None:
        if self.controller is not None:
            with contextlib.suppress(Exception):
                self.controller.stop()
            self.controller = None

    def _close_hole(self) -> None:
        if self.hole is not None:
            self.hole.close()
            self.hole = None

    def close(self) -> None:
        self._close_controller()
        self._close_hole()
