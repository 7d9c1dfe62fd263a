"""Script packs: the default wording, which block the facts reach, and pack validation."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable

import pytest

from kiosk.protocol.documents import DocType
from kiosk.protocol.scripts import (
    CHANNELS,
    SITUATIONS,
    STEPS,
    Block,
    Facts,
    ScriptPack,
    default_pack,
    default_pack_data,
    load_pack,
    sentence_count,
)

PACK = default_pack()
BLOCKS = list(PACK.blocks.values())


def text_of(block: Block) -> str:
    """Return every line of a block as one lower-case text."""
    return " ".join((block.say, *block.do, *block.never)).lower()


# ---- the default pack's wording


def test_default_pack_is_a_draft_for_counsel() -> None:
    assert PACK.status == "draft"
    assert PACK.label == "Default script pack 1 (draft)"
    notice = PACK.notice.lower()
    assert "counsel" in notice
    assert "starting point" in notice
    assert "not legal advice" in notice


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"{b.step}/{b.situation}")
def test_block_wording_rules(block: Block) -> None:
    # Independent of load_pack's own checks, so a loosened validator is caught here.
    assert not re.search(r"compl[yi]", text_of(block)), "the word comply in any form"
    assert block.say.strip()
    assert len(re.findall(r"[.!?](?:\s|$)", block.say.strip() + " ")) <= 2
    assert 2 <= len(block.do) <= 5
    assert 2 <= len(block.never) <= 5
    for line in (block.say, *block.do, *block.never):
        assert line == line.strip() and line[-1] in ".?", line
        # The agent may read the screen: no agency names, no politics.
        assert not re.search(r"\b(ICE|HSI|CBP|FBI|DHS|Homeland)\b", line), line
    for line in block.never:
        assert line.startswith(("Do not ", "Never ")), line


def test_every_step_and_situation_in_the_pack_is_known() -> None:
    assert {(b.step, b.situation) for b in BLOCKS} == set(PACK.blocks)
    assert all(b.step in (*STEPS, "any") and b.situation in SITUATIONS for b in BLOCKS)
    assert all((step, "default") in PACK.blocks for step in STEPS)


def test_no_block_writes_down_immigration_status() -> None:
    # Wherever status comes up, it is only ever as something never to write down.
    for block in BLOCKS:
        for line in (block.say, *block.do):
            assert "immigration status" not in line.lower()
    mentions = [line for b in BLOCKS for line in b.never if "immigration status" in line]
    assert mentions and all(line.startswith("Never write down") for line in mentions)


# ---- every first impression has its own document block

DOC_WORDS = {
    DocType.JUDICIAL_WARRANT: (
        "will not obstruct",
        "district office and counsel are checking the warrant now",
        "address, dates and scope",
        "exactly what the warrant names",
    ),
    DocType.ADMINISTRATIVE_WARRANT: (
        "not able to consent to entry beyond this lobby",
        "non-public area",
        "student information",
        "i do not consent",
    ),
    DocType.JUDICIAL_SUBPOENA: ("not released at the front desk", "counsel", "response date"),
    DocType.DHS_SUBPOENA: ("not released at the front desk", "counsel"),
    DocType.DETAINER: ("not able to act on this document at the school", "referring"),
    DocType.NOTICE_TO_APPEAR: ("not able to act on this notice at the school", "referring"),
    DocType.GRAND_JURY_SUBPOENA: (
        "not released at the front desk",
        "counsel",
        "order not to disclose",
    ),
    DocType.I9_NOTICE: ("employment records", "human resources", "counsel", "not about students"),
    DocType.OTHER: ("not able to act on this document", "public lobby", "student information"),
    DocType.NONE: (
        "not able to give access to any student",
        "share any information",
        "checks with the guardian directly",
    ),
    DocType.UNSURE: ("not signed by a judge", "district office decides"),
}


@pytest.mark.parametrize("doc", list(DocType), ids=str)
def test_every_first_impression_has_its_own_document_block(doc: DocType) -> None:
    block = PACK.block("document", Facts(document=doc.value))
    assert block.situation == f"doc:{doc.value}"
    assert block.step == "any"  # the document's words follow the desk onto every step
    text = text_of(block)
    for words in DOC_WORDS[doc]:
        assert words in text, words


def test_doc_words_cover_every_kind() -> None:
    assert set(DOC_WORDS) == set(DocType)


@pytest.mark.parametrize("doc", [d for d in DocType if d is not DocType.JUDICIAL_WARRANT], ids=str)
def test_only_a_judicial_warrant_says_it_will_not_obstruct(doc: DocType) -> None:
    # The non-obstruction line belongs to a judge-signed warrant; on other papers the
    # desk simply does not consent (and still never blocks anyone).
    assert "will not obstruct" not in text_of(PACK.block("document", Facts(document=doc.value)))


@pytest.mark.parametrize(
    ("value", "confirmed"),
    [("warrant", False), ("JUDICIAL_WARRANT", False), ("", True)],
    ids=["unknown value", "enum name, not value", "empty"],
)
def test_unreadable_document_value_reads_as_unsure(value: str, confirmed: bool) -> None:
    facts = Facts(document=value, document_confirmed=confirmed)
    assert PACK.block("document", facts).situation == "doc:unsure"


def test_confirmation_does_not_change_the_block() -> None:
    first = Facts(document="detainer")
    confirmed = Facts(document="detainer", document_confirmed=True)
    assert PACK.block("document", first) == PACK.block("document", confirmed)


def test_document_step_without_an_impression_asks_to_see_it() -> None:
    block = PACK.block("document", Facts())
    assert block.situation == "default"
    assert "may i see any document" in block.say.lower()
    assert "do not interpret" in text_of(block)


# ---- channels, exigency, entry without consent, claimed consent


@pytest.mark.parametrize("channel", ["phone", "email", "letter", "offsite"])
@pytest.mark.parametrize("step", ["start", "agents", "request", "document", "outcome", "close"])
def test_each_channel_has_its_own_block(step: str, channel: str) -> None:
    block = PACK.block(step, Facts(channel=channel))
    assert block.situation == channel
    assert block != PACK.block(step, Facts())


@pytest.mark.parametrize("channel", ["phone", "email", "letter"])
def test_remote_requests_confirm_nothing_and_refer(channel: str) -> None:
    start = text_of(PACK.block("start", Facts(channel=channel)))
    assert "superintendent's office will" in start
    request = text_of(PACK.block("request", Facts(channel=channel)))
    assert "superintendent's office will respond" in request
    everything = " ".join(
        text_of(PACK.block(step, Facts(channel=channel)))
        for step in ("start", "agents", "request", "outcome", "close")
    )
    assert "do not confirm or deny" in everything or "not able to confirm" in everything
    assert "do not reply" in everything or "send nothing" in everything or channel == "phone"


def test_phone_takes_the_callers_details() -> None:
    assert "name, agency, badge" in PACK.block("agents", Facts(channel="phone")).say.lower()
    assert "caller's own words" in text_of(PACK.block("request", Facts(channel="phone")))


@pytest.mark.parametrize("step", ["start", "agents", "request", "document", "outcome", "close"])
def test_staff_reporting_from_elsewhere_are_told_what_to_relay(step: str) -> None:
    # The caller is our own staff, not the requester: every line is something to tell them.
    block = PACK.block(step, Facts(channel="offsite"))
    assert block.say.startswith("Tell our staff member")
    assert len(block.say) <= 130, "short lines: they are read out over the phone"
    assert "your identification" not in text_of(block)


def test_staff_elsewhere_keep_the_students_and_do_not_resist() -> None:
    text = text_of(PACK.block("start", Facts(channel="offsite")))
    assert "confirm nothing" in text and "hand over no student" in text
    assert "i do not consent" in text and "do not resist" in text
    assert "location and a call-back number" in text


def test_in_person_uses_the_default_blocks() -> None:
    for step in STEPS:
        assert PACK.block(step, Facts(channel="in_person")).situation == "default"


def test_unknown_channel_falls_back_to_default() -> None:
    assert PACK.situations(Facts(channel="fax")) == ["default"]


@pytest.mark.parametrize("step", STEPS)
def test_exigency_has_its_own_block_on_every_step(step: str) -> None:
    block = PACK.block(step, Facts(exigency=True))
    assert block.situation == "exigency"
    text = text_of(block)
    assert "emergency" in text
    assert "word for word" in text


def test_exigency_block_does_not_interfere_or_judge() -> None:
    text = text_of(PACK.block("exigency", Facts(exigency=True)))
    assert "i will not interfere" in text
    assert "do not judge or question whether the emergency is real" in text
    assert "stated reason" in text and "instruction" in text


@pytest.mark.parametrize("step", STEPS)
def test_entry_without_consent_says_i_do_not_consent_and_does_not_resist(step: str) -> None:
    block = PACK.block(step, Facts(entered_without_consent=True))
    assert block.situation == "entry_without_consent"
    assert block.say.startswith("I do not consent")
    assert "i will not resist" in block.say.lower()
    assert "do not physically resist" in text_of(block)
    assert "what was done, where and when" in text_of(block)
    assert "witness" in text_of(block) or "who saw it" in text_of(block)


def test_claimed_consent_has_its_own_block() -> None:
    block = PACK.block("request", Facts(consent_claimed=True))
    assert block.situation == "consent_claimed"
    text = text_of(block)
    assert "parent or guardian" in text
    assert "not able to give access or information" in text
    assert "spoken statement that a parent agreed" in text


def test_a_judicial_warrant_naming_a_person_is_checked_and_not_obstructed() -> None:
    block = PACK.block("start", Facts(document="judicial_warrant", document_names_person=True))
    assert block.situation == "warrant_person"
    text = text_of(block)
    assert block.say.startswith("I will not obstruct you")
    assert "district office and counsel are checking the warrant now" in text
    assert "do not hide, move or warn the person it names" in text
    assert "do not bring the person it names to the agents yourself" in text


def test_a_person_named_on_another_document_is_not_a_warrant() -> None:
    facts = Facts(document="administrative_warrant", document_names_person=True)
    assert "warrant_person" not in PACK.situations(facts)
    assert PACK.block("start", facts).situation == "doc:administrative_warrant"


def test_a_parent_sought_keeps_the_child_with_staff() -> None:
    block = PACK.block("request", Facts(request_kinds=frozenset({"adult"})))
    assert block.situation == "parent_sought"
    text = text_of(block)
    assert "a staff member stays with the child, away from the encounter" in text
    assert "do not hand the child to the agents" in text
    assert "district office arranges the child's care" in text
    assert "record which staff member stays with the child" in text


@pytest.mark.parametrize(
    ("kind", "situation", "words"),
    [
        ("student_access", "student_sought", "not able to confirm whether any student is here"),
        ("student_info", "records_sought", "not able to share any student information"),
        ("staff", "staff_sought", "not able to share information about staff"),
    ],
)
def test_who_is_sought_has_its_own_words(kind: str, situation: str, words: str) -> None:
    block = PACK.block("start", Facts(request_kinds=frozenset({kind})))
    assert block.situation == situation
    assert words in block.say.lower()


# ---- the "Now" panel: every situation on every step

# Facts that reach one situation each (besides the default).
ONE_SITUATION: dict[str, Facts] = {
    "exigency": Facts(exigency=True),
    "entry_without_consent": Facts(entered_without_consent=True),
    "warrant_person": Facts(document="judicial_warrant", document_names_person=True),
    "parent_sought": Facts(request_kinds=frozenset({"adult"})),
    "consent_claimed": Facts(consent_claimed=True),
    **{f"doc:{d.value}": Facts(document=d.value) for d in DocType},
    **{channel: Facts(channel=channel) for channel in ("phone", "email", "letter", "offsite")},
    "student_sought": Facts(request_kinds=frozenset({"student_access"})),
    "records_sought": Facts(request_kinds=frozenset({"student_info"})),
    "staff_sought": Facts(request_kinds=frozenset({"staff"})),
    "default": Facts(),
}
CHANNEL_STEPS = ("start", "agents", "request", "document", "outcome", "close")


def expected_top(situation: str, step: str) -> str:
    """What the panel shows for one situation: it follows the desk onto every step."""
    return situation


def test_the_table_covers_every_situation() -> None:
    assert set(ONE_SITUATION) == set(SITUATIONS)


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("situation", list(ONE_SITUATION))
def test_the_panel_shows_the_situation_on_every_step(situation: str, step: str) -> None:
    panel = PACK.panel(step, ONE_SITUATION[situation])
    assert panel.top.situation == expected_top(situation, step)
    assert panel.top.say and panel.top.do and panel.top.never
    assert all(b.situation != "default" for b in panel.earlier)
    if situation == "default" or (situation in CHANNELS and step in CHANNEL_STEPS):
        assert panel.top.step == step  # written for the step: its own question


# The order, most urgent first.
URGENCY = [
    "exigency",
    "entry_without_consent",
    "warrant_person",
    "parent_sought",
    "consent_claimed",
    "doc:judicial_warrant",
    "phone",
    "default",
]
EVERYTHING = Facts(
    channel="phone",
    document="judicial_warrant",
    document_names_person=True,
    exigency=True,
    entered_without_consent=True,
    consent_claimed=True,
    request_kinds=frozenset({"adult", "student_access", "student_info", "staff"}),
)


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("drop", range(len(URGENCY) - 1), ids=URGENCY[:-1])
def test_the_most_urgent_situation_known_wins(step: str, drop: int) -> None:
    """Take away the situations above one; that one must then be on top."""
    fields = {
        "exigency": {"exigency": False},
        "entry_without_consent": {"entered_without_consent": False},
        "warrant_person": {"document_names_person": False},
        "parent_sought": {"request_kinds": frozenset({"student_access", "student_info", "staff"})},
        "consent_claimed": {"consent_claimed": False},
        "doc:judicial_warrant": {"document": None},
    }
    facts = EVERYTHING
    for situation in URGENCY[:drop]:
        facts = dataclasses.replace(facts, **fields[situation])
    expected = URGENCY[drop]
    panel = PACK.panel(step, facts)
    assert panel.top.situation == expected
    # Whatever else is still true folds below, most urgent first, never repeated.
    below = [b.situation for b in panel.earlier]
    assert expected not in below
    assert below == sorted(below, key=SITUATIONS.index)


def test_situations_always_end_in_default() -> None:
    assert PACK.situations(Facts())[-1] == "default"
    assert PACK.situations(EVERYTHING)[-1] == "default"
    assert PACK.situations(EVERYTHING)[:6] == [
        "exigency",
        "entry_without_consent",
        "warrant_person",
        "parent_sought",
        "consent_claimed",
        "doc:judicial_warrant",
    ]


def test_the_step_keeps_its_own_question_below_the_panel() -> None:
    facts = Facts(document="administrative_warrant")
    assert PACK.block("agents", facts).situation == "doc:administrative_warrant"
    own = PACK.step_block("agents", facts)
    assert own.step == "agents" and "identification" in own.say.lower()
    assert PACK.step_block("agents", Facts(channel="phone")).situation == "phone"


def test_a_higher_priority_wins_over_the_order() -> None:
    data = default_pack_data()
    _first(data, "any", "doc:detainer")["priority"] = 95
    pack = load_pack(data)
    assert pack.block("start", Facts(exigency=True, document="detainer")).situation == (
        "doc:detainer"
    )


def test_a_block_for_the_step_wins_over_one_for_any_step() -> None:
    data = default_pack_data()
    step_block = copy.deepcopy(_first(data, "any", "exigency"))
    step_block.update(step="outcome", say="Outcome words.")
    data["blocks"].append(step_block)
    pack = load_pack(data)
    assert pack.block("outcome", Facts(exigency=True)).say == "Outcome words."
    assert pack.block("agents", Facts(exigency=True)).say != "Outcome words."


def test_a_pack_without_priorities_loads_with_the_default_order() -> None:
    data = default_pack_data()
    for block in data["blocks"]:
        del block["priority"]
    assert load_pack(data) == PACK


def test_unknown_step_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown step"):
        PACK.panel("lunch", Facts())


def test_contract_constants() -> None:
    assert STEPS == (
        "start",
        "staff",
        "agents",
        "request",
        "document",
        "exigency",
        "outcome",
        "close",
    )
    assert CHANNELS == ("in_person", "phone", "email", "letter", "offsite")
    assert {f"doc:{d.value}" for d in DocType} <= set(SITUATIONS)
    assert SITUATIONS[:5] == (
        "exigency",
        "entry_without_consent",
        "warrant_person",
        "parent_sought",
        "consent_claimed",
    )
    assert SITUATIONS[-1] == "default"


# ---- loading and validation


def test_default_pack_data_is_a_fresh_copy() -> None:
    data = default_pack_data()
    data["blocks"].clear()
    assert default_pack_data()["blocks"]


def test_to_data_round_trips() -> None:
    assert load_pack(PACK.to_data()) == PACK


def _first(data: dict, step: str, situation: str = "default") -> dict:
    return next(b for b in data["blocks"] if b["step"] == step and b["situation"] == situation)


def _drop_default(data: dict) -> None:
    data["blocks"].remove(_first(data, "outcome"))


def _unknown_step(data: dict) -> None:
    data["blocks"][0]["step"] = "lunch"


def _unknown_situation(data: dict) -> None:
    data["blocks"][0]["situation"] = "doc:parking_ticket"


def _three_sentences(data: dict) -> None:
    _first(data, "start")["say"] = "Hello. Please wait here. The office is on its way."


def _three_with_question(data: dict) -> None:
    _first(data, "agents")["say"] = "May I see your ID? Thank you. Please wait."


def _empty_say(data: dict) -> None:
    _first(data, "start")["say"] = "   "


def _compliance_in_do(data: dict) -> None:
    _first(data, "document")["do"].append("Check compliance with the document.")


def _complies_in_never(data: dict) -> None:
    _first(data, "close")["never"].append("Do not say the school Complies.")


def _comply_in_say(data: dict) -> None:
    _first(data, "any", "doc:judicial_warrant")["say"] = "We will comply with the warrant."


def _noncompliant_in_do(data: dict) -> None:
    _first(data, "request")["do"].append("Record any noncompliant behaviour.")


def _duplicate_block(data: dict) -> None:
    data["blocks"].append(copy.deepcopy(data["blocks"][0]))


def _bad_status(data: dict) -> None:
    data["status"] = "final"


def _no_notice(data: dict) -> None:
    data["notice"] = ""


def _misspelt_key(data: dict) -> None:
    block = data["blocks"][0]
    block["nevr"] = block.pop("never")


def _do_not_a_list(data: dict) -> None:
    data["blocks"][0]["do"] = "Stay calm."


def _blank_line(data: dict) -> None:
    data["blocks"][0]["never"].append("")


def _blocks_not_a_list(data: dict) -> None:
    data["blocks"] = {}


def _priority_text(data: dict) -> None:
    data["blocks"][0]["priority"] = "high"


def _priority_too_high(data: dict) -> None:
    data["blocks"][0]["priority"] = 5000


def _default_for_any_step(data: dict) -> None:
    data["blocks"][0]["step"] = "any"


INVALID: list[tuple[str, Callable[[dict], None], str]] = [
    ("missing default", _drop_default, "no default block for step.*outcome"),
    ("unknown step", _unknown_step, "unknown step 'lunch'"),
    ("unknown situation", _unknown_situation, "unknown situation"),
    ("three-sentence say", _three_sentences, "at most two sentences"),
    ("three sentences with a question", _three_with_question, "at most two sentences"),
    ("empty say", _empty_say, "say must be non-empty"),
    ("compliance in do", _compliance_in_do, "comply"),
    ("Complies in never", _complies_in_never, "comply"),
    ("comply in say", _comply_in_say, "comply"),
    ("noncompliant in do", _noncompliant_in_do, "comply"),
    ("duplicate block", _duplicate_block, "a second block"),
    ("bad status", _bad_status, "status"),
    ("no notice", _no_notice, "notice"),
    ("misspelt key", _misspelt_key, "unknown key"),
    ("do not a list", _do_not_a_list, "list of lines"),
    ("blank line", _blank_line, "non-empty"),
    ("blocks not a list", _blocks_not_a_list, "blocks must be a list"),
    ("priority as text", _priority_text, "priority must be a whole number"),
    ("priority too high", _priority_too_high, "priority must be a whole number"),
    ("default for any step", _default_for_any_step, "default situation is written per step"),
]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [row[1:] for row in INVALID],
    ids=[row[0] for row in INVALID],
)
def test_load_pack_rejects(mutate: Callable[[dict], None], message: str) -> None:
    data = default_pack_data()
    load_pack(data)  # the unmodified data is valid, so the mutation is what fails
    mutate(data)
    with pytest.raises(ValueError, match=message):
        load_pack(data)


def test_load_pack_rejects_a_non_object() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        load_pack([])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "word", ["complete", "complex", "complain", "accomplice", "compliment", "complement"]
)
def test_lookalike_words_are_allowed(word: str) -> None:
    data = default_pack_data()
    _first(data, "close")["do"].append(f"Note anything {word}.")
    assert word in " ".join(load_pack(data).block("close", Facts()).do)


def test_a_minimal_pack_loads_and_picks_blocks() -> None:
    data = {
        "label": "Minimal",
        "status": "approved",
        "notice": "Approved by counsel.",
        "blocks": [
            {"step": step, "situation": "default", "say": f"{step}.", "do": [], "never": []}
            for step in STEPS
        ]
        + [
            {
                "step": "document",
                "situation": "doc:unsure",
                "say": "Unsure.",
                "do": ["Wait."],
                "never": ["Do not guess."],
            }
        ],
    }
    pack = load_pack(data)
    assert isinstance(pack, ScriptPack)
    assert pack.status == "approved"
    assert pack.block("document", Facts(document="unsure")).say == "Unsure."
    # With no detainer block, the detainer impression falls to the step default.
    assert pack.block("document", Facts(document="detainer")).say == "document."


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("", 0),
        ("Hello", 1),
        ("Hello.", 1),
        ("Hello. World", 2),
        ("May I see it? Thank you.", 2),
        ('She said "I do not consent." Then she waited.', 2),
        ("Wait here. Please. Now!", 3),
        ("It costs 3.50 dollars.", 1),
        ("I'm not able to decide; the office will.", 1),
    ],
)
def test_sentence_count(text: str, count: int) -> None:
    assert sentence_count(text) == count


def test_pack_blocks_are_read_only() -> None:
    with pytest.raises(TypeError):
        PACK.blocks[("start", "default")] = PACK.blocks[("start", "default")]  # type: ignore[index]
