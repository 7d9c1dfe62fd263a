"""WCAG 2.1 AA checks with axe-core (the copy axe-playwright-python ships), run in the page
that Chromium has open. Unlike check_axe in test_kiosk_browser.py, every impact counts."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import axe_playwright_python

AXE = Path(axe_playwright_python.__file__).resolve().parent / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@lru_cache(maxsize=1)
def axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def violations(page: Any) -> list[str]:
    """axe's WCAG 2.1 A and AA violations on the page as it is now, one line each."""
    # Evaluated through the browser's debugging protocol, which the page's CSP allows.
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source() + "\n;0")
    found = page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
        ".violations.map(v => v.id + ': ' + v.help + ' [' + v.nodes.map(n => n.target.join(' '))"
        ".slice(0, 3).join(', ') + ']')",
        TAGS,
    )
    return list(found)


def assert_accessible(page: Any) -> None:
    """Fail with axe's findings if the page breaks a WCAG 2.1 AA rule axe can check."""
    found = violations(page)
    assert found == [], f"{page.url}:\n" + "\n".join(found)
