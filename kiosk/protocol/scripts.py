"""Script packs: what the desk says, does and never does at each step.

A pack is data (counsel approves it, admins version it). Each block is keyed by a
step (or "any" step) and a situation, and carries a priority. The "Now" panel at the top
of every desk screen shows the highest-priority block the facts reach, so the words for
the most urgent situation follow the desk from screen to screen; the others fold below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from kiosk import vocabulary
from kiosk.vocabulary import keys

from .documents import DOC_LABELS, DocType

STEPS = ("start", "staff", "agents", "request", "document", "exigency", "outcome", "close")
# A block written for "any" step follows the situation onto every screen.
ANY_STEP = "any"

CHANNELS = keys(vocabulary.CHANNELS)

STATUSES = ("draft", "approved")

DOC_SITUATIONS: tuple[str, ...] = tuple(f"doc:{doc.value}" for doc in DocType)

# Every key a block may be written for, most urgent first; "in_person" has no key of its
# own. The order breaks ties between blocks of equal priority.
SITUATIONS: tuple[str, ...] = (
    "exigency",
    "entry_without_consent",
    "warrant_person",
    "parent_sought",
    "consent_claimed",
    *DOC_SITUATIONS,
    "phone",
    "email",
    "letter",
    "offsite",
    "student_sought",
    "records_sought",
    "staff_sought",
    "default",
)

# The priority a block gets when its pack does not say: the order of urgency above.
DEFAULT_PRIORITY: dict[str, int] = {
    "exigency": 90,
    "entry_without_consent": 80,
    "warrant_person": 70,
    "parent_sought": 60,
    "consent_claimed": 50,
    **dict.fromkeys(DOC_SITUATIONS, 40),
    **dict.fromkeys(("phone", "email", "letter", "offsite"), 30),
    **dict.fromkeys(("student_sought", "records_sought", "staff_sought"), 20),
    "default": 0,
}
PRIORITY_RANGE = range(0, 1001)

# Neutral words for each situation: the person across the counter may read them.
SITUATION_LABELS: dict[str, str] = {
    "exigency": "Emergency stated",
    "entry_without_consent": "Entry without consent",
    "warrant_person": "Court warrant naming a person",
    "parent_sought": "A parent or other adult is sought",
    "consent_claimed": "Consent claimed",
    **{f"doc:{doc.value}": f"Document: {DOC_LABELS[doc]}" for doc in DocType},
    "phone": "Request by phone",
    "email": "Request by email",
    "letter": "Request by letter",
    "offsite": "Our staff, reporting from elsewhere",
    "student_sought": "A student is sought",
    "records_sought": "Records or information requested",
    "staff_sought": "A staff member is sought",
    "default": "Request at the front office",
}

# The word is banned in every inflection: no desk line may suggest that the school
# must do what an agent asks. Matches comply, complies, complied, complying,
# compliance, compliant, noncompliance.
_COMPLY = re.compile(r"compl(?:y|ie[sd]|ying|ian(?:ce|t))", re.IGNORECASE)
COMPLY = _COMPLY  # the editor uses it to put the reason next to the line that has the word
# A sentence ends at . ! or ? (and any closing quote) before a space or the end.
_SENTENCE_END = re.compile(r"[.!?]+[\"'\u2019\u201d)]*(?=\s|$)")
_BLOCK_KEYS = frozenset({"step", "situation", "priority", "say", "do", "never"})
_DOC_VALUES = frozenset(doc.value for doc in DocType)
_ORDER = {situation: index for index, situation in enumerate(SITUATIONS)}
# Request kinds that name who or what is sought, and the situation each one opens.
_SOUGHT = (
    ("adult", "parent_sought"),
    ("student_access", "student_sought"),
    ("student_info", "records_sought"),
    ("staff", "staff_sought"),
)


@dataclass(frozen=True)
class Facts:
    """Hold what has been recorded so far that changes the script."""

    channel: str = "in_person"
    # A DocType value: the confirmed type if the district office confirmed one,
    # else the desk's first impression.
    document: str | None = None
    document_confirmed: bool = False
    exigency: bool = False
    entered_without_consent: bool = False
    consent_claimed: bool = False
    # The document says it names a person (an arrest warrant, say).
    document_names_person: bool = False
    request_kinds: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Block:
    """Hold the lines for one step (or any step) in one situation."""

    step: str
    situation: str
    say: str
    do: tuple[str, ...]
    never: tuple[str, ...]
    priority: int = 0

    @property
    def label(self) -> str:
        """Return the neutral name of the situation this block is for."""
        return SITUATION_LABELS[self.situation]


@dataclass(frozen=True)
class Panel:
    """What the "Now" panel shows: the most urgent block, and the others still true, folded."""

    top: Block
    earlier: tuple[Block, ...]


@dataclass(frozen=True)
class ScriptPack:
    """Hold a validated set of blocks and pick the ones that fit the facts."""

    label: str
    status: str
    notice: str
    blocks: Mapping[tuple[str, str], Block]

    @staticmethod
    def situations(facts: Facts) -> list[str]:
        """Return every situation the facts reach, most urgent first, ending in "default".

        The confirmed flag does not change the key: the district office's confirmation
        changes the document type itself, not how the desk speaks. A document value that
        is not a DocType reads as "doc:unsure", never as a warrant.
        """
        keys: list[str] = []
        document = None
        if facts.document is not None:
            document = facts.document if facts.document in _DOC_VALUES else DocType.UNSURE.value
        if facts.exigency:
            keys.append("exigency")
        if facts.entered_without_consent:
            keys.append("entry_without_consent")
        if document == DocType.JUDICIAL_WARRANT.value and facts.document_names_person:
            keys.append("warrant_person")
        if "adult" in facts.request_kinds:
            keys.append("parent_sought")
        if facts.consent_claimed:
            keys.append("consent_claimed")
        if document is not None:
            keys.append(f"doc:{document}")
        if facts.channel in CHANNELS and facts.channel != "in_person":
            keys.append(facts.channel)
        keys += [key for kind, key in _SOUGHT[1:] if kind in facts.request_kinds]
        keys.append("default")
        return keys

    def candidates(self, step: str, facts: Facts) -> list[Block]:
        """Return the blocks that fit this step and these facts, the one to show first."""
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}; expected one of {', '.join(STEPS)}")
        found = []
        for situation in self.situations(facts):
            block = self.blocks.get((step, situation)) or self.blocks.get((ANY_STEP, situation))
            if block is not None:
                found.append(block)
        # Highest priority first; between equals, the more urgent situation, then the
        # block written for this step over one written for any step.
        found.sort(key=lambda b: (-b.priority, _ORDER[b.situation], b.step == ANY_STEP))
        return found

    def panel(self, step: str, facts: Facts) -> Panel:
        """Return what the "Now" panel shows on this step."""
        found = self.candidates(step, facts)
        if not found:
            # load_pack() guarantees a default for every step; only a pack built by hand
            # can get here.
            raise LookupError(f"script pack has no default block for step {step!r}")
        top = found[0]
        earlier = tuple(b for b in found[1:] if b.situation not in ("default", top.situation))
        return Panel(top=top, earlier=earlier)

    def block(self, step: str, facts: Facts) -> Block:
        """Return the block the "Now" panel shows on this step."""
        return self.panel(step, facts).top

    def step_block(self, step: str, facts: Facts) -> Block:
        """Return the block written for the step itself: its channel's, else its default."""
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}; expected one of {', '.join(STEPS)}")
        channel = self.blocks.get((step, facts.channel))
        return channel or self.blocks[(step, "default")]

    def to_data(self) -> dict[str, Any]:
        """Return the pack as JSON-ready data that load_pack() accepts."""
        return {
            "label": self.label,
            "status": self.status,
            "notice": self.notice,
            "blocks": [
                {
                    "step": b.step,
                    "situation": b.situation,
                    "priority": b.priority,
                    "say": b.say,
                    "do": list(b.do),
                    "never": list(b.never),
                }
                for b in self.blocks.values()
            ],
        }


