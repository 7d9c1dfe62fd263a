"""Script packs: what the desk says, does and never does at each step.

A pack is data (counsel approves it, admins version it). Each block is keyed by a
step and a situation; the desk shows the most specific block the facts reach.
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

from .documents import DocType

STEPS = ("start", "staff", "agents", "request", "document", "exigency", "outcome", "close")

CHANNELS = ("in_person", "phone", "email", "letter")

STATUSES = ("draft", "approved")

# Every key a block may be written for; "in_person" has no key of its own.
SITUATIONS: tuple[str, ...] = (
    "default",
    "phone",
    "email",
    "letter",
    *(f"doc:{doc.value}" for doc in DocType),
    "exigency",
    "entry_without_consent",
    "consent_claimed",
)

# The word is banned in every inflection: no desk line may suggest that the school
# must do what an agent asks. Matches comply, complies, complied, complying,
# compliance, compliant, noncompliance.
_COMPLY = re.compile(r"compl(?:y|ie[sd]|ying|ian(?:ce|t))", re.IGNORECASE)
# A sentence ends at . ! or ? (and any closing quote) before a space or the end.
_SENTENCE_END = re.compile(r"[.!?]+[\"'\u2019\u201d)]*(?=\s|$)")
_BLOCK_KEYS = frozenset({"step", "situation", "say", "do", "never"})
_DOC_VALUES = frozenset(doc.value for doc in DocType)


@dataclass(frozen=True)
class Facts:
    """Hold what the desk has recorded so far that changes the script."""

    channel: str = "in_person"
    # A DocType value: the confirmed type if the district office confirmed one,
    # else the desk's first impression.
    document: str | None = None
    document_confirmed: bool = False
    exigency: bool = False
    entered_without_consent: bool = False
    consent_claimed: bool = False


@dataclass(frozen=True)
class Block:
    """Hold the lines for one step in one situation."""

    step: str
    situation: str
    say: str
    do: tuple[str, ...]
    never: tuple[str, ...]


@dataclass(frozen=True)
class ScriptPack:
    """Hold a validated set of blocks and pick the one that fits the facts."""

    label: str
    status: str
    notice: str
    blocks: Mapping[tuple[str, str], Block]

    def situations(self, step: str, facts: Facts) -> list[str]:
        """Return the situation keys that fit, most specific first, ending in "default".

        Precedence, highest first:
        1. "entry_without_consent", on every step once it is recorded: from then on
           the record of what was done matters more than anything else on screen.
        2. "exigency", on every step once an emergency is declared.
        3. Step-specific keys: "doc:<type>" on the document step (a value that is not
           a DocType reads as "doc:unsure"); "consent_claimed" on the request step.
        4. The channel: "phone", "email" or "letter" ("in_person" has none).
        5. "default".
        The confirmed flag does not change the key: the district office's
        confirmation changes the document type itself, not how the desk speaks.
        """
        if step not in STEPS:
            raise ValueError(f"unknown step {step!r}; expected one of {', '.join(STEPS)}")
        keys: list[str] = []
        if facts.entered_without_consent:
            keys.append("entry_without_consent")
        if facts.exigency:
            keys.append("exigency")
        if step == "document" and facts.document is not None:
            # An unreadable impression must never reach a warrant's script.
            known = facts.document in _DOC_VALUES
            keys.append(f"doc:{facts.document if known else DocType.UNSURE.value}")
        if step == "request" and facts.consent_claimed:
            keys.append("consent_claimed")
        if facts.channel in CHANNELS and facts.channel != "in_person":
            keys.append(facts.channel)
        keys.append("default")
        return keys

    def block(self, step: str, facts: Facts) -> Block:
        """Return the block of the most specific situation that has one."""
        for situation in self.situations(step, facts):
            found = self.blocks.get((step, situation))
            if found is not None:
                return found
        # load_pack() guarantees a default for every step; only a pack built by hand
        # can get here.
        raise LookupError(f"script pack has no default block for step {step!r}")

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
    if step not in STEPS:
        raise ValueError(f"{where}: unknown step {step!r}")
    situation = raw.get("situation")
    if situation not in SITUATIONS:
        raise ValueError(f"{where}: unknown situation {situation!r}")
    where = f"{where} ({step}/{situation})"

    say = _text(raw.get("say"), f"{where}: say")
    if sentence_count(say) > 2:
        raise ValueError(f"{where}: say must be at most two sentences: {say!r}")
    do = _lines(raw.get("do"), f"{where}: do")
    never = _lines(raw.get("never"), f"{where}: never")
    for line in (say, *do, *never):
        if _COMPLY.search(line):
            raise ValueError(f'{where}: the word "comply" is not allowed in any form: {line!r}')
    return Block(step=step, situation=situation, say=say, do=do, never=never)


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
