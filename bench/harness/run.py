"""Running a benchmark: one JSON line on stdout whatever happens, under a watchdog."""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, Protocol

from .base import logger
from .processes import PROCESSES


class Benchmark(Protocol):
    def run(self) -> dict[str, Any]: ...

    def cleanup(self) -> None: ...


def run_bench(
    name: str,
    bench: Benchmark,
    timeout: float,
    report: Callable[[dict[str, Any]], str],
) -> int:
    """Run a benchmark under a watchdog; print one JSON line (the result or the error).

    On success `report(result)` is logged (stderr) under the benchmark's name; on an error,
    an interruption (SIGTERM, Ctrl-C) or the timeout the line is {"bench": name, "error": ...}
    and every server the bench started is stopped.
    """
    say = logger(name)
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
