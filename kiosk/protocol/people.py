"""The rules for people: who may hold which role where, inviting, disabling, PINs, unlocking.

Shared by the administration pages and the command line, like kiosk.protocol.setup (whose
SetupError they raise). Each operation takes a session and plain values, flushes, and never
commits; hashing a password or PIN is done by the caller, before the write.

Every change that alters what a person may do ends their signed-in sessions in the same
transaction (kiosk.auth.sessions does that on flush for a disabled person or a changed
grant), so a copied cookie stops working on its next request."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kiosk.auth import invitations, sessions, throttle
from kiosk.db import locked
from kiosk.models import ROLES, Contact, Invitation, RoleGrant, School, SigninThrottle, User
from kiosk.protocol.setup import SetupError, find_school, one_line

# Roles held for one school, and roles that only make sense for the whole district.
SCHOOL_ROLES = ("front_desk", "designee")
DISTRICT_ROLES = ("counsel", "reviewer", "admin")
ROLE_LABELS = {
    "front_desk": "Front desk",
    "designee": "Designee",
    "counsel": "Counsel",
    "reviewer": "Reviewer",
    "admin": "Administrator",
}
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
EMAIL_LIMIT = 254
NAME_LIMIT = 120


@dataclass(frozen=True)
class Grant:
    """A role, for one school (by name) or for the whole district (school None)."""

    role: str
    school: str | None = None

    def label(self) -> str:
        where = self.school or "district-wide"
        return f"{ROLE_LABELS.get(self.role, self.role)} ({where})"


def grant_problem(role: str, school: str | None) -> str | None:
    """What is wrong with holding this role at this place, in words, or None."""
    if role not in ROLES:
        return f"unknown role {role!r}; choose from {', '.join(ROLES)}"
    label = ROLE_LABELS[role]
    if role in SCHOOL_ROLES and not school:
        return f"{label} is held for one school: choose the school"
    if role in DISTRICT_ROLES and school:
        return f"{label} is district-wide: leave the school empty"
    return None


def check_grant(grant: Grant) -> None:
    problem = grant_problem(grant.role, grant.school)
    if problem:
        raise SetupError(problem, "role" if grant.role not in ROLES else "school")


def clean_email(value: str | None) -> str:
    try:
        email = one_line((value or "").strip(), "the email").lower()
    except SetupError as exc:
        raise SetupError(str(exc), "email") from exc
    if not email:
        raise SetupError("an email address is needed", "email")
    if len(email) > EMAIL_LIMIT or not EMAIL.fullmatch(email):
        raise SetupError(f"{email!r} is not an email address", "email")
    return email


def clean_name(value: str | None) -> str:
    try:
        name = one_line((value or "").strip(), "the name")
    except SetupError as exc:
        raise SetupError(str(exc), "name") from exc
    if not name:
        raise SetupError("a name is needed", "name")
    if len(name) > NAME_LIMIT:
        raise SetupError(f"the name is longer than {NAME_LIMIT} characters", "name")
    return name


def find_user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None:
        raise SetupError(f"no person with email {email!r}")
    return user


def find_user_by_public_id(session: Session, public_id: str) -> User | None:
    return session.scalar(select(User).where(User.public_id == public_id))


def grants_of(session: Session, user_id: int) -> list[tuple[RoleGrant, School | None]]:
    """The person's grants with their schools, district-wide ones first."""
    rows = session.execute(
        select(RoleGrant, School)
        .outerjoin(School, School.id == RoleGrant.school_id)
        .where(RoleGrant.user_id == user_id)
        .order_by(RoleGrant.school_id.is_not(None), School.name, RoleGrant.role)
    ).all()
    return [(grant, school) for grant, school in rows]


def grant_labels(session: Session, user_id: int) -> list[str]:
    return [
        Grant(grant.role, school.name if school else None).label()
        for grant, school in grants_of(session, user_id)
    ]


def snapshot(session: Session, user: User) -> dict[str, Any]:
    """What an audit entry keeps of a person: no secrets, only whether they are set."""
    return {
        "name": user.display_name,
        "email": user.email,
        "active": user.active,
        "roles": grant_labels(session, user.id),
        "password": "set" if user.password_hash else "not set",
        "pin": "set" if user.pin_hash else "not set",
    }


def _link_contacts(session: Session, user: User) -> None:
    """Contacts added before the person, with the same email, are theirs."""
    if not user.email:
        return
    for contact in session.scalars(
        select(Contact).where(
            Contact.channel == "email", Contact.address == user.email, Contact.user_id.is_(None)
        )
    ):
        contact.user_id = user.id


def _school_id(session: Session, grant: Grant) -> int | None:
    return find_school(session, grant.school).id if grant.school else None


@dataclass(frozen=True)
class Link:
    """A link just made for a person: its token exists only here, never in the database."""

    user: User
    invitation: Invitation
    token: str

    @property
    def purpose(self) -> str:
        return self.invitation.purpose


