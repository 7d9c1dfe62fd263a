"""Setting up a district: schools, contacts, people, routing and the hotline. The rules live
here, so the command line today and the administration pages later apply the same ones.
Each operation takes a session and plain values, flushes, and never commits."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from kiosk.auth import devices
from kiosk.models import (
    ROLES,
    Acknowledgement,
    Contact,
    District,
    EncounterEvent,
    Kiosk,
    OutboxMessage,
    RoleGrant,
    School,
    TestAlert,
    User,
)
from kiosk.vocabulary import OFFSITE_PLACES

CONTACT_CHANNELS = ("email", "webhook", "sms")
WEBHOOK_FORMATS = ("generic", "slack", "teams")
HOURS = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])")


class SetupError(ValueError):
    """A setting that cannot be taken, with the reason in words; field names the setting at
    fault, so a page can show the reason next to it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def one_line(value: str, label: str, field: str | None = None) -> str:
    """Refuse line breaks and control characters in names that reach email headers."""
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise SetupError(f"{label} must be one line without control characters", field)
    return value.strip()


def find_school(session: Session, name: str) -> School:
    school = session.scalar(select(School).where(School.name == name))
    if school is None:
        raise SetupError(f"no school named {name!r}")
    return school


def find_kiosk(session: Session, ref: str) -> Kiosk:
    """A kiosk by its number (as `kiosks list` shows it) or its public id."""
    ref = ref.strip()
    kiosk = None
    if ref.isdigit():
        kiosk = session.get(Kiosk, int(ref))
    if kiosk is None:
        kiosk = session.scalar(select(Kiosk).where(Kiosk.public_id == ref))
    if kiosk is None:
        raise SetupError(f"no kiosk {ref!r} (see `kiosks list`)")
    return kiosk


def all_kiosks(session: Session) -> list[Kiosk]:
    """Every kiosk, school by school, oldest first."""
    return list(
        session.scalars(
            select(Kiosk).join(School, School.id == Kiosk.school_id).order_by(School.name, Kiosk.id)
        )
    )


LABEL_LENGTH = 100


def kiosk_name(value: str) -> str:
    """A kiosk's name as the admins see it ("Front desk", "Main office, east door")."""
    name = one_line(value, "the name")
    if not name:
        raise SetupError("give the kiosk a name, such as Front desk")
    if len(name) > LABEL_LENGTH:
        raise SetupError(f"the name must be at most {LABEL_LENGTH} characters")
    return name


@dataclass(frozen=True)
class Enrollment:
    """A new kiosk and the two ways to set up its device: the link's token and a short code."""

    kiosk: Kiosk
    token: str
    code: str


def enroll_kiosk(
    session: Session,
    school: School,
    name: str,
    now: datetime,
    *,
    secret_key: str,
    link_hours: int,
    code_minutes: int,
) -> Enrollment:
    """Create a kiosk for the school with a one-time link and a short code; either sets up
    one device, once."""
    kiosk, token = devices.issue_enrollment(
        session, school, now, link_hours, label=kiosk_name(name)
    )
    code = devices.issue_code(session, kiosk, secret_key, now, code_minutes)
    return Enrollment(kiosk, token, code)


def renew_enrollment(
    session: Session,
    kiosk: Kiosk,
    now: datetime,
    *,
    secret_key: str,
    link_hours: int,
    code_minutes: int,
) -> Enrollment:
    """A new link and code for a kiosk still waiting for its device; the old ones stop."""
    if kiosk.revoked_at is not None:
        raise SetupError("this kiosk is revoked: enroll a new one")
    if kiosk.enrolled_at is not None:
        raise SetupError("this kiosk is set up already: revoke it and enroll a new one")
    kiosk, token = devices.issue_enrollment(session, kiosk.school, now, link_hours, kiosk)
    code = devices.issue_code(session, kiosk, secret_key, now, code_minutes)
    return Enrollment(kiosk, token, code)


def rename_kiosk(session: Session, kiosk: Kiosk, name: str) -> Kiosk:
    kiosk.label = kiosk_name(name)
    session.flush()
    return kiosk


