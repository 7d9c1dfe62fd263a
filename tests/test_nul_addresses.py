"""A NUL character in an address or a form is refused calmly, never a server error.

PostgreSQL cannot store or compare text holding NUL, so a NUL that reached a query would
fail the request there; SQLite would quietly look for it. Both must answer the same."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.conftest import CSRF_PATTERN, csrf_token
from tests.test_api import bearer, make_token
from tests.test_policy import create_user, login

REVIEWER = "reviewer@district.test"


def test_a_nul_in_an_address_or_a_filter_is_refused_on_every_kind_of_page(
    app: Flask, district: dict[str, Any]
) -> None:
    create_user(app, REVIEWER, "reviewer")
    browser = login(app, REVIEWER)
    token = make_token(app, REVIEWER)
    pages = (
        "/office/encounters/abc%00def",
        "/review/encounters/abc%00def",
        "/review/encounters/abc%00def/report",
        "/ferpa/encounters/abc%00def",
    )
    for path in pages:
        assert browser.get(path).status_code == 404, path
    assert browser.get("/review/?agency=%00").status_code == 400
    assert browser.get("/review/?after=1%002").status_code == 400
    api = app.test_client()
    assert api.get("/api/v1/encounters/a%00b", headers=bearer(token)).status_code == 404
    answer = api.get("/api/v1/encounters?date_from=%00", headers=bearer(token))
    assert answer.status_code == 400 and answer.is_json


def test_a_nul_typed_into_the_sign_in_form_is_refused_with_the_form_kept(
    app: Flask, district: dict[str, Any]
) -> None:
    client = app.test_client()
    response = client.post(
        "/login",
        data={
            "csrf_token": csrf_token(client, "/login"),
            "email": "dana.reyes@demo-district.example\x00",
            "password": "demo-password",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code in {200, 400, 422}
    assert CSRF_PATTERN.search(page) and "dana.reyes@demo-district.example" in page