def invite(
    session: Session,
    name: str,
    email: str,
    grants: Iterable[Grant],
    now: datetime,
    days: int,
    actor: User | None = None,
) -> Link:
    """Create a person with their roles and no password, and an invitation link for them."""
    wanted = list(dict.fromkeys(grants))
    if not wanted:
        raise SetupError("give at least one role", "roles")
    for grant in wanted:
        check_grant(grant)
    clean = clean_email(email)
    if session.scalar(select(User.id).where(User.email == clean)) is not None:
        raise SetupError(f"a person with email {clean} exists already", "email")
    school_ids = [_school_id(session, grant) for grant in wanted]
    user = User(display_name=clean_name(name), email=clean, created_at=now)
    session.add(user)
    session.flush()
    _link_contacts(session, user)
    for grant, school_id in zip(wanted, school_ids, strict=True):
        session.add(RoleGrant(user_id=user.id, role=grant.role, school_id=school_id))
    session.flush()
    invitation, token = invitations.issue(session, user, invitations.INVITATION, now, days, actor)
    return Link(user, invitation, token)


def add_desk_person(session: Session, name: str, grants: Iterable[Grant], now: datetime) -> User:
    """Add someone who only identifies at a desk with a PIN: no email, no password, and
    front-desk roles only (every other role signs in, so needs an email)."""
    wanted = list(dict.fromkeys(grants))
    if not wanted:
        raise SetupError("give at least one role", "roles")
    for grant in wanted:
        check_grant(grant)
    if any(grant.role != "front_desk" for grant in wanted):
        raise SetupError(
            "an email address is needed: everyone but front-desk staff signs in with it", "email"
        )
    school_ids = [_school_id(session, grant) for grant in wanted]
    user = User(display_name=clean_name(name), created_at=now)
    session.add(user)
    session.flush()
    for grant, school_id in zip(wanted, school_ids, strict=True):
        session.add(RoleGrant(user_id=user.id, role=grant.role, school_id=school_id))
    session.flush()
    return user


def send_link(
    session: Session, user: User, now: datetime, days: int, actor: User | None = None
) -> Link:
    """A new link for the person: an invitation if they never set a password, otherwise a
    password reset, which stops the old password and ends their sessions at once."""
    person = locked(session, User, user.id)
    assert person is not None
    if not person.email:
        raise SetupError("this person has no email address, so no link can be sent")
    if not person.active:
        raise SetupError("this person is disabled: enable them first")
    purpose = invitations.RESET if person.password_hash else invitations.INVITATION
    if purpose == invitations.RESET:
        person.password_hash = None
        sessions.end_all(session, {person.id})
    invitation, token = invitations.issue(session, person, purpose, now, days, actor)
    return Link(person, invitation, token)


def _admins_left(session: Session, without_user: int | None = None) -> int:
    query = (
        select(func.count(func.distinct(User.id)))
        .join(RoleGrant, RoleGrant.user_id == User.id)
        .where(RoleGrant.role == "admin", User.active)
    )
    if without_user is not None:
        query = query.where(User.id != without_user)
    return int(session.scalar(query) or 0)


def add_grant(session: Session, user: User, grant: Grant) -> RoleGrant:
    """Give the person a role (their sessions end: they sign in again to use it)."""
    check_grant(grant)
    school_id = _school_id(session, grant)
    existing = session.scalar(
        select(RoleGrant).where(
            RoleGrant.user_id == user.id,
            RoleGrant.role == grant.role,
            RoleGrant.school_id.is_(None)
            if school_id is None
            else RoleGrant.school_id == school_id,
        )
    )
    if existing is not None:
        raise SetupError(f"{user.display_name} already holds {grant.label()}")
    row = RoleGrant(user_id=user.id, role=grant.role, school_id=school_id)
    session.add(row)
    session.flush()
    return row


def remove_grant(session: Session, user: User, grant: Grant, actor: User | None = None) -> None:
    """Take a role away (their sessions end at once). An admin keeps their own admin role,
    so that the district is never left with nobody who can administer it by mistake."""
    school_id = _school_id(session, grant)
    row = session.scalar(
        select(RoleGrant).where(
            RoleGrant.user_id == user.id,
            RoleGrant.role == grant.role,
            RoleGrant.school_id.is_(None)
            if school_id is None
            else RoleGrant.school_id == school_id,
        )
    )
    if row is None:
        raise SetupError(f"{user.display_name} does not hold {grant.label()}")
    if actor is not None and actor.id == user.id and grant.role == "admin":
        raise SetupError(
            "you cannot remove your own administrator role: another administrator must"
        )
    if grant.role == "admin" and user.active and _admins_left(session, user.id) == 0:
        raise SetupError("this is the last active administrator: add another one first")
    session.delete(row)
    session.flush()