def set_district(session: Session, name: str, phone: str) -> District:
    district = session.scalar(select(District).limit(1)) or District(name="")
    district.name = one_line(name, "the name")
    district.office_phone = one_line(phone, "the phone")
    session.add(district)
    session.flush()
    return district


def create_school(session: Session, name: str, zone_name: str, phone: str) -> School:
    try:
        ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise SetupError(f"unknown time zone {zone_name!r}") from exc
    if session.scalar(select(School).where(School.name == name)):
        raise SetupError(f"a school named {name!r} exists already")
    school = School(
        name=one_line(name, "the name"),
        timezone=zone_name,
        office_phone=one_line(phone, "the phone"),
    )
    session.add(school)
    session.flush()
    return school


# Offered first in the school form; any other IANA zone may be typed.
COMMON_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
)
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TIME_OF_DAY = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def check_zone(zone_name: str) -> str:
    """A time zone the server knows (America/Chicago), or SetupError."""
    zone_name = (zone_name or "").strip()
    try:
        ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise SetupError(
            f"unknown time zone {zone_name!r} (for example America/Chicago)", "timezone"
        ) from exc
    return zone_name


@dataclass(frozen=True)
class SchoolInput:
    name: str
    timezone: str
    office_phone: str = ""
    hours_open: str = "07:00"
    hours_close: str = "17:00"
    school_days: tuple[int, ...] = (0, 1, 2, 3, 4)


def school_values(school: School) -> dict[str, object]:
    """What an audit entry keeps of a school."""
    return {
        "name": school.name,
        "timezone": school.timezone,
        "office_phone": school.office_phone,
        "hours": f"{school.hours_open}-{school.hours_close}",
        "school_days": school.school_days,
    }


def save_school(session: Session, values: SchoolInput, school: School | None = None) -> School:
    """Create a school, or change one: name, time zone, office phone, hours and days."""
    name = one_line(values.name, "the name")
    if not name:
        raise SetupError("a school needs a name", "name")
    zone_name = check_zone(values.timezone)
    for moment in (values.hours_open, values.hours_close):
        if not TIME_OF_DAY.fullmatch(moment or ""):
            raise SetupError(f"{moment!r} is not a time of day such as 07:30", "hours_open")
    if values.hours_open >= values.hours_close:
        raise SetupError("the school must open before it closes", "hours_close")
    days = sorted(set(values.school_days))
    if not days or any(day < 0 or day > 6 for day in days):
        raise SetupError("choose at least one school day", "school_days")
    same_name = session.scalar(select(School).where(School.name == name))
    if same_name is not None and same_name is not school:
        raise SetupError(f"a school named {name!r} exists already", "name")
    if school is None:
        school = School()
        session.add(school)
    school.name = name
    school.timezone = zone_name
    school.office_phone = one_line(values.office_phone, "the phone")
    school.hours_open, school.hours_close = values.hours_open, values.hours_close
    school.school_days = ",".join(str(day) for day in days)
    session.flush()
    return school


@dataclass(frozen=True)
class ContactInput:
    school: str
    name: str
    address: str
    level: int = 1
    channel: str = "email"
    phone: str = ""
    after_hours: bool = False
    webhook_format: str = "generic"
    webhook_secret: str | None = None
    places: tuple[str, ...] = ()


