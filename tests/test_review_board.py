"""The board report: counts per school for a period, de-identified, with small counts
suppressed so that no row or column total gives one back."""

from __future__ import annotations

import html
import random
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kiosk import create_app
from kiosk.clock import now_utc
from kiosk.config import ConfigError
from kiosk.db import writing
from kiosk.models import Encounter, NamedPerson
from kiosk.review.board import complete, lines, suppressed, table
from kiosk.webdb import database
from tests.conftest import deliver, settings, tap_start, the_encounter
from tests.test_policy import LINCOLN, RIVERSIDE, form_token, login
from tests.test_review_log import DANA, JORDAN, reviewer
from tests.test_review_stats import add

ROW = re.compile(r'<tr><th scope="row">([^<]*)</th>(.*?)</tr>')
CELL = re.compile(r'<td class="number( suppressed)?">([^<]*)</td>')
Grid = list[list[int | None]]


def recovered(grid: Grid) -> Grid:
    """What a reader can work out from a table with totals: repeatedly, any row or column
    with one unknown entry gives it back (total minus the others, or the others' sum)."""
    grid = [row[:] for row in grid]
    solved = True
    while solved:
        solved = False
        for line in lines([[0] * len(grid[0]) for _ in grid]):
            unknown = [(i, j) for i, j in line if grid[i][j] is None]
            if len(unknown) != 1:
                continue
            *parts, total_at = line
            known = sum(grid[i][j] or 0 for i, j in parts)
            i, j = unknown[0]
            if (i, j) == total_at:
                grid[i][j] = known
            else:
                ti, tj = total_at
                grid[i][j] = (grid[ti][tj] or 0) - known
            solved = True
    return grid


def readings(full: list[list[int]], hidden: set[tuple[int, int]], below: int) -> list[set[int]]:
    """Every value each hidden small count could hold, given what the report shows: the
    visible counts, "fewer than N" (1 to N-1) and "not shown" (N or more; tried up to well
    past the real grand total, which may be hidden itself), with every row and column adding
    up. Found by trying them all."""
    grand = 2 * full[-1][-1] + below
    order = sorted(hidden)
    small = [0 < full[i][j] < below for i, j in order]
    ranges = [range(1, below) if s else range(below, grand + 1) for s in small]
    grid: Grid = shown(full, hidden)
    found: list[set[int]] = [set() for _ in order]
    every_line = lines(full)

    def consistent() -> bool:
        for line in every_line:
            values = [grid[i][j] for i, j in line]
            if None in values:
                continue
            if sum(values[:-1]) != values[-1]:  # type: ignore[arg-type]
                return False
        return True

    def walk(k: int) -> None:
        if k == len(order):
            for n, (i, j) in enumerate(order):
                found[n].add(grid[i][j])  # type: ignore[arg-type]
            return
        i, j = order[k]
        for value in ranges[k]:
            grid[i][j] = value
            if consistent():
                walk(k + 1)
        grid[i][j] = None

    walk(0)
    return [values for values, s in zip(found, small, strict=True) if s]


def shown(full: list[list[int]], hidden: set[tuple[int, int]]) -> Grid:
    return [
        [None if (i, j) in hidden else v for j, v in enumerate(row)] for i, row in enumerate(full)
    ]


def test_a_small_count_is_hidden_with_partners_so_no_total_gives_it_back() -> None:
    t = table([LINCOLN, RIVERSIDE], ["They left", "They are waiting"], [[3, 7], [6, 8]], 5)
    # The 3 is small; its row and column each need a second hidden count, and so on.
    assert [[c.hidden for c in cells] for _, cells in t.rows] == [
        [True, True, False],
        [True, True, False],
    ]
    assert [(c.value, c.hidden) for c in t.totals] == [(9, False), (15, False), (24, False)]
    grid = [[None if c.hidden else c.value for c in cells] for _, cells in t.rows]
    grid.append([None if c.hidden else c.value for c in t.totals])
    assert recovered(grid) == grid


