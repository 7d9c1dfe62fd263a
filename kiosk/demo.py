"""A demo district for `make run`: seeded only in demo mode, only on an empty database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk.auth.devices import issue_code, issue_enrollment, shown_code
from kiosk.auth.passwords import HashCost, cost_from, hash_password
from kiosk.models import Contact, District, Kiosk, RoleGrant, School, User

# A printed demo credential, used in demo mode only.
DEMO_PASSWORD = "demo-password"  # noqa: S105  # nosec B105
ADMIN_EMAIL = "admin@demo-district.example"
ADMIN_NAME = "Demo Administrator"

SCHOOLS = (
    {
        "name": "Lincoln Elementary School",
        "timezone": "America/New_York",
        "office_phone": "(555) 010-0111",
        "designee": ("Dana Reyes", "dana.reyes@demo-district.example", "(555) 010-0201"),
        "backup": ("Morgan Blake", "morgan.blake@demo-district.example", "(555) 010-0202"),
        "staff": (("Pat Lee", "123456"), ("Sam Ortiz", "234567")),
    },
    {
        "name": "Riverside Middle School",
        "timezone": "America/Chicago",
        "office_phone": "(555) 010-0122",
        "designee": ("Jordan Kim", "jordan.kim@demo-district.example", "(555) 010-0301"),
        "backup": ("Alex Moreno", "alex.moreno@demo-district.example", "(555) 010-0302"),
        "staff": (("Chris Nguyen", "345678"), ("Robin Shah", "456789")),
    },
)


def seed_or_report(session: Session, config: dict[str, Any], now: datetime) -> list[str]:
    """Seed an empty database, then print how to reach the kiosks and the office."""
    lines = []
    if not session.scalar(select(func.count()).select_from(School)):
        seed(session, cost_from(config))
        lines.append("Demo district created (demo data only; nothing here is real).")
    lines += enrollment_lines(session, config, now)
    base = config["BASE_URL"]
    lines += ["", "Office sign-in (any browser that is not a kiosk):", f"  {base}/login"]
    for school in SCHOOLS:
        name, email, _ = school["designee"]
        lines.append(f"  {email}  password: {DEMO_PASSWORD}  ({name}, designee, {school['name']})")
    lines += [
        "",
        f"Administration (schools, people, kiosks): {base}/admin/",
        f"  {ADMIN_EMAIL}  password: {DEMO_PASSWORD}  ({ADMIN_NAME}; sets up a second factor",
        "  with an authenticator app at first sign-in)",
        "",
        "Front-desk staff (they type their PIN at the kiosk after Notify):",
    ]
    for school in SCHOOLS:
        people = ", ".join(f"{name} PIN {pin}" for name, pin in school["staff"])
        lines.append(f"  {school['name']}: {people}")
    lines += ["", f"Demo mail log (alerts land here without SMTP): {base}/demo/mail"]
    return lines


def seed(session: Session, cost: HashCost) -> None:
    """Add the demo district; its password is set here directly (it is shorter than the rules
    allow for a real account, and it is printed for anyone to use)."""
    session.add(District(name="Demo Unified School District", office_phone="(555) 010-0100"))
    password = hash_password(DEMO_PASSWORD, cost)
    for data in SCHOOLS:
        school = School(
            name=data["name"], timezone=data["timezone"], office_phone=data["office_phone"]
        )
        session.add(school)
        session.flush()
        for level, key in ((1, "designee"), (2, "backup")):
            name, email, phone = data[key]
            user = User(display_name=name, email=email, password_hash=password)
            session.add(user)
            session.flush()
            session.add(RoleGrant(user_id=user.id, role="designee", school_id=school.id))
            session.add(
                Contact(
                    school_id=school.id,
                    level=level,
                    name=name,
                    channel="email",
                    address=email,
                    phone=phone,
                    user_id=user.id,
                )
            )
        for name, pin in data["staff"]:
            user = User(display_name=name, pin_hash=hash_password(pin, cost))
            session.add(user)
            session.flush()
            session.add(RoleGrant(user_id=user.id, role="front_desk", school_id=school.id))
    admin = User(display_name=ADMIN_NAME, email=ADMIN_EMAIL, password_hash=password)
    session.add(admin)
    session.flush()
    session.add(RoleGrant(user_id=admin.id, role="admin", school_id=None))
    session.flush()


def enrollment_lines(session: Session, config: dict[str, Any], now: datetime) -> list[str]:
    """Give every school a kiosk link: renew unenrolled kiosks, or create one per school."""
    minutes = config["ENROLLMENT_CODE_MINUTES"]
    lines = [
        "",
        "Kiosk enrollment links (open one on the device that will be the kiosk; a code "
        f"works for {minutes} minutes):",
    ]
    base = config["BASE_URL"]
    for school in session.scalars(select(School).order_by(School.id)):
        kiosks = session.scalars(
            select(Kiosk).where(Kiosk.school_id == school.id, Kiosk.revoked_at.is_(None))
        ).all()
        waiting = [k for k in kiosks if k.enrolled_at is None]
        if kiosks and not waiting:
            lines.append(f"  {school.name}: kiosk already enrolled")
            continue
        kiosk = waiting[0] if waiting else None
        kiosk, token = issue_enrollment(session, school, now, config["ENROLLMENT_HOURS"], kiosk)
        code = issue_code(session, kiosk, config["SECRET_KEY"], now, minutes)
        lines.append(f"  {school.name}: {base}/enroll/{token}")
        lines.append(f"    or type the code {shown_code(code)} at {base}/enroll")
    return lines