def remove_grant_by_id(
    session: Session, user: User, grant_id: int, actor: User | None = None
) -> Grant:
    row = session.scalar(
        select(RoleGrant).where(RoleGrant.id == grant_id, RoleGrant.user_id == user.id)
    )
    if row is None:
        raise SetupError("that role was already removed")
    school = session.get(School, row.school_id) if row.school_id is not None else None
    grant = Grant(row.role, school.name if school else None)
    remove_grant(session, user, grant, actor)
    return grant


def set_active(
    session: Session, user: User, active: bool, now: datetime, actor: User | None = None
) -> bool:
    """Disable (their sessions end at once; no sign-in, no PIN at the desk, open links
    closed) or enable a person. Returns False if nothing changed."""
    person = locked(session, User, user.id)
    assert person is not None
    if person.active == active:
        return False
    if not active:
        if actor is not None and actor.id == person.id:
            raise SetupError(
                "you cannot disable yourself: another administrator must, so that "
                "someone can always administer the district"
            )
        is_admin = session.scalar(
            select(RoleGrant.id).where(RoleGrant.user_id == person.id, RoleGrant.role == "admin")
        )
        if is_admin is not None and _admins_left(session, person.id) == 0:
            raise SetupError("this is the last active administrator: add another one first")
        invitations.withdraw(session, person.id, now)
    person.active = active
    session.flush()
    return True


def set_pin(session: Session, user: User, pin_hash: str | None) -> None:
    """Set (hashed beforehand) or clear the person's front-desk PIN; a new PIN also lifts a
    PIN lockout."""
    person = locked(session, User, user.id)
    assert person is not None
    person.pin_hash = pin_hash
    person.pin_failures = 0
    person.pin_locked_until = None
    session.flush()


def pin_locked(user: User, now: datetime) -> bool:
    return user.pin_locked_until is not None and user.pin_locked_until > now


def signin_locked(session: Session, user: User, now: datetime) -> bool:
    """Whether sign-in with this person's email is locked out after failed tries."""
    if not user.email:
        return False
    key = throttle.email_key(user.email)
    until = session.scalar(select(SigninThrottle.locked_until).where(SigninThrottle.key == key))
    return until is not None and until > now


def unlock(session: Session, user: User) -> str | None:
    """Lift the PIN lockout and the sign-in throttle of the person's email; return the
    throttle key cleared (for the callers' in-process memory of lockouts), if any."""
    person = locked(session, User, user.id)
    assert person is not None
    person.pin_failures = 0
    person.pin_locked_until = None
    key = None
    if person.email:
        key = throttle.email_key(person.email)
        session.execute(delete(SigninThrottle).where(SigninThrottle.key == key))
    session.flush()
    return key


@dataclass(frozen=True)
class Overview:
    """One line of the people list."""

    user: User
    roles: list[str]
    pin_locked: bool
    signin_locked: bool
    link_open: bool


def overview(session: Session, users: list[User], now: datetime) -> list[Overview]:
    """The people list's lines, in a few queries however many people there are."""
    ids = [user.id for user in users]
    roles: dict[int, list[str]] = {user_id: [] for user_id in ids}
    for grant, school in session.execute(
        select(RoleGrant, School)
        .outerjoin(School, School.id == RoleGrant.school_id)
        .where(RoleGrant.user_id.in_(ids))
        .order_by(RoleGrant.school_id.is_not(None), School.name, RoleGrant.role)
    ).all():
        roles[grant.user_id].append(Grant(grant.role, school.name if school else None).label())
    links = set(
        session.scalars(
            select(Invitation.user_id).where(
                Invitation.user_id.in_(ids),
                Invitation.used_at.is_(None),
                Invitation.withdrawn_at.is_(None),
                Invitation.expires_at > now,
            )
        )
    )
    keys = {throttle.email_key(user.email): user.id for user in users if user.email}
    locked_out = {
        keys[key]
        for key in session.scalars(
            select(SigninThrottle.key).where(
                SigninThrottle.key.in_(list(keys)), SigninThrottle.locked_until > now
            )
        )
    }
    return [
        Overview(
            user, roles[user.id], pin_locked(user, now), user.id in locked_out, user.id in links
        )
        for user in users
    ]


def all_people(
    session: Session, school_id: int | None = None, role: str | None = None
) -> list[User]:
    """Everyone, by name; filtered to holders of a role and/or grants at a school (a
    district-wide grant counts for every school)."""
    query = select(User).order_by(func.lower(User.display_name), User.id)
    if school_id is not None or role:
        grant = select(RoleGrant.user_id)
        if role:
            grant = grant.where(RoleGrant.role == role)
        if school_id is not None:
            grant = grant.where((RoleGrant.school_id == school_id) | RoleGrant.school_id.is_(None))
        query = query.where(User.id.in_(grant))
    return list(session.scalars(query))
