"""Setting up a district: schools, contacts, people, routing and the hotline. The rules live
here, so the command line today and the administration pages later apply the same ones.
Each operation takes a session and plain values, flushes, and never commits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kiosk.models import ROLES, Contact, District, Kiosk, RoleGrant, School, User
from kiosk.vocabulary import OFFSITE_PLACES

CONTACT_CHANNELS = ("email", "webhook", "sms")
WEBHOOK_FORMATS = ("generic", "slack", "teams")
HOURS = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])")


class SetupError(ValueError):
    """A setting that cannot be taken, with the reason in words."""


def one_line(value: str, label: str) -> str:
    """Refuse line breaks and control characters in names that reach email headers."""
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise SetupError(f"{label} must be one line without control characters")
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


def add_contact(
    session: Session, values: ContactInput, sms_gateway_missing: tuple[str, ...] = ()
) -> Contact:
    """Alert this contact for a school at a level, or for off-site places, by one channel; an
    SMS contact only once the gateway is set up (sms_gateway_missing names what is not)."""
    address = one_line(values.address, "the address")
    unknown = [p for p in values.places if p not in OFFSITE_PLACES]
    if unknown:
        raise SetupError(
            f"unknown place {', '.join(unknown)}; choose from {', '.join(OFFSITE_PLACES)}"
        )
    if values.places and values.after_hours:
        raise SetupError("a contact is routed by --places or --after-hours, not both")
    if values.level not in (1, 2, 3):
        raise SetupError("the level must be 1, 2 or 3")
    if values.channel not in CONTACT_CHANNELS:
        raise SetupError(f"the channel must be one of {', '.join(CONTACT_CHANNELS)}")
    if values.channel == "email" and "@" not in address:
        raise SetupError("an email contact needs an email address")
    if values.channel == "webhook":
        if not address.startswith(("https://", "http://")):
            raise SetupError("a webhook contact needs an http(s) URL")
        if not values.webhook_secret:
            raise SetupError("a webhook contact needs --webhook-secret")
        if values.webhook_format not in WEBHOOK_FORMATS:
            raise SetupError(f"the webhook format must be one of {', '.join(WEBHOOK_FORMATS)}")
    if values.channel == "sms" and not address.lstrip("+").isdigit():
        raise SetupError("an SMS contact needs a phone number such as +15550100")
    if values.channel == "sms" and sms_gateway_missing:
        raise SetupError(
            "SMS contacts need the SMS gateway: set "
            + ", ".join(sms_gateway_missing)
            + " first (and in the server's environment)"
        )
    school = find_school(session, values.school)
    user = session.scalar(select(User).where(User.email == address.lower()))
    contact = Contact(
        school_id=school.id,
        level=values.level,
        name=one_line(values.name, "the name"),
        channel=values.channel,
        address=address.lower() if values.channel == "email" else address,
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
    unknown = [role for role in values.roles if role not in ROLES]
    if unknown or not values.roles:
        raise SetupError(f"roles must be among {', '.join(ROLES)}")
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


def set_routing(session: Session, school_name: str, values: RoutingInput) -> School:
    """Set a school's escalation timing and hours (outside them, after-hours contacts)."""
    school = find_school(session, school_name)
    if values.level2_after_minutes is not None:
        school.level2_after_minutes = values.level2_after_minutes
    if values.level3_after_minutes is not None:
        school.level3_after_minutes = values.level3_after_minutes
    if school.level3_after_minutes <= school.level2_after_minutes:
        raise SetupError("level 3 must come after level 2")
    if values.realert_minutes is not None:
        school.realert_minutes = values.realert_minutes
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


def set_hotline(session: Session, phone: str | None, enabled: bool) -> District:
    """Turn the district's rapid-response hotline on or off (shown at the desk on escalation)."""
    district = session.scalar(select(District).limit(1))
    if district is None:
        raise SetupError("set the district first: flask --app app schools district")
    if phone is not None:
        district.hotline_phone = one_line(phone, "the phone")
    if enabled and not district.hotline_phone:
        raise SetupError("give --phone to turn the hotline on")
    district.hotline_enabled = enabled
    session.flush()
    return district
