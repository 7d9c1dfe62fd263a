"""Script versions in the browser: admins edit (always a new draft), counsel approves, desks
show the version approved last, and every encounter links to the version it showed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from html import unescape
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import select

from kiosk.clock import now_utc
from kiosk.models import AuditEntry, Encounter, RoleGrant, ScriptVersion, User
from kiosk.protocol import scriptstore
from kiosk.webdb import database
from tests.conftest import csrf_token, encounters
from tests.test_policy import create_user, form_token, login
from tests.test_races import new_encounter, together

ADMIN = "admin@demo-district.example"
COUNSEL = "counsel@district.test"
NEW_WORDS = "Thank you. The district office has been contacted and will answer your request."


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    """Tests that ship a changed pack leave the cached fingerprint as they found it; and
    version ids start again with each test's database, while the process caches packs by id
    (in production an id is never reused)."""
    scriptstore._built_in_sha.cache_clear()
    scriptstore._packs_by_id.clear()
    yield
    scriptstore._built_in_sha.cache_clear()
    scriptstore._packs_by_id.clear()


@pytest.fixture
def admin(app: Flask, district: Any) -> FlaskClient:
    return login(app, ADMIN, "demo-password")


@pytest.fixture
def counsel(app: Flask, district: Any) -> FlaskClient:
    create_user(app, COUNSEL, "counsel")
    return login(app, COUNSEL)


@pytest.fixture
def desk(app: Flask, district: Any) -> FlaskClient:
    from tests.conftest import enroll_client

    client, _ = enroll_client(app, "Lincoln Elementary School")
    return client


def versions(app: Flask) -> list[ScriptVersion]:
    with database(app).session_factory() as session:
        return list(session.scalars(select(ScriptVersion).order_by(ScriptVersion.id)))


def audit_actions(app: Flask, prefix: str = "admin.script.") -> list[AuditEntry]:
    with database(app).session_factory() as session:
        return [
            e
            for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
            if e.action.startswith(prefix)
        ]


def textarea(page: str) -> str:
    found = re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.DOTALL)
    assert found, page
    return unescape(found.group(1)).lstrip("\r\n")


def stored_pack(app: Flask, version_id: int) -> dict[str, Any]:
    with database(app).session_factory() as session:
        version = session.get(ScriptVersion, version_id)
        assert version is not None
        return json.loads(version.content)


def block_fields(data: dict[str, Any]) -> dict[str, Any]:
    """What the block editor posts for a pack: each block's fields, as a browser sends them."""
    fields: dict[str, Any] = {"label": data["label"], "notice": data["notice"]}
    for index, block in enumerate(data["blocks"]):
        prefix = f"blocks-{index}-"
        fields[prefix + "step"] = block["step"]
        fields[prefix + "situation"] = block["situation"]
        fields[prefix + "priority"] = str(block.get("priority", ""))
        fields[prefix + "say"] = block["say"]
        fields[prefix + "do"] = "\n".join(block["do"])
        fields[prefix + "never"] = "\n".join(block["never"])
    return fields


def start_index(data: dict[str, Any]) -> int:
    """Where the start screen's default block is in the pack."""
    return next(
        i
        for i, b in enumerate(data["blocks"])
        if (b["step"], b["situation"]) == ("start", "default")
    )


def post_blocks(client: FlaskClient, version_id: int, fields: dict[str, Any]) -> Any:
    path = f"/admin/scripts/{version_id}/edit"
    token = csrf_token(client, path)
    return client.post(path, data={"csrf_token": token, "action": "save", **fields})


def edit(client: FlaskClient, version_id: int, say: str = NEW_WORDS) -> Any:
    """Change the start screen's default "say" line in the block editor and save."""
    app = client.application
    data = stored_pack(app, version_id)
    fields = block_fields(data)
    fields[f"blocks-{start_index(data)}-say"] = say
    return post_blocks(client, version_id, fields)


