"""District setup rules, as the command line (and later the admin pages) apply them."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from kiosk.db import unit_of_work
from kiosk.models import Contact
from kiosk.protocol import setup
from kiosk.webdb import database

SCHOOL = "Lincoln Elementary School"


def attempt(app: Flask, operation: Any, *args: Any) -> Any:
    with unit_of_work(database(app).session_factory) as session:
        return operation(session, *args)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"address": "not-an-email"}, "needs an email address"),
        ({"channel": "webhook", "address": "ftp://x"}, r"http\(s\) URL"),
        ({"channel": "webhook", "address": "https://hooks.test/x"}, "--webhook-secret"),
        ({"channel": "sms", "address": "call me"}, "phone number"),
        ({"channel": "pigeon"}, "channel must be one of"),
        ({"level": 4}, "level must be 1, 2 or 3"),
        ({"places": ("moon",)}, "unknown place moon"),
        ({"places": ("bus",), "after_hours": True}, "not both"),
        ({"name": "Dana\r\nBcc: x"}, "one line"),
        ({"school": "Nowhere School"}, "no school named"),
    ],
)
def test_a_contact_that_breaks_a_rule_is_refused_and_nothing_is_added(
    app: Flask, district: Any, changes: dict[str, Any], message: str
) -> None:
    values = setup.ContactInput(school=SCHOOL, name="Dana", address="dana@district.test")
    values = setup.ContactInput(**{**values.__dict__, **changes})
    with pytest.raises(setup.SetupError, match=message):
        attempt(app, setup.add_contact, values)


def test_routing_keeps_level_three_after_level_two(app: Flask, district: Any) -> None:
    with pytest.raises(setup.SetupError, match="level 3 must come after level 2"):
        attempt(app, setup.set_routing, SCHOOL, setup.RoutingInput(level2_after_minutes=15))
    school = attempt(
        app,
        setup.set_routing,
        SCHOOL,
        setup.RoutingInput(level2_after_minutes=2, hours="06:30-18:00", days="4,0,0"),
    )
    assert (school.level2_after_minutes, school.hours_open, school.school_days) == (
        2,
        "06:30",
        "0,4",
    )
    for bad, message in (
        ({"hours": "18:00-06:30"}, "07:00-17:00"),
        ({"days": "7"}, r"0 \(Monday\)"),
    ):
        with pytest.raises(setup.SetupError, match=message):
            attempt(app, setup.set_routing, SCHOOL, setup.RoutingInput(**bad))


def test_a_user_needs_known_roles_and_a_free_email(app: Flask, district: Any) -> None:
    with pytest.raises(setup.SetupError, match="roles must be among"):
        attempt(app, setup.create_user, setup.UserInput("X", roles=("janitor",)))
    with pytest.raises(setup.SetupError, match="exists already"):
        attempt(
            app,
            setup.create_user,
            setup.UserInput("X", roles=("reviewer",), email="Dana.Reyes@demo-district.example"),
        )
    assert not setup.valid_pin("12345") and setup.valid_pin("123456") and setup.valid_pin(None)


def test_a_folder_of_zones_is_not_a_time_zone(app: Flask, district: Any) -> None:
    from kiosk.localtime import zone

    with pytest.raises(setup.SetupError, match="unknown time zone 'America'"):
        attempt(app, setup.create_school, "Folder School", "America", "")
    assert str(zone("America")) == "UTC"


def test_an_sms_contact_waits_for_the_gateway(app: Flask, district: Any) -> None:
    values = setup.ContactInput(
        school=SCHOOL, name="Backup", address="+15550100202", channel="sms", level=2
    )
    with pytest.raises(setup.SetupError, match="KIOSK_SMS_AUTH_TOKEN, KIOSK_SMS_FROM first"):
        attempt(
            app,
            lambda s, v: setup.add_contact(
                s, v, sms_gateway_missing=("KIOSK_SMS_AUTH_TOKEN", "KIOSK_SMS_FROM")
            ),
            values,
        )
    assert attempt(app, setup.add_contact, values).channel == "sms"


def test_a_contact_and_a_user_with_one_email_are_linked_whichever_comes_first(
    app: Flask, district: Any
) -> None:
    def contact(email: str) -> Any:
        values = setup.ContactInput(school=SCHOOL, name="Sam", address=email)
        return attempt(app, setup.add_contact, values)

    def user(email: str) -> Any:
        values = setup.UserInput("Sam", ("designee",), email=email, school=SCHOOL)
        return attempt(app, setup.create_user, values)

    early = contact("Sam.Early@District.test")
    late_user = user("sam.early@district.test")
    early_user = user("sam.late@district.test")
    late = contact("sam.late@district.test")
    with database(app).session_factory() as session:
        assert session.get(Contact, early.id).user_id == late_user.id
        assert session.get(Contact, late.id).user_id == early_user.id
