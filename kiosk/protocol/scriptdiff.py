"""How two script packs differ, block by block, in words counsel can read."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kiosk.protocol.scripts import DEFAULT_PRIORITY, SITUATION_LABELS


@dataclass(frozen=True)
class Line:
    """One line of a block: "same", "added" or "removed"."""

    kind: str
    text: str


@dataclass(frozen=True)
class BlockChange:
    """One block added, removed or changed; the pack's own label and notice count as one."""

    kind: str
    step: str
    situation: str
    lines: tuple[Line, ...]

    @property
    def title(self) -> str:
        if not self.situation:
            return "The pack's label and notice"
        where = "Every step" if self.step == "any" else f"Step: {self.step}"
        return f"{where}; {SITUATION_LABELS.get(self.situation, self.situation)}"


def _block_lines(block: Mapping[str, Any]) -> list[str]:
    situation = str(block.get("situation"))
    lines = [f"Priority: {block.get('priority', DEFAULT_PRIORITY.get(situation, 0))}"]
    lines.append(f"Say: {block.get('say', '')}")
    lines += [f"Do: {line}" for line in block.get("do") or []]
    lines += [f"Never: {line}" for line in block.get("never") or []]
    return lines


def _diff(old: list[str], new: list[str]) -> tuple[Line, ...]:
    found: list[Line] = []
    for row in difflib.ndiff(old, new):
        code, text = row[:2], row[2:]
        if code == "  ":
            found.append(Line("same", text))
        elif code == "- ":
            found.append(Line("removed", text))
        elif code == "+ ":
            found.append(Line("added", text))
    return tuple(found)


def _blocks(data: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {(str(b.get("step")), str(b.get("situation"))): b for b in data.get("blocks") or []}


def pack_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[BlockChange]:
    """Every block that differs between two packs' data, in the new pack's order (removed
    blocks last); blocks that are the same are left out."""
    changes: list[BlockChange] = []
    head_old = [f"Label: {old.get('label', '')}", f"Notice: {old.get('notice', '')}"]
    head_new = [f"Label: {new.get('label', '')}", f"Notice: {new.get('notice', '')}"]
    if head_old != head_new:
        changes.append(BlockChange("changed", "", "", _diff(head_old, head_new)))
    before, after = _blocks(old), _blocks(new)
    for key, block in after.items():
        lines = _block_lines(block)
        if key not in before:
            changes.append(BlockChange("added", *key, tuple(Line("added", t) for t in lines)))
        elif (was := _block_lines(before[key])) != lines:
            changes.append(BlockChange("changed", *key, _diff(was, lines)))
    for key, block in before.items():
        if key not in after:
            lines = _block_lines(block)
            changes.append(BlockChange("removed", *key, tuple(Line("removed", t) for t in lines)))
    return changes
