"""How two packs differ, block by block: what counsel reads before taking up a new pack."""

from __future__ import annotations

import copy

from kiosk.protocol.scriptdiff import Line, pack_changes
from kiosk.protocol.scripts import default_pack_data


def test_the_same_pack_has_no_changes() -> None:
    assert pack_changes(default_pack_data(), default_pack_data()) == []


def test_changed_added_and_removed_blocks_are_named_with_their_lines() -> None:
    old = default_pack_data()
    new = copy.deepcopy(old)
    phone = next(b for b in new["blocks"] if (b["step"], b["situation"]) == ("start", "phone"))
    was = phone["say"]
    phone["say"] = "Please hold while I note your request."
    phone["never"].append("Do not transfer the call to anyone else.")
    removed = new["blocks"].pop(
        next(
            i
            for i, b in enumerate(new["blocks"])
            if (b["step"], b["situation"]) == ("close", "phone")
        )
    )
    new["blocks"].append(
        {
            "step": "staff",
            "situation": "letter",
            "say": "Thank you.",
            "do": ["Keep the letter."],
            "never": [],
        }
    )
    changes = {(c.kind, c.step, c.situation): c for c in pack_changes(old, new)}
    assert set(changes) == {
        ("changed", "start", "phone"),
        ("removed", removed["step"], removed["situation"]),
        ("added", "staff", "letter"),
    }
    changed = changes[("changed", "start", "phone")]
    assert changed.title == "Step: start; Request by phone"
    assert Line("removed", f"Say: {was}") in changed.lines
    assert Line("added", "Say: Please hold while I note your request.") in changed.lines
    assert Line("added", "Never: Do not transfer the call to anyone else.") in changed.lines
    added = changes[("added", "staff", "letter")]
    # A block written without a priority shows the one it gets.
    assert added.lines[0] == Line("added", "Priority: 30")
    assert all(line.kind == "removed" for line in changes[("removed", "close", "phone")].lines)


def test_a_new_label_or_notice_is_a_change_of_its_own() -> None:
    old = default_pack_data()
    new = {**old, "label": "District pack, reviewed"}
    [change] = pack_changes(old, new)
    assert change.title == "The pack's label and notice"
    assert Line("added", "Label: District pack, reviewed") in change.lines