def sentence_count(text: str) -> int:
    """Return how many sentences text holds; a trailing fragment counts as one."""
    text = text.strip()
    if not text:
        return 0
    ends = list(_SENTENCE_END.finditer(text))
    trailing = not ends or ends[-1].end() < len(text)
    return len(ends) + (1 if trailing else 0)


def load_pack(data: Mapping[str, Any]) -> ScriptPack:
    """Validate pack data and build a ScriptPack; raise ValueError on any problem."""
    if not isinstance(data, Mapping):
        raise ValueError("script pack must be a JSON object")
    label = _text(data.get("label"), "label")
    notice = _text(data.get("notice"), "notice")
    status = data.get("status")
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    raw_blocks = data.get("blocks")
    if not isinstance(raw_blocks, list):
        raise ValueError("blocks must be a list")

    blocks: dict[tuple[str, str], Block] = {}
    for index, raw in enumerate(raw_blocks):
        block = _block(raw, f"block {index + 1}")
        key = (block.step, block.situation)
        if key in blocks:
            raise ValueError(f"block {index + 1}: a second block for {key[0]}/{key[1]}")
        blocks[key] = block

    missing = [step for step in STEPS if (step, "default") not in blocks]
    if missing:
        raise ValueError(f"no default block for step(s): {', '.join(missing)}")
    return ScriptPack(label=label, status=status, notice=notice, blocks=MappingProxyType(blocks))