def test_two_small_counts_beside_a_total_that_leaves_2_are_not_both_given_away() -> None:
    # Two 1s beside a 7 in a row totalling 9: hiding only the 1s would leave 9 - 7 = 2, so
    # both could only be 1. The 7 is hidden too, and then the totals pin nothing down.
    t = table(["A", "B"], ["x", "y", "z"], [[1, 1, 7], [6, 6, 9]], 5)
    a = next(cells for name, cells in t.rows if name == "A")
    assert [c.hidden for c in a] == [True, True, True, False]
    assert [c.small for c in a] == [True, True, False, False]
    full = complete([[1, 1, 7], [6, 6, 9]])
    hidden = {
        (i, j) for i, (_, cells) in enumerate(t.rows) for j, c in enumerate(cells) if c.hidden
    }
    hidden |= {(2, j) for j, c in enumerate(t.totals) if c.hidden}
    assert all(len(values) > 1 for values in readings(full, hidden, 5))


def test_small_totals_are_hidden_too_and_zero_columns_are_left_out() -> None:
    t = table(["A", "B"], ["x", "y", "z"], [[2, 0, 0], [9, 0, 6]], 5)
    assert t.columns == ["x", "z"]
    a, b = (cells for _, cells in t.rows)
    assert a[0].hidden and a[-1].hidden  # 2, and A's total of 2
    assert b[0].hidden  # 9: hidden so the column "x" does not give back the 2
    grid = [[None if c.hidden else c.value for c in cells] for cells in (a, b, t.totals)]
    assert recovered(grid) == grid


def test_no_suppressed_count_can_be_recovered_from_any_row_or_column() -> None:
    rng = random.Random(20261201)
    for _ in range(400):
        height, width = rng.randint(1, 6), rng.randint(1, 7)
        inner = [
            [rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 9, 14, 30]) for _ in range(width)]
            for _ in range(height)
        ]
        below = rng.choice([2, 5, 10])
        full = complete(inner)
        hidden = suppressed(full, below)
        # Every small count is hidden, and nothing is hidden for no reason when none is small.
        small = {(i, j) for i, row in enumerate(full) for j, v in enumerate(row) if 0 < v < below}
        assert small <= hidden
        if not small:
            assert hidden == set()
        # No row or column holds exactly one hidden entry, so none can be solved for.
        assert all(sum(p in hidden for p in line) != 1 for line in lines(full))
        grid = shown(full, hidden)
        assert recovered(grid) == grid


def test_no_small_count_has_a_single_possible_value_on_small_tables() -> None:
    rng = random.Random(7)
    for _ in range(60):
        inner = [[rng.choice([0, 1, 2, 3, 5, 6, 8]) for _ in range(2)] for _ in range(2)]
        full = complete(inner)
        hidden = suppressed(full, 5)
        assert all(len(values) > 1 for values in readings(full, hidden, 5)), inner


def board_tables(page: str, table_id: str) -> dict[str, list[int | None]]:
    """A board table as {school: [counts..., total]}, None where a count is suppressed."""
    start = page.index(f'id="{table_id}"')
    body = page[start : page.index("</table>", start)]
    result = {}
    for name, cells in ROW.findall(body):
        values = CELL.findall(cells)
        result[html.unescape(name)] = [None if hidden else int(v) for hidden, v in values]
    return result


def resolve_at_the_desk(app: Flask, kiosk_client: FlaskClient, outcome: str) -> str:
    """Start an encounter at Lincoln's kiosk and have its designee resolve it."""
    assert tap_start(kiosk_client).status_code == 302
    deliver(app)
    public_id = the_encounter(app).public_id
    dana = login(app, DANA, "demo-password")
    response = dana.post(
        f"/office/encounters/{public_id}/resolve",
        data={"csrf_token": form_token(app, dana), "outcome": outcome, "notes": ""},
    )
    assert response.status_code == 302
    return public_id


