"""Statistics the benchmarks report: nearest-rank percentiles, summaries, rates, CPU time."""

from __future__ import annotations

import math
import resource
from collections.abc import Sequence
from typing import Protocol


class Iteration(Protocol):
    """Anything that ran from iteration_start to iteration_end (perf_counter seconds)."""

    iteration_start: float
    iteration_end: float


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(values: Sequence[float]) -> dict[str, float] | None:
    """p50, p95, p99 and max of durations in seconds, in milliseconds; None when empty."""
    if not values:
        return None
    return {
        "p50": round(percentile(values, 50) * 1000, 1),
        "p95": round(percentile(values, 95) * 1000, 1),
        "p99": round(percentile(values, 99) * 1000, 1),
        "max": round(max(values) * 1000, 1),
    }


def rate_of(iterations: Sequence[Iteration]) -> float:
    """Completed iterations per second over the window the measured ones span."""
    if not iterations:
        return 0.0
    window = max(i.iteration_end for i in iterations) - min(i.iteration_start for i in iterations)
    return len(iterations) / window if window > 0 else 0.0


def cpu_seconds() -> float:
    """CPU time of this process (client threads and the SMTP server share the 2 cores)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