def _checked_contact(
    values: ContactInput, sms_gateway_missing: tuple[str, ...], secret_on_file: bool = False
) -> str:
    """Apply the contact rules shared by adding and editing; return the address to store.

    secret_on_file: editing a webhook contact whose secret is kept (the form leaves it blank).
    """
    address = one_line(values.address, "the address", "address")
    one_line(values.name, "the name", "name")
    one_line(values.phone, "the phone", "phone")
    if not values.name.strip():
        raise SetupError("a contact needs a name", "name")
    unknown = [p for p in values.places if p not in OFFSITE_PLACES]
    if unknown:
        raise SetupError(
            f"unknown place {', '.join(unknown)}; choose from {', '.join(OFFSITE_PLACES)}",
            "places",
        )
    if values.places and values.after_hours:
        raise SetupError("a contact is routed by --places or --after-hours, not both", "places")
    if values.level not in (1, 2, 3):
        raise SetupError("the level must be 1, 2 or 3", "level")
    if values.channel not in CONTACT_CHANNELS:
        raise SetupError(f"the channel must be one of {', '.join(CONTACT_CHANNELS)}", "channel")
    if values.channel == "email" and "@" not in address:
        raise SetupError("an email contact needs an email address", "address")
    if values.channel == "webhook":
        if not address.startswith(("https://", "http://")):
            raise SetupError("a webhook contact needs an http(s) URL", "address")
        if not values.webhook_secret and not secret_on_file:
            raise SetupError(
                "a webhook contact needs a shared secret (--webhook-secret)", "webhook_secret"
            )
        if values.webhook_format not in WEBHOOK_FORMATS:
            raise SetupError(
                f"the webhook format must be one of {', '.join(WEBHOOK_FORMATS)}",
                "webhook_format",
            )
    if values.channel == "sms" and not address.lstrip("+").isdigit():
        raise SetupError("an SMS contact needs a phone number such as +15550100", "address")
    if values.channel == "sms" and sms_gateway_missing:
        raise SetupError(
            "SMS contacts need the SMS gateway: set "
            + ", ".join(sms_gateway_missing)
            + " first (and in the server's environment)",
            "channel",
        )
    return address.lower() if values.channel == "email" else address


def add_contact(
    session: Session, values: ContactInput, sms_gateway_missing: tuple[str, ...] = ()
) -> Contact:
    """Alert this contact for a school at a level, or for off-site places, by one channel; an
    SMS contact only once the gateway is set up (sms_gateway_missing names what is not)."""
    address = _checked_contact(values, sms_gateway_missing)
    school = find_school(session, values.school)
    user = session.scalar(select(User).where(User.email == address.lower()))
    contact = Contact(
        school_id=school.id,
        level=values.level,
        name=one_line(values.name, "the name"),
        channel=values.channel,
        address=address,
        phone=one_line(values.phone, "the phone"),
        user_id=user.id if user else None,
        after_hours=values.after_hours,
        webhook_format=values.webhook_format,
        webhook_secret=values.webhook_secret,
        places=",".join(dict.fromkeys(values.places)),
    )
    session.add(contact)
    session.flush()
    return contact


def update_contact(
    session: Session,
    contact: Contact,
    values: ContactInput,
    active: bool = True,
    sms_gateway_missing: tuple[str, ...] = (),
) -> Contact:
    """Change a contact under the rules of add_contact. A webhook secret left out (None or
    empty) keeps the one on file: secrets are written, never shown back. A contact that
    leaves the webhook channel drops its secret."""
    keeps_secret = contact.channel == "webhook" and bool(contact.webhook_secret)
    # The gateway is checked when a contact becomes an SMS contact, not on every edit of one.
    missing = sms_gateway_missing if contact.channel != "sms" else ()
    address = _checked_contact(values, missing, secret_on_file=keeps_secret)
    user = session.scalar(select(User).where(User.email == address.lower()))
    contact.level = values.level
    contact.name = one_line(values.name, "the name")
    contact.channel = values.channel
    contact.address = address
    contact.phone = one_line(values.phone, "the phone")
    contact.user_id = user.id if user and values.channel == "email" else None
    contact.after_hours = values.after_hours
    contact.places = ",".join(dict.fromkeys(values.places))
    contact.webhook_format = values.webhook_format
    if values.channel != "webhook":
        contact.webhook_secret = None
    elif values.webhook_secret:
        contact.webhook_secret = values.webhook_secret
    contact.active = active
    session.flush()
    return contact


def find_contact(session: Session, ref: str | int, school: School | None = None) -> Contact:
    """A contact by its number (as `contacts list` shows it), within a school if one is given."""
    contact_id = int(ref) if str(ref).strip().isdigit() else None
    contact = session.get(Contact, contact_id) if contact_id is not None else None
    if contact is None or (school is not None and contact.school_id != school.id):
        raise SetupError(f"no contact {ref!r} (see `contacts list`)")
    return contact


