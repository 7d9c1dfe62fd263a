"""Words that suggest immigration status was written down: warned about, never blocked."""

from __future__ import annotations

import re

STATUS_WORDS = (
    "immigration status",
    "undocumented",
    "illegal",
    "illegals",
    "alien",
    "citizen",
    "citizenship",
    "visa",
    "green card",
    "passport",
    "social security",
    "ssn",
    "country of birth",
    "born in",
    "deport",
    "deportation",
    "deported",
    "asylum",
    "refugee",
    "daca",
    "tps",
    "overstay",
    "work permit",
)

_PATTERN = re.compile(r"\b(" + "|".join(re.escape(w) for w in STATUS_WORDS) + r")\b", re.I)

WARNING = (
    "Record only what the agent said and did. Do not write down anyone's immigration "
    "status, citizenship, visa or similar details."
)


def status_words(text: str | None) -> list[str]:
    """Return the status-related words found in text (lower case, each once)."""
    if not text:
        return []
    return list(dict.fromkeys(match.lower() for match in _PATTERN.findall(text)))