def seed_period(app: Flask, kiosk_client: FlaskClient) -> str:
    """Lincoln: 3 left (one through the real desk and office), 7 waiting.
    Riverside: 6 left, 8 waiting. One more at Lincoln falls outside the period."""
    resolve_at_the_desk(app, kiosk_client, "left")
    earlier = now_utc() - timedelta(hours=1)
    for school, outcome, n in (
        (LINCOLN, "left", 2),
        (LINCOLN, "waited", 7),
        (RIVERSIDE, "left", 6),
        (RIVERSIDE, "waited", 8),
    ):
        for k in range(n):
            document = "administrative_warrant" if k % 2 else "none"
            add(app, school, started_at=earlier, outcome=outcome, doc_first_impression=document)
    add(app, started_at=now_utc() - timedelta(days=40), outcome="left")
    today = now_utc().date()
    return f"from={today - timedelta(days=1)}&to={today}"


def test_the_board_report_counts_each_school_and_suppresses_small_counts(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    period = seed_period(app, kiosk_client)
    # Names and free text recorded in an encounter never reach the report.
    with writing(), database(app).session_factory() as session, session.begin():
        first = session.query(Encounter).order_by(Encounter.id).first()
        assert first is not None
        first.purpose = "Asked about Ada Quill"
        session.add(
            NamedPerson(encounter_id=first.id, position=1, name="Ada Quill", name_index="x" * 64)
        )
    page = reviewer(app).get(f"/review/board?{period}").get_data(as_text=True)
    outcomes = board_tables(page, "board-outcomes")
    # Columns: They are waiting, They left (the order the vocabulary lists them), total.
    assert outcomes == {
        LINCOLN: [None, None, 10],
        RIVERSIDE: [None, None, 14],
        "All schools": [15, 9, 24],
    }
    assert "fewer than 5" in page
    assert "Ada Quill" not in page and "Asked about" not in page
    grid = [row for row in outcomes.values()]
    assert recovered(grid) == grid
    documents = board_tables(page, "board-documents")
    assert documents["All schools"][-1] == 24
    grid = [row for row in documents.values()]
    assert recovered(grid) == grid
    assert "style=" not in page


def test_the_threshold_follows_the_setting(make_app: Any, district: dict[str, Any]) -> None:
    app = make_app(BOARD_SUPPRESS_BELOW=3)
    start = now_utc() - timedelta(hours=1)
    for outcome, n in (("left", 3), ("waited", 2), ("designee_took_over", 4)):
        for _ in range(n):
            add(app, LINCOLN, started_at=start, outcome=outcome)
    today = now_utc().date()
    page = reviewer(app).get(f"/review/board?from={today}&to={today}").get_data(as_text=True)
    outcomes = board_tables(page, "board-outcomes")
    # The 2 is hidden, and with it the 3 (the smallest other count in its row).
    assert outcomes[LINCOLN] == [None, None, 4, 9]
    assert "fewer than 3" in page


def test_a_threshold_below_1_is_refused_at_start(database_url: str, tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="KIOSK_BOARD_SUPPRESS_BELOW"):
        create_app(settings(database_url, str(tmp_path), BOARD_SUPPRESS_BELOW=0))


def test_the_period_is_required_and_a_wrong_one_is_named_next_to_its_field(
    app: Flask, district: dict[str, Any]
) -> None:
    client = reviewer(app)
    page = client.get("/review/board").get_data(as_text=True)
    assert 'class="error"' not in page and "board-outcomes" not in page
    page = client.get("/review/board?from=2026-11-05&to=").get_data(as_text=True)
    assert 'id="to-error">Enter the last day of the period.' in page
    assert 'value="2026-11-05"' in page
    assert 'id="board-outcomes"' not in page
    page = client.get("/review/board?from=2026-11-05&to=2026-11-01").get_data(as_text=True)
    assert 'id="to-error">This date is before the first date.' in page
    page = client.get("/review/board?from=soon&to=2026-11-01").get_data(as_text=True)
    assert 'id="from-error"' in page and 'value="soon"' in page


def test_a_designee_reports_only_their_own_school(app: Flask, kiosk_client: FlaskClient) -> None:
    period = seed_period(app, kiosk_client)
    page = login(app, JORDAN, "demo-password").get(f"/review/board?{period}").get_data(as_text=True)
    outcomes = board_tables(page, "board-outcomes")
    assert outcomes == {RIVERSIDE: [8, 6, 14], "All schools": [8, 6, 14]}
    assert LINCOLN not in page