def contacts_of(session: Session, school: School | None = None) -> list[Contact]:
    """Every contact, removed ones too, school by school, by level."""
    query = select(Contact).join(School, School.id == Contact.school_id)
    if school is not None:
        query = query.where(Contact.school_id == school.id)
    return list(
        session.scalars(query.order_by(School.name, Contact.level, Contact.after_hours, Contact.id))
    )


def contact_history(session: Session, contact: Contact) -> int:
    """How many rows refer to this contact: messages sent to it, its acknowledgements, the
    events it acted in, the test alerts it acknowledged. Each keeps the contact's row."""
    references = (
        (OutboxMessage, OutboxMessage.contact_id),
        (Acknowledgement, Acknowledgement.contact_id),
        (EncounterEvent, EncounterEvent.actor_contact_id),
        (TestAlert, TestAlert.acknowledged_contact_id),
    )
    return sum(
        session.scalar(select(func.count()).select_from(model).where(column == contact.id)) or 0
        for model, column in references
    )


def remove_contact(session: Session, contact: Contact) -> str:
    """Stop alerting a contact. One that was never alerted is deleted; one that was is only
    deactivated, so every message, acknowledgement and record naming it stays whole.
    Return "deleted" or "deactivated"."""
    if contact_history(session, contact):
        contact.active = False
        session.flush()
        return "deactivated"
    session.delete(contact)
    session.flush()
    return "deleted"


def shown_address(channel: str, address: str) -> str:
    """Webhook URLs often embed a token: show their scheme and host only."""
    if channel != "webhook":
        return address
    parts = urlsplit(address)
    return f"{parts.scheme}://{parts.hostname}/…" if parts.hostname else "(invalid address)"


def contact_values(contact: Contact) -> dict[str, Any]:
    """The contact's settings as recorded in the audit log. The secret is masked there; a
    webhook URL, which often embeds a token, is kept as its host and a short fingerprint, so
    a change shows without the URL."""
    address = contact.address
    if contact.channel == "webhook":
        fingerprint = hashlib.sha256(address.encode()).hexdigest()[:8]
        address = f"{shown_address('webhook', address)} #{fingerprint}"
    return {
        "school": contact.school.public_id if contact.school else contact.school_id,
        "level": contact.level,
        "name": contact.name,
        "channel": contact.channel,
        "address": address,
        "phone": contact.phone,
        "after_hours": contact.after_hours,
        "places": contact.places,
        "webhook_format": contact.webhook_format,
        "webhook_secret": contact.webhook_secret,
        "active": contact.active,
    }


def valid_pin(pin: str | None) -> bool:
    return pin is None or (len(pin) == 6 and pin.isdigit())


@dataclass(frozen=True)
class UserInput:
    display_name: str
    roles: tuple[str, ...]
    email: str | None = None
    school: str | None = None
    # Hashed before the write: hashing is slow on purpose and never runs under the lock.
    password_hash: str | None = None
    pin_hash: str | None = None


def create_user(session: Session, values: UserInput) -> User:
    """Create a person with roles, for one school or (without one) the whole district."""
    from kiosk.protocol.people import grant_problem

    unknown = [role for role in values.roles if role not in ROLES]
    if unknown or not values.roles:
        raise SetupError(f"roles must be among {', '.join(ROLES)}")
    # The same rule as the people page: desk and designee roles for one school, the others
    # for the whole district.
    for role in values.roles:
        problem = grant_problem(role, values.school)
        if problem:
            raise SetupError(problem)
    school = find_school(session, values.school) if values.school else None
    email = values.email.lower() if values.email else None
    if email and session.scalar(select(User).where(User.email == email)):
        raise SetupError(f"a user with email {values.email} exists already")
    user = User(
        display_name=one_line(values.display_name, "the name"),
        email=email,
        password_hash=values.password_hash,
        pin_hash=values.pin_hash,
    )
    session.add(user)
    session.flush()
    if email:
        # Contacts added before the person: an acknowledgement is recorded against them too.
        session.execute(
            update(Contact)
            .where(Contact.channel == "email", Contact.address == email, Contact.user_id.is_(None))
            .values(user_id=user.id)
        )
    for role in values.roles:
        session.add(RoleGrant(user_id=user.id, role=role, school_id=school.id if school else None))
    session.flush()
    return user


