"""The board report: counts per school for a period, de-identified, small counts suppressed.

A count from 1 to below the threshold is shown only as "fewer than N". Suppressing it alone
is not enough: the row and column totals would give it back (total minus the other cells).
So every row and column, totals included, that would hold exactly one suppressed cell has a
second one suppressed as well (complementary suppression), the smallest count in that line,
until no line holds exactly one. No total then leaves a single unknown to solve for.

Nor may the totals pin a small count down some other way: two counts shown as "fewer than 5"
beside a total that leaves 2 for them are both 1. So the ranges a reader can work out for
every hidden count are narrowed through every row and column as a reader would, and while
any small count is left with a single possible value, one more count in its line is hidden.
The counts hidden to protect a small one are shown as "not shown", not "fewer than 5",
which would not be true of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk.models import Encounter, School
from kiosk.review.log import Filters
from kiosk.review.stats import DOCUMENTS, NOT_RECORDED, scoped
from kiosk.vocabulary import OUTCOMES

Position = tuple[int, int]
Range = tuple[int, float]  # the lowest and highest a hidden count can be
UNBOUNDED = float("inf")


@dataclass(frozen=True)
class Cell:
    value: int
    hidden: bool
    small: bool  # from 1 to below the threshold: shown as "fewer than N" when hidden


@dataclass(frozen=True)
class Table:
    """A counts table with its totals: rows are schools, the last column and row are totals."""

    columns: list[str]
    rows: list[tuple[str, list[Cell]]]  # each row's cells end with the row's total
    totals: list[Cell]  # the column totals, ending with the grand total


def complete(inner: list[list[int]]) -> list[list[int]]:
    """The table with its row totals appended to each row and a row of column totals below."""
    width = len(inner[0]) if inner else 0
    full = [[*row, sum(row)] for row in inner]
    full.append([sum(row[j] for row in full) for j in range(width + 1)])
    return full


def lines(full: list[list[int]]) -> list[list[Position]]:
    """Every row and every column of the completed table, totals included: each is one sum
    (its last entry is the total of the others) a reader could solve."""
    height, width = len(full), len(full[0])
    rows = [[(i, j) for j in range(width)] for i in range(height)]
    columns = [[(i, j) for i in range(height)] for j in range(width)]
    return rows + columns


def bounds(full: list[list[int]], hidden: set[Position], below: int) -> dict[Position, Range]:
    """What a reader of the report can work out about each hidden entry: a count shown as
    "fewer than N" is from 1 to N-1, one merely not shown is N or more (only non-zero counts
    are hidden); every row and column then narrows these ranges through its total, over and
    over until nothing changes."""
    height, width = len(full), len(full[0])
    known: dict[Position, Range] = {}
    for i, j in hidden:
        small = 0 < full[i][j] < below
        known[(i, j)] = (1, below - 1) if small else (below, UNBOUNDED)
    for i in range(height):
        for j in range(width):
            if (i, j) not in hidden:
                known[(i, j)] = (full[i][j], full[i][j])
    changed = True
    while changed:
        changed = False
        for line in lines(full):
            *parts, total = line
            for position in line:
                if position not in hidden:
                    continue
                low, high = known[position]
                others = [known[p] for p in parts if p != position]
                others_low = sum(r[0] for r in others)
                others_high = sum(r[1] for r in others)
                if position == total:
                    new = (max(low, others_low), min(high, others_high))
                else:
                    new = (
                        max(low, known[total][0] - others_high),
                        min(high, known[total][1] - others_low),
                    )
                if new != (low, high):
                    known[position] = (int(new[0]), new[1])
                    changed = True
    return {p: known[p] for p in hidden}


def pinned(full: list[list[int]], hidden: set[Position], below: int) -> list[Position]:
    """Hidden small counts a reader could still work out exactly. ("Fewer than 2" already
    says 1: with that threshold there is nothing to protect beyond the label.)"""
    if below <= 2:
        return []
    return sorted(
        p
        for p, (low, high) in bounds(full, hidden, below).items()
        if low == high and 0 < full[p[0]][p[1]] < below
    )


def suppressed(full: list[list[int]], below: int) -> set[Position]:
    """Which entries of the completed table to hide: the small ones, then the fewest others
    needed so that no row or column holds exactly one hidden entry and no small count can be
    worked out exactly from the totals (two hidden 1s beside a total, say)."""
    height, width = len(full), len(full[0])
    hidden = {(i, j) for i in range(height) for j in range(width) if 0 < full[i][j] < below}

    def preference(position: Position) -> tuple[int, int, Position]:
        i, j = position
        value = full[i][j]
        total = i == height - 1 or j == width - 1
        # An inner cell before a total (the totals are what the report is for), then the
        # smallest, so the least is hidden.
        return (total, value, position)

    def hide_one_more(line: list[Position]) -> bool:
        # Only a non-zero count: a hidden zero could not be told apart from a small count.
        others = [p for p in line if p not in hidden and full[p[0]][p[1]] > 0]
        if others:
            hidden.add(min(others, key=preference))
        return bool(others)

    while True:
        changed = True
        while changed:
            changed = False
            for line in lines(full):
                if sum(p in hidden for p in line) == 1:
                    changed = hide_one_more(line) or changed
        exposed = pinned(full, hidden, below)
        if not exposed:
            return hidden
        i, j = exposed[0]
        own = [line for line in lines(full) if (i, j) in line]
        if not any(hide_one_more(line) for line in own) and not hide_one_more(
            [p for line in lines(full) for p in line]
        ):
            # Every non-zero count is hidden already: nothing more can be done.
            return hidden


def table(row_labels: list[str], columns: list[str], inner: list[list[int]], below: int) -> Table:
    """Complete the counts with totals and suppress what must be; columns that are zero for
    every school are left out (they carry nothing and would crowd the printed page)."""
    keep = [j for j in range(len(columns)) if any(row[j] for row in inner)]
    inner = [[row[j] for j in keep] for row in inner]
    columns = [columns[j] for j in keep]
    if not columns:
        inner = [[] for _ in inner]
    full = complete(inner) if inner else [[0]]
    hidden = suppressed(full, below)
    cells = [
        [Cell(value, (i, j) in hidden, 0 < value < below) for j, value in enumerate(row)]
        for i, row in enumerate(full)
    ]
    return Table(
        columns=columns,
        rows=list(zip(row_labels, cells[:-1], strict=True)),
        totals=cells[-1],
    )


def crossed(
    db: Session,
    school_ids: set[int] | None,
    filters: Filters,
    column: Any,
    choices: tuple[tuple[str, str], ...],
    below: int,
) -> Table:
    """Encounters per readable school and per value of the column, suppressed."""
    schools_query = select(School.id, School.name).order_by(School.name)
    if school_ids is not None:
        schools_query = schools_query.where(School.id.in_(school_ids or {-1}))
    schools = list(db.execute(schools_query))
    counted = db.execute(
        scoped(
            select(Encounter.school_id, column, func.count(Encounter.id)),
            school_ids,
            filters,
        ).group_by(Encounter.school_id, column)
    )
    keys = [key for key, _ in choices]
    labels = [label for _, label in choices]
    found: dict[tuple[int, str], int] = {}
    for school_id, key, n in counted:
        key = key or ""
        if key not in keys and key:
            keys.append(key)
            labels.append(key.replace("_", " ").capitalize())
        found[(school_id, key)] = found.get((school_id, key), 0) + int(n)
    keys.append("")
    labels.append(NOT_RECORDED)
    inner = [[found.get((school_id, key), 0) for key in keys] for school_id, _ in schools]
    return table([name for _, name in schools], labels, inner, below)


def by_outcome(db: Session, school_ids: set[int] | None, filters: Filters, below: int) -> Table:
    return crossed(db, school_ids, filters, Encounter.outcome, tuple(OUTCOMES), below)


def by_document(db: Session, school_ids: set[int] | None, filters: Filters, below: int) -> Table:
    """By document type as confirmed by the district office, else as the desk first took it
    (the same choice the log's document filter makes)."""
    document = func.coalesce(Encounter.doc_confirmed_type, Encounter.doc_first_impression)
    return crossed(db, school_ids, filters, document, DOCUMENTS, below)