def approve(client: FlaskClient, version_id: int, due: date | None = None) -> Any:
    token = csrf_token(client, f"/admin/scripts/{version_id}")
    due = due or date.today() + timedelta(days=200)
    return client.post(
        f"/admin/scripts/{version_id}/approve",
        data={"csrf_token": token, "review_due": due.isoformat()},
    )


def say_line(desk: FlaskClient) -> str:
    page = desk.get("/desk/").get_data(as_text=True)
    found = re.search(r'id="say-line" data-situation="[^"]*">([^<]*)</p>', page)
    assert found, page
    return unescape(found.group(1))


def test_an_edit_is_a_new_draft_and_the_old_version_is_kept(
    app: Flask, admin: FlaskClient, desk: FlaskClient
) -> None:
    [shipped] = versions(app)
    response = edit(admin, shipped.id)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/scripts/2")
    old, new = versions(app)
    assert (old.id, old.content, old.sha256) == (shipped.id, shipped.content, shipped.sha256)
    assert new.status == "draft" and new.based_on_id == old.id and not new.active
    assert new.author == "Demo Administrator"
    assert NEW_WORDS in new.content and NEW_WORDS not in old.content
    # Both stay readable; the new one is flagged as a draft and shows what changed.
    page = admin.get("/admin/scripts/2").get_data(as_text=True)
    assert "Draft: not approved by counsel" in page
    assert escape(NEW_WORDS) in page and "Changes from version 1" in page
    assert admin.get("/admin/scripts/1").status_code == 200
    listing = admin.get("/admin/scripts").get_data(as_text=True)
    assert 'id="version-1"' in listing and 'id="version-2"' in listing
    in_use = re.search(r'<tr id="version-1">.*?</tr>', listing, re.DOTALL)
    assert in_use and "In use at the desk" in in_use.group(0)
    # A draft never reaches the desk, and the desk never sees the word "draft".
    new_encounter(app, desk)
    assert say_line(desk) != NEW_WORDS
    assert "raft" not in desk.get("/desk/").get_data(as_text=True)
    [created] = audit_actions(app)
    assert created.action == "admin.script.create" and created.subject == "script_version:2"


@pytest.mark.parametrize(
    ("say", "error"),
    [
        ("You must comply with this request.", "the word &#34;comply&#34; is not allowed"),
        ("One. Two. Three.", "at most two sentences"),
    ],
)
def test_a_block_with_a_problem_comes_back_as_typed_with_the_reason_beside_it(
    app: Flask, admin: FlaskClient, say: str, error: str
) -> None:
    response = edit(admin, 1, say)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    index = start_index(stored_pack(app, 1))
    beside = re.search(rf'<p class="error" id="blocks-{index}-say-error">([^<]*)</p>', page)
    assert beside and error in beside.group(1)
    assert f'value="{escape(say)}"' in page
    assert len(versions(app)) == 1


