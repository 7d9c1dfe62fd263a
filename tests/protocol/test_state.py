"""The encounter state machine."""

from __future__ import annotations

import pytest

from kiosk.protocol.state import Status, TransitionError, can_move, is_active, move

ALLOWED = {
    ("open", "acknowledged"),
    ("open", "resolved"),
    ("open", "stood_down"),
    ("acknowledged", "resolved"),
    ("acknowledged", "stood_down"),
    ("stood_down", "open"),
    ("stood_down", "acknowledged"),
    ("stood_down", "resolved"),
}


@pytest.mark.parametrize("current", [s.value for s in Status])
@pytest.mark.parametrize("target", [s.value for s in Status])
def test_transition_table(current: str, target: str) -> None:
    expected = (current, target) in ALLOWED
    assert can_move(current, target) is expected
    if expected:
        assert move(current, target) == target
    else:
        with pytest.raises(TransitionError):
            move(current, target)


def test_only_open_and_acknowledged_are_active() -> None:
    assert [s.value for s in Status if is_active(s)] == ["open", "acknowledged"]
