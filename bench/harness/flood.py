"""Wrong-password sign-ins posted without pause, from a process of their own.

`main(PORT, THREADS, EMAIL)`, run in a child process by Flood, signs in wrongly from THREADS threads
until its stdin closes, then prints one JSON line of counts. It runs apart from the
benchmark's kiosk clients, as an attacker would: its threads do not share the measuring
process's interpreter lock, so what the kiosks measure is the server's answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from .base import BIN, ROOT
from .client import CSRF_RE, KioskClient


def flood(port: int, threads: int, email: str, stop: threading.Event) -> dict[str, int]:
    counts = {"signins": 0, "refused": 0, "errors": 0}
    lock = threading.Lock()

    def one() -> None:
        client = KioskClient(port)
        status, _, page = client.request("GET", "/login")
        match = CSRF_RE.search(page)
        if status != 200 or match is None:
            with lock:
                counts["errors"] += 1
            return
        form = {"csrf_token": match.group(1), "email": email, "password": "wrong"}
        while not stop.is_set():
            try:
                status, _, _ = client.request("POST", "/login", form)
            except Exception:
                status = 0
            outcome = {200: "signins", 429: "refused"}.get(status, "errors")
            with lock:
                counts[outcome] += 1
        client.close_connection()

    workers = [threading.Thread(target=one, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return counts


class Flood:
    """The flood in a child process: started on entry, stopped (and counted) on exit."""

    def __init__(self, port: int, threads: int, email: str, log_path: Path) -> None:
        code = "import sys; from bench.harness.flood import main; main(*sys.argv[1:])"
        self.command = [str(BIN / "python"), "-c", code, str(port), str(threads), email]
        self.log_path = log_path
        self.process: Any = None
        self.counts: dict[str, int] = {"signins": 0, "refused": 0, "errors": 0}

    def __enter__(self) -> Flood:
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            out, _ = self.process.communicate(input="", timeout=60)
            self.counts = json.loads(out.strip().splitlines()[-1])
        except Exception:
            self.process.kill()
            self.process.wait(10)


def main(port: str, threads: str, email: str) -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    print(json.dumps(flood(int(port), int(threads), email, stop)), flush=True)
