"""People in the administration pages: invitations and their links, roles, disabling, PINs,
unlocking and the CSV import, as an administrator (and the person) would notice them."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from kiosk.clock import now_utc
from kiosk.models import (
    AuditEntry,
    Invitation,
    OutboxMessage,
    RoleGrant,
    SigninThrottle,
    User,
)
from kiosk.protocol.staff import desk_staff
from kiosk.webdb import database
from tests.conftest import csrf_token
from tests.test_policy import LINCOLN, PASSWORD, create_user, login

ADMIN = "admin@demo-district.example"
NEW_PASSWORD = "a-long-new-password"
LINK = re.compile(r"https?://\S+/welcome/([A-Za-z0-9_-]+)")


@pytest.fixture
def clock() -> Iterator[Any]:
    from kiosk import clock as clock_module

    yield clock_module
    clock_module.set_offset(0)


@pytest.fixture
def admin(app: Flask, district: Any) -> FlaskClient:
    return login(app, ADMIN, "demo-password")


def person(app: Flask, email: str) -> User:
    with database(app).session_factory() as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        session.expunge(user)
        return user


def count(app: Flask, model: Any) -> int:
    with database(app).session_factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def audit_actions(app: Flask) -> list[str]:
    """The administrative changes recorded, oldest first (sign-ins, recorded in the same
    chain, are left out)."""
    with database(app).session_factory() as session:
        query = select(AuditEntry.action).where(AuditEntry.action.like("admin.%"))
        return list(session.scalars(query.order_by(AuditEntry.seq)))


def lincoln_id(app: Flask) -> int:
    from kiosk.models import School

    with database(app).session_factory() as session:
        found = session.scalar(select(School.id).where(School.name == LINCOLN))
        assert found is not None
        return found


def invite(admin: FlaskClient, app: Flask, **fields: Any) -> Any:
    token = csrf_token(admin, "/admin/people/invite")
    data: dict[str, Any] = {
        "csrf_token": token,
        "name": "Robin Park",
        "email": "robin.park@district.test",
        "roles": [f"designee:{lincoln_id(app)}"],
    }
    data.update(fields)
    return admin.post("/admin/people/invite", data=data)


def link_token(page: str) -> str:
    match = LINK.search(page)
    assert match, page
    return match.group(1)


def set_password(app: Flask, token: str, password: str = NEW_PASSWORD) -> Any:
    client = app.test_client()
    path = f"/welcome/{token}"
    return client.post(
        path,
        data={"csrf_token": csrf_token(client, path), "password": password, "confirm": password},
    )


def post(client: FlaskClient, page: str, action: str, **data: Any) -> Any:
    return client.post(action, data={"csrf_token": csrf_token(client, page), **data})


def signed_in(client: FlaskClient) -> bool:
    response = client.get("/office/")
    if response.status_code == 200:
        return True
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    return False


def can_sign_in(app: Flask, email: str, password: str) -> bool:
    client = app.test_client()
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"csrf_token": token, "email": email, "password": password}
    )
    return response.status_code == 302


def test_an_invitation_link_is_shown_emailed_and_sets_a_password_once(
    app: Flask, admin: FlaskClient
) -> None:
    response = invite(admin, app)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    token = link_token(page)
    assert "emailed to robin.park@district.test" in page
    robin = person(app, "robin.park@district.test")
    assert robin.password_hash is None and robin.active
    with database(app).session_factory() as session:
        invitation = session.scalars(select(Invitation)).one()
        assert token not in invitation.token_hash and invitation.purpose == "invitation"
        assert invitation.expires_at - now_utc() > timedelta(days=6, hours=23)
        mail = session.scalars(select(OutboxMessage)).one()
        assert mail.recipient == "robin.park@district.test" and mail.encounter_id is None
        assert f"/welcome/{token}" in mail.body
        grants = session.scalars(select(RoleGrant).where(RoleGrant.user_id == robin.id)).all()
        assert [(g.role, g.school_id) for g in grants] == [("designee", lincoln_id(app))]
    assert "admin.user.invite" in audit_actions(app)
    # Before the link is used there is no password to sign in with.
    assert not can_sign_in(app, "robin.park@district.test", "")
    welcome = app.test_client().get(f"/welcome/{token}")
    assert welcome.status_code == 200 and "Set your password" in welcome.get_data(as_text=True)
    done = set_password(app, token)
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    assert can_sign_in(app, "robin.park@district.test", NEW_PASSWORD)
    again = app.test_client().get(f"/welcome/{token}")
    assert again.status_code == 404 and "not valid" in again.get_data(as_text=True)


def test_a_welcome_password_is_checked_and_the_form_says_why(
    app: Flask, admin: FlaskClient
) -> None:
    token = link_token(invite(admin, app).get_data(as_text=True))
    short = set_password(app, token, "short")
    assert short.status_code == 422
    assert 'id="password-error"' in short.get_data(as_text=True)
    client = app.test_client()
    path = f"/welcome/{token}"
    mismatch = client.post(
        path,
        data={
            "csrf_token": csrf_token(client, path),
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD + "x",
        },
    )
    assert mismatch.status_code == 422
    assert "not the same" in mismatch.get_data(as_text=True)
    assert person(app, "robin.park@district.test").password_hash is None


def test_an_invitation_link_expires(app: Flask, admin: FlaskClient, clock: Any) -> None:
    token = link_token(invite(admin, app).get_data(as_text=True))
    path = f"/welcome/{token}"
    client = app.test_client()
    form = csrf_token(client, path)
    clock.set_offset(timedelta(days=7, minutes=1).total_seconds())
    assert app.test_client().get(path).status_code == 404
    late = client.post(
        path, data={"csrf_token": form, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert late.status_code == 404
    assert person(app, "robin.park@district.test").password_hash is None


@pytest.mark.slow
def test_two_uses_of_one_link_at_the_same_moment_set_one_password(
    app: Flask, admin: FlaskClient
) -> None:
    token = link_token(invite(admin, app).get_data(as_text=True))
    path = f"/welcome/{token}"
    clients = [app.test_client() for _ in range(2)]
    tokens = [csrf_token(client, path) for client in clients]
    barrier = threading.Barrier(2)
    statuses: list[int] = []
    lock = threading.Lock()

    def use(index: int) -> None:
        password = f"{NEW_PASSWORD}-{index}"
        barrier.wait()
        response = clients[index].post(
            path, data={"csrf_token": tokens[index], "password": password, "confirm": password}
        )
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=use, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [302, 404]
    works = [can_sign_in(app, "robin.park@district.test", f"{NEW_PASSWORD}-{i}") for i in range(2)]
    assert works.count(True) == 1


def test_an_invitation_form_with_errors_keeps_what_was_typed(
    app: Flask, admin: FlaskClient
) -> None:
    response = invite(admin, app, roles=[], name="Robin Park", email="robin@district.test")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'value="Robin Park"' in page and 'value="robin@district.test"' in page
    assert 'id="roles-error"' in page and "Choose at least one role." in page
    taken = invite(admin, app, email="DANA.REYES@demo-district.example")
    page = taken.get_data(as_text=True)
    assert taken.status_code == 422
    assert 'id="email-error"' in page and "exists already" in page
    assert 'value="Robin Park"' in page
    assert count(app, Invitation) == 0


def test_a_role_goes_with_a_school_or_with_the_district_and_the_page_says_which(
    app: Flask, admin: FlaskClient
) -> None:
    create_user(app, "casey@district.test", "reviewer")
    casey = person(app, "casey@district.test")
    page = f"/admin/people/{casey.public_id}"
    wrong = post(admin, page, f"{page}/roles", role="designee", school="")
    text = wrong.get_data(as_text=True)
    assert wrong.status_code == 422
    assert 'id="school-error"' in text and "Designee is held for one school" in text
    wrong = post(admin, page, f"{page}/roles", role="counsel", school=str(lincoln_id(app)))
    assert "Counsel is district-wide" in wrong.get_data(as_text=True)
    ok = post(admin, page, f"{page}/roles", role="designee", school=str(lincoln_id(app)))
    assert ok.status_code == 302
    with database(app).session_factory() as session:
        roles = session.scalars(select(RoleGrant.role).where(RoleGrant.user_id == casey.id))
        assert sorted(roles) == ["designee", "reviewer"]
    assert "admin.user.grant" in audit_actions(app)


def test_disabling_a_person_ends_their_session_at_once(app: Flask, admin: FlaskClient) -> None:
    create_user(app, "casey@district.test", "designee", LINCOLN)
    casey_client = login(app, "casey@district.test")
    assert signed_in(casey_client)
    casey = person(app, "casey@district.test")
    page = f"/admin/people/{casey.public_id}"
    assert post(admin, page, f"{page}/disable").status_code == 302
    assert not signed_in(casey_client)
    assert not can_sign_in(app, "casey@district.test", PASSWORD)
    listing = admin.get("/admin/people").get_data(as_text=True)
    assert 'data-email="casey@district.test" data-active="no"' in listing
    assert post(admin, page, f"{page}/enable").status_code == 302
    assert can_sign_in(app, "casey@district.test", PASSWORD)
    assert audit_actions(app)[-2:] == ["admin.user.disable", "admin.user.enable"]


def test_a_disabled_person_is_not_offered_at_the_desk(app: Flask, admin: FlaskClient) -> None:
    with database(app).session_factory() as session:
        staff = desk_staff(session, lincoln_id(app))
        assert staff
        first = staff[0]
    page = f"/admin/people/{first.public_id}"
    assert post(admin, page, f"{page}/disable").status_code == 302
    with database(app).session_factory() as session:
        assert first.id not in {u.id for u in desk_staff(session, lincoln_id(app))}


def test_changing_roles_ends_the_persons_session_at_once(app: Flask, admin: FlaskClient) -> None:
    create_user(app, "casey@district.test", "designee", LINCOLN)
    casey_client = login(app, "casey@district.test")
    assert signed_in(casey_client)
    casey = person(app, "casey@district.test")
    page = f"/admin/people/{casey.public_id}"
    assert post(admin, page, f"{page}/roles", role="reviewer", school="").status_code == 302
    assert not signed_in(casey_client)
    casey_client = login(app, "casey@district.test")
    with database(app).session_factory() as session:
        grant_id = session.scalar(
            select(RoleGrant.id).where(RoleGrant.user_id == casey.id, RoleGrant.role == "reviewer")
        )
    removed = post(admin, page, f"{page}/roles/{grant_id}/remove")
    assert removed.status_code == 302
    assert not signed_in(casey_client)


def test_an_admin_cannot_disable_themselves_or_drop_their_own_admin_role(
    app: Flask, admin: FlaskClient
) -> None:
    me = person(app, ADMIN)
    page = f"/admin/people/{me.public_id}"
    shown = admin.get(page).get_data(as_text=True)
    assert "You cannot disable yourself" in shown
    refused = post(admin, page, f"{page}/disable")
    assert refused.status_code == 409
    assert "cannot disable yourself" in refused.get_data(as_text=True)
    with database(app).session_factory() as session:
        grant_id = session.scalar(select(RoleGrant.id).where(RoleGrant.user_id == me.id))
    refused = post(admin, page, f"{page}/roles/{grant_id}/remove")
    assert refused.status_code == 409
    assert "cannot remove your own administrator role" in refused.get_data(as_text=True)
    assert person(app, ADMIN).active and admin.get("/admin/").status_code == 200


def test_a_reset_link_stops_the_old_password_and_the_sessions(
    app: Flask, admin: FlaskClient
) -> None:
    create_user(app, "casey@district.test", "designee", LINCOLN)
    casey_client = login(app, "casey@district.test")
    casey = person(app, "casey@district.test")
    page = f"/admin/people/{casey.public_id}"
    response = post(admin, page, f"{page}/link")
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "Password reset link" in text
    assert not signed_in(casey_client)
    assert not can_sign_in(app, "casey@district.test", PASSWORD)
    assert set_password(app, link_token(text)).status_code == 302
    assert can_sign_in(app, "casey@district.test", NEW_PASSWORD)
    with database(app).session_factory() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "admin.user.reset_link")
        ).one()
        assert PASSWORD not in entry.details and "(changed)" in entry.details


def test_a_newer_link_replaces_the_older_one(app: Flask, admin: FlaskClient) -> None:
    first = link_token(invite(admin, app).get_data(as_text=True))
    robin = person(app, "robin.park@district.test")
    page = f"/admin/people/{robin.public_id}"
    second = link_token(post(admin, page, f"{page}/link").get_data(as_text=True))
    assert app.test_client().get(f"/welcome/{first}").status_code == 404
    assert set_password(app, second).status_code == 302


def test_pins_are_set_cleared_and_unlocked(app: Flask, admin: FlaskClient) -> None:
    create_user(app, "casey@district.test", "front_desk", LINCOLN)
    casey = person(app, "casey@district.test")
    page = f"/admin/people/{casey.public_id}"
    bad = post(admin, page, f"{page}/pin", pin="12ab56")
    assert bad.status_code == 422 and 'id="pin-error"' in bad.get_data(as_text=True)
    assert post(admin, page, f"{page}/pin", pin="246810").status_code == 302
    hashed = person(app, "casey@district.test").pin_hash
    assert hashed and "246810" not in hashed
    with database(app).session_factory() as session, session.begin():
        row = session.get(User, casey.id)
        assert row is not None
        row.pin_locked_until = now_utc() + timedelta(minutes=15)
        row.pin_failures = 3
    for _ in range(12):
        can_sign_in(app, "casey@district.test", "wrong-password")
    assert count(app, SigninThrottle) > 0
    assert not can_sign_in(app, "casey@district.test", PASSWORD)
    listing = admin.get("/admin/people").get_data(as_text=True)
    assert "PIN and sign-in" in listing
    assert post(admin, page, f"{page}/unlock").status_code == 302
    unlocked = person(app, "casey@district.test")
    assert unlocked.pin_locked_until is None and unlocked.pin_failures == 0
    assert can_sign_in(app, "casey@district.test", PASSWORD)
    assert post(admin, page, f"{page}/pin", clear="1").status_code == 302
    assert person(app, "casey@district.test").pin_hash is None
    assert audit_actions(app)[-3:] == [
        "admin.user.pin_set",
        "admin.user.unlock",
        "admin.user.pin_clear",
    ]


def test_the_list_filters_by_school_and_role(app: Flask, admin: FlaskClient) -> None:
    page = admin.get(f"/admin/people?school={lincoln_id(app)}&role=designee").get_data(as_text=True)
    assert "dana.reyes@demo-district.example" in page
    assert ADMIN not in page
    everyone = admin.get("/admin/people").get_data(as_text=True)
    assert ADMIN in everyone and "dana.reyes@demo-district.example" in everyone


CSV = (
    "name,email,role,school\n"
    "Pat Lee,pat.lee@district.test,front_desk,Lincoln Elementary School\n"
    "Pat Lee,pat.lee@district.test,designee,Riverside Middle School\n"
    "Sam Ortiz,sam.ortiz@district.test,counsel,\n"
    "Dana Reyes,dana.reyes@demo-district.example,designee,Riverside Middle School\n"
)
BAD_CSV = CSV + (
    "Lee Kim,lee.kim@district.test,designee,\n"
    "Ann Bo,ann.bo@district.test,designee,Nowhere School\n"
    "Ann Bo,not-an-email,reviewer,\n"
)


def upload(admin: FlaskClient, content: str) -> Any:
    import io

    token = csrf_token(admin, "/admin/people/import")
    return admin.post(
        "/admin/people/import",
        data={"csrf_token": token, "file": (io.BytesIO(content.encode()), "people.csv")},
        content_type="multipart/form-data",
    )


def hidden(page: str, name: str) -> str:
    match = re.search(rf'id="{name}" name="{name}" type="hidden" value="([^"]*)"', page)
    assert match, page
    import html

    return html.unescape(match.group(1))


def snapshot(app: Flask) -> tuple[int, int, int, int]:
    return (
        count(app, User),
        count(app, RoleGrant),
        count(app, Invitation),
        count(app, AuditEntry),
    )


def test_a_csv_preview_writes_nothing_and_names_each_bad_line(
    app: Flask, admin: FlaskClient
) -> None:
    before = snapshot(app)
    response = upload(admin, BAD_CSV)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Line 6: Designee is held for one school" in page
    assert "Line 7: no school named &#39;Nowhere School&#39;" in page
    assert "Line 8: &#39;not-an-email&#39; is not an email address" in page
    assert "Apply these changes" not in page
    assert snapshot(app) == before


def test_applying_a_csv_writes_what_the_preview_showed(app: Flask, admin: FlaskClient) -> None:
    before = snapshot(app)
    preview = upload(admin, CSV).get_data(as_text=True)
    assert "Line 2: Pat Lee (pat.lee@district.test): Front desk (Lincoln Elementary School), " in (
        preview
    )
    assert "Line 4: Sam Ortiz (sam.ortiz@district.test): Counsel (district-wide)" in preview
    assert "Line 5: Dana Reyes (dana.reyes@demo-district.example): Designee (Riverside" in preview
    assert snapshot(app) == before
    content, fingerprint = hidden(preview, "content"), hidden(preview, "fingerprint")
    assert content == CSV
    done = post(
        admin,
        "/admin/people/import",
        "/admin/people/import/apply",
        content=content,
        fingerprint=fingerprint,
    )
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and "2 people added, 1 role added" in page
    assert len(LINK.findall(page)) == 2
    users, grants, links, _ = snapshot(app)
    assert (users, grants, links) == (before[0] + 2, before[1] + 4, before[2] + 2)
    pat = person(app, "pat.lee@district.test")
    with database(app).session_factory() as session:
        roles = sorted(session.scalars(select(RoleGrant.role).where(RoleGrant.user_id == pat.id)))
    assert roles == ["designee", "front_desk"]
    # The same file again changes nothing.
    again = upload(admin, CSV).get_data(as_text=True)
    assert "The file changes nothing." in again


def test_an_import_previewed_before_a_change_is_not_applied(app: Flask, admin: FlaskClient) -> None:
    preview = upload(admin, CSV).get_data(as_text=True)
    invite(admin, app, name="Sam Ortiz", email="sam.ortiz@district.test")
    before = snapshot(app)
    refused = post(
        admin,
        "/admin/people/import",
        "/admin/people/import/apply",
        content=hidden(preview, "content"),
        fingerprint=hidden(preview, "fingerprint"),
    )
    assert refused.status_code == 409
    assert "changed since the preview" in refused.get_data(as_text=True)
    assert snapshot(app) == before


def test_a_person_disabled_after_their_name_was_tapped_cannot_use_their_pin(
    app: Flask, admin: FlaskClient, kiosk_client: FlaskClient
) -> None:
    from tests.conftest import tap_start

    tap_start(kiosk_client)
    with database(app).session_factory() as session:
        pat = session.scalar(select(User).where(User.display_name == "Pat Lee"))
        assert pat is not None
    token = csrf_token(kiosk_client, "/desk/staff")
    kiosk_client.post("/desk/staff", data={"csrf_token": token, "user": pat.public_id})
    token = csrf_token(kiosk_client, "/desk/staff/pin")
    page = f"/admin/people/{pat.public_id}"
    assert post(admin, page, f"{page}/disable").status_code == 302
    response = kiosk_client.post("/desk/staff/pin", data={"csrf_token": token, "pin": "123456"})
    assert response.status_code == 422
    assert "cannot be used at the desk now" in response.get_data(as_text=True)
    assert "Pat Lee" not in kiosk_client.get("/desk/staff").get_data(as_text=True)


def test_front_desk_staff_may_be_added_without_an_email_and_get_a_pin(
    app: Flask, admin: FlaskClient
) -> None:
    refused = invite(admin, app, name="Jo Desk", email="")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert 'id="email-error"' in page and "everyone but front-desk staff" in page
    added = invite(admin, app, name="Jo Desk", email="", roles=[f"front_desk:{lincoln_id(app)}"])
    assert added.status_code == 302
    assert count(app, Invitation) == 0
    with database(app).session_factory() as session:
        jo = session.scalar(select(User).where(User.display_name == "Jo Desk"))
        assert jo is not None and jo.email is None
    page_path = added.headers["Location"]
    assert "Set their PIN below." in admin.get(page_path).get_data(as_text=True)
    assert post(admin, page_path, f"{page_path}/pin", pin="135790").status_code == 302
    with database(app).session_factory() as session:
        assert jo.id in {u.id for u in desk_staff(session, lincoln_id(app))}
    assert "admin.user.create" in audit_actions(app)


def test_a_lockout_remembered_by_another_server_is_read_again_within_half_a_minute() -> None:
    from kiosk.auth.throttle import KnownLockouts, Limit

    known = KnownLockouts()
    now = now_utc()
    key = (Limit("k", 10),)
    known.remember("k", now + timedelta(hours=1), now)
    assert known.locked(key, now + timedelta(seconds=29))
    # Past that, the database is asked again, where an unlock shows.
    assert not known.locked(key, now + timedelta(seconds=31))
    known.remember("k", now + timedelta(hours=1), now)
    known.forget("k")
    assert not known.locked(key, now)


def test_removing_a_lost_second_factor_signs_the_person_out_and_asks_for_it_again(
    app: Flask, admin: FlaskClient
) -> None:
    create_user(app, "counsel@district.test", "counsel")
    counsel_client = login(app, "counsel@district.test")
    assert signed_in(counsel_client)
    counsel = person(app, "counsel@district.test")
    page = f"/admin/people/{counsel.public_id}"
    assert "Remove the second factor" in admin.get(page).get_data(as_text=True)
    response = post(admin, page, f"{page}/second-factor/reset")
    assert response.status_code == 302
    assert not signed_in(counsel_client)
    assert person(app, "counsel@district.test").totp_secret is None
    assert audit_actions(app)[-1] == "admin.user.reset_second_factor"
    shown = admin.get(page).get_data(as_text=True)
    assert "second factor was removed" in shown and "Not set up." in shown
    # The password alone does not sign them in: the page asks them to set it up again.
    client = app.test_client()
    token = csrf_token(client, "/login")
    answer = client.post(
        "/login",
        data={"csrf_token": token, "email": "counsel@district.test", "password": PASSWORD},
    )
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login/setup-code")
    # A person without one: nothing changes, and the page says so.
    post(admin, page, f"{page}/second-factor/reset")
    assert "had no second factor; nothing changed" in admin.get(page).get_data(as_text=True)
