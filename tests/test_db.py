"""The SQLite writer lock: writers queue in order, and the tap that raises an alert goes first."""

from __future__ import annotations

import threading
import time
from typing import Any

from kiosk.db import WriterLock


def test_urgent_writer_goes_before_writers_already_waiting(tmp_path: Any) -> None:
    lock = WriterLock(str(tmp_path / "db-writer.lock"))
    order: list[str] = []
    lock.acquire()  # someone is writing

    def writer(name: str, urgent: bool) -> None:
        lock.acquire(urgent=urgent)
        order.append(name)
        time.sleep(0.01)
        lock.release()

    waiting = [threading.Thread(target=writer, args=(f"form-{i}", False)) for i in range(3)]
    for thread in waiting:
        thread.start()
    time.sleep(0.1)  # the three forms are queued
    tap = threading.Thread(target=writer, args=("tap", True))
    tap.start()
    time.sleep(0.1)
    lock.release()
    for thread in [*waiting, tap]:
        thread.join(5)
    assert order[0] == "tap"
    assert sorted(order[1:]) == ["form-0", "form-1", "form-2"]


def test_writer_lock_excludes_another_process(tmp_path: Any) -> None:
    """flock keeps a second process out until the first releases."""
    import subprocess
    import sys

    path = str(tmp_path / "db-writer.lock")
    lock = WriterLock(path)
    lock.acquire()
    probe = (
        "import fcntl, os, sys\n"
        f"fd = os.open({path!r}, os.O_RDWR)\n"
        "try:\n"
        "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n"
        "    sys.exit(3)\n"
        "sys.exit(0)\n"
    )
    held = subprocess.run([sys.executable, "-c", probe], check=False)
    lock.release()
    free = subprocess.run([sys.executable, "-c", probe], check=False)
    assert (held.returncode, free.returncode) == (3, 0)
