"""Servers and setup commands the benchmarks start: bounded, in their own process groups."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import BIN, ROOT, BenchError


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


def error_lines(path: Path, chars: int) -> list[str]:
    """Lines of a server log's last `chars` that tell of an error."""
    return [
        line
        for line in log_tail(path, chars).splitlines()
        if "Traceback" in line or "ERROR" in line or "WORKER TIMEOUT" in line
    ]


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


@contextlib.contextmanager
def gunicorn(
    target: str, env: dict[str, str], log_path: Path, config: str = "gunicorn.conf.py"
) -> Iterator[Any]:
    """gunicorn serving `target` on env["PORT"], ready (GET /healthz) until the block ends."""
    # The control socket would default to ~/.gunicorn, shared with any other gunicorn.
    command = [str(BIN / "gunicorn"), "-c", config, "--no-control-socket", target]
    process = PROCESSES.start(command, env, log_path)
    try:
        wait_ready(int(env["PORT"]), process, log_path)
        yield process
    finally:
        PROCESSES.stop(process)