def default_pack_data() -> dict[str, Any]:
    """Return a fresh copy of the built-in default pack's data."""
    source = resources.files(__package__ or __name__).joinpath("default_pack.json")
    return json.loads(source.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def default_pack() -> ScriptPack:
    """Return the built-in default pack, validated."""
    return load_pack(default_pack_data())


def _block(raw: object, where: str) -> Block:
    """Validate one block's data and build it."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: must be an object")
    # A misspelt key would silently drop lines counsel approved.
    unknown = sorted(set(raw) - _BLOCK_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
    step = raw.get("step")
    if step not in (*STEPS, ANY_STEP):
        raise ValueError(f"{where}: unknown step {step!r}")
    situation = raw.get("situation")
    if situation not in SITUATIONS:
        raise ValueError(f"{where}: unknown situation {situation!r}")
    where = f"{where} ({step}/{situation})"
    priority = raw.get("priority", DEFAULT_PRIORITY[situation])
    whole = isinstance(priority, int) and not isinstance(priority, bool)
    if not whole or priority not in PRIORITY_RANGE:
        raise ValueError(f"{where}: priority must be a whole number from 0 to 1000")
    if situation == "default" and step == ANY_STEP:
        raise ValueError(f"{where}: the default situation is written per step")

    say = _text(raw.get("say"), f"{where}: say")
    if sentence_count(say) > 2:
        raise ValueError(f"{where}: say must be at most two sentences: {say!r}")
    do = _lines(raw.get("do"), f"{where}: do")
    never = _lines(raw.get("never"), f"{where}: never")
    for line in (say, *do, *never):
        if _COMPLY.search(line):
            raise ValueError(f'{where}: the word "comply" is not allowed in any form: {line!r}')
    return Block(step=step, situation=situation, say=say, do=do, never=never, priority=priority)


def _text(value: object, what: str) -> str:
    """Return value as stripped text, or raise if it is not non-empty text."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be non-empty text")
    return value.strip()


def _lines(value: object, what: str) -> tuple[str, ...]:
    """Return a list of non-empty lines as a tuple, or raise."""
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a list of lines")
    return tuple(_text(line, f"{what} line {n + 1}") for n, line in enumerate(value))


# Facts that reach each situation, for previewing a pack without an encounter.
_SAMPLE: dict[str, dict[str, Any]] = {
    "exigency": {"exigency": True},
    "entry_without_consent": {"entered_without_consent": True},
    "warrant_person": {
        "document": DocType.JUDICIAL_WARRANT.value,
        "document_names_person": True,
    },
    "parent_sought": {"request_kinds": frozenset({"adult"})},
    "consent_claimed": {"consent_claimed": True},
    **{f"doc:{doc.value}": {"document": doc.value} for doc in DocType},
    **{channel: {"channel": channel} for channel in ("phone", "email", "letter", "offsite")},
    **{situation: {"request_kinds": frozenset({kind})} for kind, situation in _SOUGHT},
    "default": {},
}


def sample_facts(situation: str) -> Facts:
    """Return facts that reach the situation (and nothing more urgent), for a preview."""
    if situation not in SITUATIONS:
        raise ValueError(f"unknown situation {situation!r}")
    return Facts(**_SAMPLE[situation])