@dataclass(frozen=True)
class RoutingInput:
    level2_after_minutes: int | None = None
    level3_after_minutes: int | None = None
    realert_minutes: int | None = None
    hours: str | None = None
    days: str | None = None


# The escalation minutes each setting takes (the command line's ranges, the pages' too).
LEVEL2_RANGE = (1, 240)
LEVEL3_RANGE = (1, 480)
REALERT_RANGE = (1, 120)


def _minutes(value: int, bounds: tuple[int, int], label: str, field: str) -> int:
    low, high = bounds
    if not low <= value <= high:
        raise SetupError(f"{label} must be between {low} and {high} minutes", field)
    return value


def set_routing(session: Session, school_name: str, values: RoutingInput) -> School:
    """Set a school's escalation timing and hours (outside them, after-hours contacts)."""
    school = find_school(session, school_name)
    if values.level2_after_minutes is not None:
        school.level2_after_minutes = _minutes(
            values.level2_after_minutes, LEVEL2_RANGE, "level 2 after", "level2_after_minutes"
        )
    if values.level3_after_minutes is not None:
        school.level3_after_minutes = _minutes(
            values.level3_after_minutes, LEVEL3_RANGE, "level 3 after", "level3_after_minutes"
        )
    if school.level3_after_minutes <= school.level2_after_minutes:
        raise SetupError("level 3 must come after level 2", "level3_after_minutes")
    if values.realert_minutes is not None:
        school.realert_minutes = _minutes(
            values.realert_minutes, REALERT_RANGE, "re-alert every", "realert_minutes"
        )
    if values.hours is not None:
        hours = values.hours
        if not HOURS.fullmatch(hours) or hours[:5] >= hours[6:]:
            raise SetupError("--hours must look like 07:00-17:00")
        school.hours_open, school.hours_close = hours[:5], hours[6:]
    if values.days is not None:
        days = sorted({int(d) for d in values.days.split(",") if d.strip().isdigit()})
        if not days or any(d > 6 for d in days):
            raise SetupError("--days must list days 0 (Monday) to 6 (Sunday)")
        school.school_days = ",".join(str(d) for d in days)
    session.flush()
    return school


def routing_values(school: School) -> dict[str, Any]:
    """A school's escalation settings as recorded in the audit log."""
    return {
        "level2_after_minutes": school.level2_after_minutes,
        "level3_after_minutes": school.level3_after_minutes,
        "realert_minutes": school.realert_minutes,
        "hours": f"{school.hours_open}-{school.hours_close}",
        "days": school.school_days,
    }


def the_district(session: Session) -> District | None:
    return session.scalar(select(District).limit(1))


def district_values(district: District | None) -> dict[str, Any]:
    """The district's phones and hotline as recorded in the audit log."""
    if district is None:
        return {}
    return {
        "office_phone": district.office_phone,
        "hotline_phone": district.hotline_phone,
        "hotline_enabled": district.hotline_enabled,
    }


def set_district_phones(
    session: Session, office_phone: str, hotline_phone: str, hotline_enabled: bool
) -> District:
    """Set the Superintendent's Office phone (shown when an alert is not delivered) and the
    rapid-response hotline (shown at the desk on escalation, when on)."""
    district = the_district(session)
    if district is None:
        raise SetupError("set the district first: flask --app app schools district")
    district.office_phone = one_line(office_phone, "the phone", "office_phone")
    return set_hotline(session, hotline_phone, hotline_enabled)


def set_hotline(session: Session, phone: str | None, enabled: bool) -> District:
    """Turn the district's rapid-response hotline on or off (shown at the desk on escalation)."""
    district = session.scalar(select(District).limit(1))
    if district is None:
        raise SetupError("set the district first: flask --app app schools district")
    if phone is not None:
        district.hotline_phone = one_line(phone, "the phone", "hotline_phone")
    if enabled and not district.hotline_phone:
        raise SetupError("give the hotline's phone (--phone) to turn it on", "hotline_phone")
    district.hotline_enabled = enabled
    session.flush()
    return district
