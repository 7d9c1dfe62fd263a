"""notify/ carries messages and decides nothing: it imports nothing from protocol/ (the domain
enqueues; delivery reports back through return values and the hooks kiosk/delivery.py wires)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

NOTIFY = Path(__file__).resolve().parents[2] / "kiosk" / "notify"
DOMAIN = "kiosk.protocol"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module the file imports, anywhere in it (functions too), with its line."""
    package = ["kiosk", "notify"]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            # `from kiosk import protocol` names the module in the alias.
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def test_the_check_sees_every_way_of_importing_the_domain(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import kiosk.protocol.state\n"
        "from kiosk import protocol\n"
        "from kiosk.protocol.events import Actor\n"
        "from ..protocol import escalation\n"
        "def later():\n"
        "    from kiosk.protocol import routing\n"
    )
    lines = [line for line, name in imported_modules(sample) if is_domain(name)]
    assert lines == [1, 2, 3, 4, 6]


def is_domain(name: str) -> bool:
    return name == DOMAIN or name.startswith(f"{DOMAIN}.")


@pytest.mark.parametrize("path", sorted(NOTIFY.glob("**/*.py")), ids=lambda p: p.name)
def test_notify_imports_nothing_from_protocol(path: Path) -> None:
    wrong = [f"line {line}: {name}" for line, name in imported_modules(path) if is_domain(name)]
    assert not wrong, f"kiosk/notify/{path.name} imports the domain: {wrong}"
