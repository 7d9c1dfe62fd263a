"""Searching the review log: words of agents' names, agencies and purpose by keyed digest,
and people named by blind index, both posted so no name reaches an address."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select

from kiosk.clock import now_utc
from kiosk.db import writing
from kiosk.models import AuditEntry, Encounter, SearchTerm
from kiosk.protocol import capture, search
from kiosk.protocol.events import Actor
from kiosk.webdb import database
from tests.conftest import csrf_token, tap_start, the_encounter
from tests.test_desk_flow import walk_all_steps
from tests.test_policy import user_of
from tests.test_races import TRIALS, together
from tests.test_review_log import BASE, ROW, add, reviewer

NAME = "Maria Example"


def found(client: FlaskClient, **fields: str) -> list[str]:
    """Post a search from the log page and return the public ids listed."""
    data = {"csrf_token": csrf_token(client, "/review/"), **fields}
    response = client.post("/review/search", data=data)
    assert response.status_code == 200, response.get_data(as_text=True)
    return ROW.findall(response.get_data(as_text=True))


def recorded(app: Flask, kiosk_client: FlaskClient) -> str:
    """An encounter as the desk records it: agent R. Alvarez of Homeland Security
    Investigations (HSI), purpose "Said it is a welfare check.", Maria Example named."""
    assert tap_start(kiosk_client).status_code == 302
    walk_all_steps(kiosk_client)
    return the_encounter(app).public_id


def test_a_whole_word_or_the_start_of_one_finds_the_encounter(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    public_id = recorded(app, kiosk_client)
    other = add(app, started_at=BASE)
    client = reviewer(app)
    assert found(client, words="welfare") == [public_id]
    assert found(client, words="WELFARE check") == [public_id]
    assert found(client, words="welf*") == [public_id]
    assert found(client, words="homeland investigations") == [public_id]
    assert found(client, words="alvarez") == [public_id]
    assert found(client, words="hsi") == [public_id]
    # A part of a word is not the word, and every word must be there.
    assert found(client, words="welf") == []
    assert found(client, words="welfare subpoena") == []
    assert found(client, words="") == [public_id, other]


def test_a_person_named_is_found_by_the_full_name_however_it_is_typed(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    public_id = recorded(app, kiosk_client)
    add(app, started_at=BASE)
    client = reviewer(app)
    assert found(client, name="  maria   EXAMPLE ") == [public_id]
    assert found(client, name="Maria") == []
    assert found(client, name="Someone Else") == []
    # Each name search is recorded: who searched, never the name.
    with database(app).session_factory() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "review.name_search")
        ).all()
    assert len(entries) == 3
    assert all("maria" not in f"{e.subject} {e.details}".lower() for e in entries)
    assert {e.actor for e in entries} == {
        f"user:{user_of(app, 'reviewer@district.test').public_id}"
    }


def test_a_name_search_never_reaches_an_address(app: Flask, kiosk_client: FlaskClient) -> None:
    recorded(app, kiosk_client)
    client = reviewer(app)
    # The search is a POST: the same search in an address is refused, not run.
    assert client.get("/review/search?name=Maria+Example").status_code == 405
    response = client.post(
        "/review/search",
        data={"csrf_token": csrf_token(client, "/review/"), "name": NAME, "words": "welfare"},
    )
    assert response.status_code == 200
    assert response.request.path == "/review/search"
    assert response.request.query_string == b""
    page = response.get_data(as_text=True)
    addresses = re.findall(r'(?:href|action)="([^"]*)"', page)
    assert addresses
    assert not [a for a in addresses if "maria" in a.lower() or "welfare" in a.lower()]


def test_a_search_without_a_valid_form_token_is_refused(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    recorded(app, kiosk_client)
    client = reviewer(app)
    client.get("/review/")
    response = client.post("/review/search", data={"name": NAME})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="review-log"' not in page
    assert NAME not in page


def test_a_search_keeps_the_filters_and_what_was_typed(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    public_id = recorded(app, kiosk_client)
    client = reviewer(app)
    assert found(client, words="welfare", state="open") == [public_id]
    assert found(client, words="welfare", state="ended") == []
    response = client.post(
        "/review/search",
        data={
            "csrf_token": csrf_token(client, "/review/"),
            "words": "welfare",
            "state": "ended",
            "date_from": "2026-13-40",
        },
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'value="welfare"' in page
    assert "Not a valid date value." in page
    response = client.post(
        "/review/search",
        data={"csrf_token": csrf_token(client, "/review/"), "words": "a b c d e f g h i"},
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="words-error"' in page and "at most 8 words" in page
    assert 'value="a b c d e f g h i"' in page


def test_search_results_are_paged_by_post(app: Flask, kiosk_client: FlaskClient) -> None:
    key = app.config["INDEX_KEY"]
    added = [add(app, started_at=BASE + timedelta(minutes=n)) for n in range(52)]
    with writing(), database(app).session_factory() as session, session.begin():
        for public_id in added:
            encounter = session.scalar(select(Encounter).where(Encounter.public_id == public_id))
            assert encounter is not None
            encounter.purpose = "Asked about the bus schedule."
            search.reindex(session, encounter, key)
    add(app, started_at=BASE + timedelta(hours=5))
    client = reviewer(app)
    token = csrf_token(client, "/review/")
    first = client.post("/review/search", data={"csrf_token": token, "words": "bus"})
    page = first.get_data(as_text=True)
    assert len(ROW.findall(page)) == 50
    cursor = re.search(r'name="after" value="([^"]+)"', page)
    assert cursor is not None
    second = client.post(
        "/review/search", data={"csrf_token": token, "words": "bus", "after": cursor.group(1)}
    )
    rest = ROW.findall(second.get_data(as_text=True))
    assert len(rest) == 2
    assert not set(rest) & set(ROW.findall(page))


def count_terms(app: Flask, encounter_id: int) -> int:
    with database(app).session_factory() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(SearchTerm)
                .where(SearchTerm.encounter_id == encounter_id)
            )
            or 0
        )


def test_the_index_follows_the_write_and_a_rolled_back_write_leaves_none(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    assert tap_start(kiosk_client).status_code == 302
    encounter_id = the_encounter(app).id
    key = app.config["INDEX_KEY"]
    with writing():
        session = database(app).session_factory()
    try:
        encounter = session.get(Encounter, encounter_id)
        assert encounter is not None
        values = capture.AgentInput(name="Pat Quill", agency_printed="Federal Bureau")
        capture.save_agent(session, encounter, Actor.system(), now_utc(), values, index_key=key)
        session.flush()
        assert session.scalar(select(func.count()).select_from(SearchTerm)) > 0
        assert count_terms(app, encounter_id) == 0  # nothing is seen before the commit
        session.rollback()
    finally:
        session.close()
    assert count_terms(app, encounter_id) == 0
    client = reviewer(app)
    assert found(client, words="quill") == []

    with writing(), database(app).session_factory() as session, session.begin():
        encounter = session.get(Encounter, encounter_id)
        assert encounter is not None
        values = capture.AgentInput(name="Pat Quill", agency_printed="Federal Bureau")
        capture.save_agent(session, encounter, Actor.system(), now_utc(), values, index_key=key)
    assert count_terms(app, encounter_id) > 0
    assert found(client, words="quill") == [the_encounter(app).public_id]

    # Correcting the name replaces its words: the old one no longer finds the record.
    with writing(), database(app).session_factory() as session, session.begin():
        encounter = session.get(Encounter, encounter_id)
        assert encounter is not None
        values = capture.AgentInput(name="Pat Quinn", agency_printed="Federal Bureau")
        capture.save_agent(session, encounter, Actor.system(), now_utc(), values, 1, index_key=key)
    assert found(client, words="quill") == []
    assert found(client, words="quinn") == [the_encounter(app).public_id]


def test_the_index_stores_no_word_in_plain_text(app: Flask, kiosk_client: FlaskClient) -> None:
    recorded(app, kiosk_client)
    with database(app).session_factory() as session:
        digests = session.scalars(select(SearchTerm.digest)).all()
    assert digests
    stored = " ".join(digests).lower()
    for word in ("welfare", "alvarez", "homeland", "maria"):
        assert word not in stored


def test_reindex_rebuilds_the_index_for_existing_records(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    public_id = recorded(app, kiosk_client)
    with writing(), database(app).session_factory() as session, session.begin():
        session.execute(delete(SearchTerm))
    client = reviewer(app)
    assert found(client, words="welfare") == []
    result = app.test_cli_runner().invoke(args=["review", "reindex", "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert "rewritten for 1 encounters" in result.output
    assert found(client, words="welfare") == [public_id]


def test_a_reindex_racing_a_desk_save_leaves_the_index_matching_the_record(
    app: Flask, kiosk_client: FlaskClient
) -> None:
    assert tap_start(kiosk_client).status_code == 302
    client = reviewer(app)
    runner = app.test_cli_runner()
    for trial in range(TRIALS):
        name = f"Agent{trial}x Quill"
        token = csrf_token(kiosk_client, "/desk/agents")

        def save(name: str = name, token: str = token) -> int:
            response = kiosk_client.post(
                "/desk/agents", data={"csrf_token": token, "name": name, "id_shown": "freely"}
            )
            return response.status_code

        def reindex() -> int:
            return runner.invoke(args=["review", "reindex"]).exit_code

        assert together(save, reindex) == [302, 0]
        # Whichever went first, the saved agent is found, and so is every earlier one.
        public_id = the_encounter(app).public_id
        for earlier in range(trial + 1):
            assert found(client, words=f"agent{earlier}x") == [public_id]


@pytest.mark.parametrize("selective_below", [1, 3, 5000])
def test_common_and_rare_words_find_the_same_encounters_whichever_is_listed_first(
    app: Flask, kiosk_client: FlaskClient, monkeypatch: pytest.MonkeyPatch, selective_below: int
) -> None:
    """A word on fewer encounters than SELECTIVE_BELOW is listed first, the others are
    checked encounter by encounter: the answer must not depend on which."""
    monkeypatch.setattr(search, "SELECTIVE_BELOW", selective_below)
    key = app.config["INDEX_KEY"]
    purposes = ["bus route", "bus stop", "bus route change", "lunch menu"]
    ids = [add(app, started_at=BASE + timedelta(minutes=n)) for n in range(len(purposes))]
    with writing(), database(app).session_factory() as session, session.begin():
        for public_id, purpose in zip(ids, purposes, strict=True):
            encounter = session.scalar(select(Encounter).where(Encounter.public_id == public_id))
            assert encounter is not None
            encounter.purpose = purpose
            search.reindex(session, encounter, key)
    client = reviewer(app)
    assert found(client, words="bus") == [ids[2], ids[1], ids[0]]
    assert found(client, words="bus route") == [ids[2], ids[0]]
    assert found(client, words="route bus chan*") == [ids[2]]
    assert found(client, words="lunch bus") == []
    assert found(client, words="menu") == [ids[3]]
