"""Searching encounters by the words of their agents' names, agencies and stated purpose.

Agent names and the purpose are sealed at rest, so a full-text index of them (SQLite FTS5,
a PostgreSQL tsvector) would hold in plain text exactly what sealing protects. Instead each
word is stored only as a keyed digest, like the blind index of the people named: one
digest of the whole word and one of each of its beginnings, keyed with INDEX_KEY. A search
computes the same digests from what the reviewer typed. The table and the query are the
same on SQLite and PostgreSQL, and the digests are rewritten in the transaction that
changes the words.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, exists, func, insert, select
from sqlalchemy.orm import Session

from kiosk.models import Agent, Encounter, SearchTerm
from kiosk.vocabulary import AGENCIES

WORD = re.compile(r"\w+")
# Beginnings shorter than this match too much to be useful; longer words are cut here.
SHORTEST_PREFIX = 2
LONGEST_WORD = 40
# The most words one search takes (the form says so): each is one more condition.
MOST_WORDS = 8
AGENCY_LABELS = dict(AGENCIES)
# The columns whose words are searchable; a change to any of them rewrites the digests.
AGENT_COLUMNS = frozenset({"name", "agency_printed", "agency_pick"})
ENCOUNTER_COLUMNS = frozenset({"purpose"})


def words(text: str | None) -> list[str]:
    """The words of a text, folded for matching (Unicode NFKC, case-folded)."""
    if not text:
        return []
    folded = unicodedata.normalize("NFKC", text).casefold()
    return [word[:LONGEST_WORD] for word in WORD.findall(folded)]


def _digest(index_key: str, kind: str, word: str) -> str:
    message = f"search\x1f{kind}\x1f{word}".encode()
    return hmac.new(index_key.encode(), message, hashlib.sha256).hexdigest()[:32]


def digests_of(index_key: str, texts: list[str | None]) -> set[str]:
    """Every digest stored for these texts: each whole word, and each of its beginnings."""
    found: set[str] = set()
    for word in {w for text in texts for w in words(text)}:
        found.add(_digest(index_key, "word", word))
        for end in range(SHORTEST_PREFIX, len(word) + 1):
            found.add(_digest(index_key, "start", word[:end]))
    return found


@dataclass(frozen=True)
class Query:
    """What a reviewer typed, as digests: every one must match (words are ANDed).

    ``selective`` is a digest that few encounters have (see ``planned``): its encounters are
    listed first and the others checked against them. Without one, the log is read newest
    first and each encounter checked for every digest, which finds a page quickly when the
    words are common."""

    digests: tuple[str, ...]
    selective: str | None = None


def parse(index_key: str, typed: str) -> Query:
    """A word matches that whole word; a word ending in * matches words that start with it
    (at least two letters before the *)."""
    digests: list[str] = []
    for raw in typed.split():
        found = words(raw)
        for position, word in enumerate(found):
            last = position == len(found) - 1
            if last and raw.endswith("*") and len(word) >= SHORTEST_PREFIX:
                digests.append(_digest(index_key, "start", word))
            else:
                digests.append(_digest(index_key, "word", word))
    return Query(tuple(dict.fromkeys(digests))[:MOST_WORDS])


def texts_of(session: Session, encounter: Encounter) -> list[str | None]:
    """The searchable texts of an encounter, read from its loaded (plain) rows."""
    agents = session.scalars(select(Agent).where(Agent.encounter_id == encounter.id)).all()
    texts: list[str | None] = [encounter.purpose]
    for agent in agents:
        texts += [agent.name, agent.agency_printed]
        if agent.agency_pick:
            texts.append(AGENCY_LABELS.get(agent.agency_pick, agent.agency_pick))
    return texts


def reindex(session: Session, encounter: Encounter, index_key: str) -> int:
    """Rewrite the encounter's digests from its current words, in the caller's transaction;
    return how many it now has."""
    session.flush()
    found = digests_of(index_key, texts_of(session, encounter))
    session.execute(delete(SearchTerm).where(SearchTerm.encounter_id == encounter.id))
    if found:
        session.execute(
            insert(SearchTerm),
            [{"encounter_id": encounter.id, "digest": digest} for digest in sorted(found)],
        )
    return len(found)


# A digest with fewer encounters than this is listed first; sorting that many by time is
# quick, and a word found more often fills a page quickly when read newest first.
SELECTIVE_BELOW = 5000


def planned(session: Session, query: Query) -> Query:
    """Choose the digest to list first: the rarest, if it is rare enough. Each count stops
    at SELECTIVE_BELOW rows of the index, so this costs little whatever the words."""
    rarest, fewest = None, SELECTIVE_BELOW
    for digest in query.digests:
        rows = select(SearchTerm.id).where(SearchTerm.digest == digest).limit(SELECTIVE_BELOW)
        count = session.scalar(select(func.count()).select_from(rows.subquery())) or 0
        if count < fewest:
            rarest, fewest = digest, count
    return replace(query, selective=rarest)


def matching(query: Query) -> list[Any]:
    """Conditions on Encounter for a search: the selective digest as a list of encounters,
    every other one as a check on each encounter read."""
    conditions: list[Any] = []
    if query.selective is not None:
        conditions.append(
            Encounter.id.in_(
                select(SearchTerm.encounter_id).where(SearchTerm.digest == query.selective)
            )
        )
    for digest in query.digests:
        if digest != query.selective:
            conditions.append(
                exists().where(SearchTerm.digest == digest, SearchTerm.encounter_id == Encounter.id)
            )
    return conditions
