"""Each delivery test starts with no escalation failures remembered by this process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kiosk.protocol.escalation import reset_escalation_failures


@pytest.fixture(autouse=True)
def _no_escalation_failures() -> Iterator[None]:
    reset_escalation_failures()
    yield
    reset_escalation_failures()
