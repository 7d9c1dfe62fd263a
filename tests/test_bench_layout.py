"""The benchmarks share one harness (bench/harness) and never import one another.

Every bench/*.py is parsed, not imported: a benchmark may import the harness (as
`bench.harness` or, run as `python bench/<name>.py`, as `harness`), the app and libraries,
but no other module of bench/. The harness imports no benchmark either.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
HARNESS = BENCH / "harness"
BENCHMARKS = sorted(p for p in BENCH.glob("*.py") if p.name != "__init__.py")
BENCHMARK_NAMES = frozenset(p.stem for p in BENCHMARKS)


def imports(source: str, package: str) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in the source, relative ones resolved in `package`.

    `from x import y` yields both x and x.y: y may be a module (`from bench import office`).
    """
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def forbidden(module: str) -> bool:
    """A module of bench/ other than the harness, by its package name or its script name."""
    parts = module.split(".")
    if parts[0] == "bench":
        return len(parts) > 1 and parts[1] not in ("harness", "*")
    return parts[0] in BENCHMARK_NAMES


def violations(path: Path, package: str) -> list[str]:
    return [
        f"{path.relative_to(BENCH.parent)}:{line} imports {module}"
        for line, module in imports(path.read_text(), package)
        if forbidden(module)
    ]


def test_there_are_benchmarks_and_a_harness() -> None:
    assert {"alert_latency", "office", "desk_taps"} <= BENCHMARK_NAMES
    assert "harness" not in BENCHMARK_NAMES, "the harness is a package, not a benchmark"
    assert (HARNESS / "__init__.py").is_file()


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_a_benchmark_imports_no_other_benchmark(path: Path) -> None:
    assert violations(path, "bench") == []


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_a_benchmark_run_as_a_script_finds_the_harness_both_ways(path: Path) -> None:
    source = path.read_text()
    if 'if __name__ == "__main__":' not in source:
        return  # not a script (floor_app is served by gunicorn)
    modules = {module for _, module in imports(source, "bench")}
    assert {"bench.harness", "harness"} <= modules


def test_the_harness_imports_no_benchmark() -> None:
    found = sorted(HARNESS.rglob("*.py"))
    assert found
    for path in found:
        assert violations(path, "bench.harness") == []


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("from bench.office import Mailbox", True),
        ("from office import Mailbox", True),
        ("import bench.alert_latency", True),
        ("import desk_taps as taps", True),
        ("from bench import office", True),
        ("from . import office", True),
        ("from .alert_latency import log", True),
        ("def f():\n    from alert_latency import log\n", True),
        ("from bench.harness import KioskClient", False),
        ("from harness import KioskClient", False),
        ("from bench import harness", False),
        ("from .harness import log", False),
        ("from kiosk.models import School", False),
        ("import json", False),
    ],
)
def test_the_check_tells_a_benchmark_import(source: str, bad: bool) -> None:
    found = [module for _, module in imports(source, "bench") if forbidden(module)]
    assert bool(found) is bad, found