def test_blocks_are_added_and_removed_and_every_step_keeps_its_default(
    app: Flask, admin: FlaskClient
) -> None:
    data = stored_pack(app, 1)
    assert ("staff", "letter") not in [(b["step"], b["situation"]) for b in data["blocks"]]
    fields = block_fields(data)
    # "Add a block" brings the page back, as typed, with an empty block open; nothing saved.
    fields[f"blocks-{start_index(data)}-say"] = NEW_WORDS
    token = csrf_token(admin, "/admin/scripts/1/edit")
    response = admin.post(
        "/admin/scripts/1/edit", data={"csrf_token": token, "action": "add", **fields}
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    count = len(data["blocks"])
    assert f'id="blocks-{count}-say"' in page and escape(NEW_WORDS) in page
    assert len(versions(app)) == 1
    # The new block's words and a removal are saved together.
    fields.update(
        {
            f"blocks-{count}-step": "staff",
            f"blocks-{count}-situation": "letter",
            f"blocks-{count}-priority": "35",
            f"blocks-{count}-say": "Thank you. The district office will answer in writing.",
            f"blocks-{count}-do": "Keep the letter and its envelope.\n\nNote when it came.",
            f"blocks-{count}-never": "",
        }
    )
    removed = next(
        i for i, b in enumerate(data["blocks"]) if (b["step"], b["situation"]) == ("start", "phone")
    )
    fields[f"blocks-{removed}-remove"] = "y"
    response = post_blocks(admin, 1, fields)
    assert response.status_code == 302, response.get_data(as_text=True)
    saved = stored_pack(app, 2)
    keys = [(b["step"], b["situation"]) for b in saved["blocks"]]
    assert ("start", "phone") not in keys and ("staff", "letter") in keys
    letter = saved["blocks"][keys.index(("staff", "letter"))]
    assert letter["do"] == ["Keep the letter and its envelope.", "Note when it came."]
    assert letter["priority"] == 35 and letter["never"] == []
    # Removing a step's default block is refused, with the reason, and nothing is saved.
    fields = block_fields(data)
    fields[f"blocks-{start_index(data)}-remove"] = "y"
    response = post_blocks(admin, 1, fields)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "no default block for step(s): start" in page
    assert len(versions(app)) == 2


def test_text_that_is_not_json_is_kept_with_where_it_went_wrong(
    app: Flask, admin: FlaskClient
) -> None:
    token = csrf_token(admin, "/admin/scripts/1/edit/json")
    typed = '{"label": "Pack", "blocks": [}'
    response = admin.post(
        "/admin/scripts/1/edit/json", data={"csrf_token": token, "content": typed}
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "not valid JSON" in page and "line 1" in page
    assert textarea(page) == typed
    # The same words again are not a new version.
    same = admin.get("/admin/scripts/1/edit/json").get_data(as_text=True)
    response = admin.post(
        "/admin/scripts/1/edit/json",
        data={"csrf_token": token, "content": textarea(same)},
    )
    assert response.status_code == 422
    assert "already stored as version 1" in response.get_data(as_text=True)
    # A pack changed as JSON is a new draft like any other.
    changed = json.loads(textarea(same))
    changed["blocks"][start_index(changed)]["say"] = NEW_WORDS
    response = admin.post(
        "/admin/scripts/1/edit/json",
        data={"csrf_token": token, "content": json.dumps(changed)},
    )
    assert response.status_code == 302
    assert [v.status for v in versions(app)] == ["draft", "draft"]
    assert stored_pack(app, 2)["blocks"][start_index(changed)]["say"] == NEW_WORDS


def test_counsel_approves_and_new_encounters_show_the_approved_words(
    app: Flask, admin: FlaskClient, counsel: FlaskClient, desk: FlaskClient
) -> None:
    edit(admin, 1)
    page = counsel.get("/admin/scripts/2").get_data(as_text=True)
    assert "Approve version 2" in page
    due = date.today() + timedelta(days=100)
    response = approve(counsel, 2, due)
    assert response.status_code == 302
    version = versions(app)[1]
    assert version.status == "approved" and version.active
    assert version.approved_by == "Test counsel" and version.review_due == due
    assert version.approved_at is not None
    new_encounter(app, desk)
    assert say_line(desk) == NEW_WORDS
    page = counsel.get("/admin/scripts").get_data(as_text=True)
    row = re.search(r'<tr id="version-2">.*?</tr>', page, re.DOTALL)
    assert row and "In use at the desk" in row.group(0) and due.isoformat() in row.group(0)
    assert "Test counsel" in row.group(0)
    approval = audit_actions(app)[-1]
    assert approval.action == "admin.script.approve"
    details = json.loads(approval.details)
    assert details["after"]["review_due"] == due.isoformat()
    assert details["after"]["status"] == "approved"
    # The approval form offers a year ahead by default.
    page = counsel.get("/admin/scripts/1").get_data(as_text=True)
    default = scriptstore.default_review_due(now_utc().date()).isoformat()
    assert f'value="{default}"' in page


def test_an_admin_cannot_approve_and_reviewers_and_designees_cannot_edit(
    app: Flask, admin: FlaskClient, district: Any
) -> None:
    edit(admin, 1)
    assert "Approve version" not in admin.get("/admin/scripts/2").get_data(as_text=True)
    assert approve(admin, 2).status_code == 403
    create_user(app, "reviewer@district.test", "reviewer")
    reviewer = login(app, "reviewer@district.test")
    designee = login(app, "dana.reyes@demo-district.example", "demo-password")
    for client in (reviewer, designee):
        page = client.get("/admin/scripts/2")
        assert page.status_code == 200
        assert "Edit as a new version" not in page.get_data(as_text=True)
        assert client.get("/admin/scripts/2/edit").status_code == 403
        token = form_token(app, client)
        response = client.post("/admin/scripts/2/edit", data={"csrf_token": token, "content": "{}"})
        assert response.status_code == 403
        assert approve(client, 2).status_code == 403
    assert [v.status for v in versions(app)] == ["draft", "draft"]
    # A counsel grant for one school (refused today, possible in an older database) does not
    # approve a district-wide script.
    create_user(app, "school.counsel@district.test", "designee", "Lincoln Elementary School")
    with database(app).session_factory() as session, session.begin():
        user = session.scalar(select(User).where(User.email == "school.counsel@district.test"))
        assert user is not None
        grant = session.scalar(select(RoleGrant).where(RoleGrant.user_id == user.id))
        assert grant is not None
        grant.role = "counsel"
    school_counsel = login(app, "school.counsel@district.test")
    response = approve(school_counsel, 2)
    assert response.status_code == 422
    assert "district-wide counsel" in response.get_data(as_text=True)
    assert [v.status for v in versions(app)] == ["draft", "draft"]


def test_a_review_date_must_be_ahead_and_an_overdue_one_is_flagged(
    app: Flask, admin: FlaskClient, counsel: FlaskClient
) -> None:
    response = approve(counsel, 1, date.today() - timedelta(days=1))
    assert response.status_code == 422
    assert "must be after today" in response.get_data(as_text=True)
    assert versions(app)[0].status == "draft"
    assert approve(counsel, 1).status_code == 302
    assert "Review overdue" not in counsel.get("/admin/scripts").get_data(as_text=True)
    with database(app).session_factory() as session, session.begin():
        version = session.get(ScriptVersion, 1)
        assert version is not None
        version.review_due = date.today() - timedelta(days=3)
    page = counsel.get("/admin/scripts").get_data(as_text=True)
    assert "Review overdue" in page
    assert "Review overdue" in counsel.get("/admin/scripts/1").get_data(as_text=True)


def test_a_newer_shipped_pack_never_replaces_the_approved_one_and_is_offered(
    app: Flask,
    admin: FlaskClient,
    counsel: FlaskClient,
    desk: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    edit(admin, 1)
    approve(counsel, 2)
    original = scriptstore.default_pack_data

    def next_release() -> dict[str, Any]:
        data = original()
        for block in data["blocks"]:
            if (block["step"], block["situation"]) == ("start", "phone"):
                block["say"] = "I can't share information by phone. The district office will call."
        return data

    monkeypatch.setattr(scriptstore, "default_pack_data", next_release)
    scriptstore._built_in_sha.cache_clear()
    new_encounter(app, desk)
    assert say_line(desk) == NEW_WORDS
    assert encounters(app)[-1].script_version_id == 2
    page = counsel.get("/admin/scripts").get_data(as_text=True)
    assert "The shipped default pack has changed" in page
    shipped = page[page.index('id="shipped"') :]
    assert "Step: start; Request by phone: changed" in shipped
    assert escape("I can't share information by phone.") in shipped
    # Counsel takes it up as a new draft; the approved version stays in use.
    token = re.search(r'name="sha" type="hidden" value="([0-9a-f]{64})"', page)
    assert token
    response = counsel.post(
        "/admin/scripts/shipped",
        data={"csrf_token": csrf_token(counsel, "/admin/scripts"), "sha": token.group(1)},
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/scripts/3")
    third = versions(app)[2]
    assert third.status == "draft" and third.based_on_id == 2
    assert "by phone. The district office will call." in third.content
    page = counsel.get("/admin/scripts").get_data(as_text=True)
    assert "The shipped default pack has changed" not in page
    with database(app).session_factory() as session:
        assert scriptstore.current_script_version(session, now_utc()).id == 2


def test_each_encounter_links_to_the_version_it_showed(
    app: Flask, admin: FlaskClient, counsel: FlaskClient, desk: FlaskClient
) -> None:
    first = new_encounter(app, desk)
    shown = say_line(desk)
    edit(admin, 1)
    approve(counsel, 2)
    # The open encounter keeps its version, even though counsel approved another meanwhile.
    assert say_line(desk) == shown
    reviewer_email = "reviewer@district.test"
    create_user(app, reviewer_email, "reviewer")
    reviewer = login(app, reviewer_email)
    page = reviewer.get(f"/office/encounters/{first.public_id}").get_data(as_text=True)
    line = re.search(r'<p class="hint" id="script-version">(.*?)</p>', page, re.DOTALL)
    assert line, page
    assert 'href="/admin/scripts/1"' in line.group(1)
    assert "not yet approved by the district&#39;s counsel" in line.group(1)
    assert reviewer.get("/admin/scripts/1").status_code == 200
    second = new_encounter(app, desk)
    assert second.script_version_id == 2 and say_line(desk) == NEW_WORDS
    page = reviewer.get(f"/office/encounters/{second.public_id}").get_data(as_text=True)
    line = re.search(r'<p class="hint" id="script-version">(.*?)</p>', page, re.DOTALL)
    assert line and 'href="/admin/scripts/2"' in line.group(1)
    assert "approved by the district&#39;s counsel (Test counsel" in line.group(1)
    assert "not yet" not in line.group(1)


def test_a_preview_shows_the_desk_layout_and_records_nothing(
    app: Flask, admin: FlaskClient
) -> None:
    edit(admin, 1)
    before = len(audit_actions(app, ""))
    response = admin.get("/admin/scripts/2/preview?step=start&situation=default")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.index("Preview: version 2") < page.index('id="now"')
    assert "draft, not approved by counsel" in page
    assert f'id="say-line" data-situation="default">{escape(NEW_WORDS)}</p>' in page
    page = admin.get(
        "/admin/scripts/2/preview?step=document&situation=doc:judicial_warrant"
    ).get_data(as_text=True)
    assert 'data-situation="doc:judicial_warrant"' in page
    assert 'class="office-nav"' not in page
    assert len(audit_actions(app, "")) == before
    assert encounters(app) == []


def test_two_approvals_at_once_leave_one_version_in_use_and_both_recorded(
    app: Flask, admin: FlaskClient, counsel: FlaskClient, desk: FlaskClient
) -> None:
    edit(admin, 1, "First district draft: please wait here for the district office.")
    edit(admin, 1, "Second district draft: please wait here for the district office.")
    other = login(app, COUNSEL)
    calls = []
    for client, version_id in ((counsel, 2), (other, 3)):
        token = csrf_token(client, f"/admin/scripts/{version_id}")
        calls.append(
            lambda c=client, v=version_id, t=token: c.post(
                f"/admin/scripts/{v}/approve",
                data={"csrf_token": t, "review_due": (date.today() + timedelta(days=90))},
            )
        )
    results = together(*calls)
    assert [r.status_code for r in results] == [302, 302]
    approvals = [e for e in audit_actions(app) if e.action == "admin.script.approve"]
    assert len(approvals) == 2
    assert approvals[0].seq < approvals[1].seq
    last = int(approvals[-1].subject.split(":")[1])
    stored = versions(app)
    assert [v.status for v in stored[1:]] == ["approved", "approved"]
    assert [v.id for v in stored if v.active] == [last]
    with database(app).session_factory() as session:
        assert scriptstore.in_use(session).id == last  # type: ignore[union-attr]
    encounter = new_encounter(app, desk)
    assert encounter.script_version_id == last
    assert say_line(desk).startswith("First" if last == 2 else "Second")
    with database(app).session_factory() as session:
        assert session.get(Encounter, encounter.id).script_version_id == last  # type: ignore[union-attr]
