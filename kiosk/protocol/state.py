"""The encounter state machine: which status may follow which."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    STOOD_DOWN = "stood_down"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.OPEN: frozenset({Status.ACKNOWLEDGED, Status.RESOLVED, Status.STOOD_DOWN}),
    Status.ACKNOWLEDGED: frozenset({Status.RESOLVED, Status.STOOD_DOWN}),
    Status.RESOLVED: frozenset(),
    # A stand-down waits on the office list until a designee closes it (resolved) or
    # reopens it (escalation resumes, acknowledged again if it was before).
    Status.STOOD_DOWN: frozenset({Status.OPEN, Status.ACKNOWLEDGED, Status.RESOLVED}),
}

ACTIVE = frozenset({Status.OPEN, Status.ACKNOWLEDGED})
# What the office's list of open encounters shows: active ones, and stand-downs that a
# designee has not closed or reopened yet.
ON_OFFICE_LIST = frozenset({*ACTIVE, Status.STOOD_DOWN})


class TransitionError(ValueError):
    """The encounter cannot move to that status from where it is."""


def can_move(current: str, target: str) -> bool:
    """Say whether an encounter may go from current to target."""
    return Status(target) in TRANSITIONS[Status(current)]


def move(current: str, target: str) -> Status:
    """Return the target status, or raise TransitionError."""
    if not can_move(current, target):
        raise TransitionError(f"an encounter that is {current} cannot become {target}")
    return Status(target)


def is_active(status: str) -> bool:
    """Say whether the encounter still needs the office's attention."""
    return Status(status) in ACTIVE
