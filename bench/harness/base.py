"""Where the benchmarks run from, how they fail, how they talk (stderr), and free ports."""

from __future__ import annotations

import functools
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv" / "bin").is_dir() else Path(sys.executable).parent


class BenchError(RuntimeError):
    """The benchmark could not be run as set up."""


def log(bench: str, message: str) -> None:
    """One progress line on stderr; stdout is kept for the one JSON line."""
    print(f"[{bench} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def logger(bench: str) -> Callable[[str], None]:
    """`log` for one benchmark: `log = logger("office")`, then `log("...")`."""
    return functools.partial(log, bench)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
