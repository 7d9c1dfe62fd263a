"""Adding people from a CSV file: first a plan that says exactly what would change (and what
is wrong, line by line), then the same plan applied in one unit of work.

The file has a header line `name,email,role,school` and one line per role; a person with
several roles has several lines with the same email. An empty school means district-wide.
People already known (by email) keep their name and gain the roles they lack."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.models import RoleGrant, School, User
from kiosk.protocol import people
from kiosk.protocol.people import Grant, Link
from kiosk.protocol.setup import SetupError

HEADER = ("name", "email", "role", "school")
MAX_BYTES = 512 * 1024
MAX_LINES = 2000


@dataclass(frozen=True)
class LineError:
    line: int
    message: str


@dataclass(frozen=True)
class PlannedPerson:
    line: int
    name: str
    email: str
    grants: tuple[Grant, ...]


@dataclass(frozen=True)
class PlannedGrant:
    line: int
    email: str
    name: str
    grant: Grant


@dataclass
class Plan:
    """What applying the file would do; nothing in it has been written."""

    new_people: list[PlannedPerson] = field(default_factory=list)
    new_grants: list[PlannedGrant] = field(default_factory=list)
    unchanged: list[LineError] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return len(self.new_people) + len(self.new_grants)

    def fingerprint(self) -> str:
        """A digest of the changes, so that "Apply" writes what the preview showed."""
        parts = [f"p|{p.email}|{p.name}|{p.grants}" for p in self.new_people]
        parts += [f"g|{g.email}|{g.grant}" for g in self.new_grants]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def decode(raw: bytes) -> str:
    if len(raw) > MAX_BYTES:
        raise SetupError(f"the file is larger than {MAX_BYTES // 1024} KB: split it")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SetupError("the file is not UTF-8 text: save it as CSV UTF-8") from exc


def _rows(text: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = []
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((reader.line_num, [cell.strip() for cell in row]))
    except csv.Error as exc:
        raise SetupError(f"line {reader.line_num}: not readable as CSV ({exc})") from exc
    return rows


def plan_import(session: Session, text: str) -> Plan:
    """Read the file against the database as it is now; write nothing."""
    plan = Plan()
    rows = _rows(text)
    if not rows:
        raise SetupError("the file is empty: it needs the header line name,email,role,school")
    header_line, header = rows[0]
    if tuple(cell.lower() for cell in header) != HEADER:
        raise SetupError(
            f"line {header_line}: the first line must be the header name,email,role,school"
        )
    if len(rows) - 1 > MAX_LINES:
        raise SetupError(f"the file has more than {MAX_LINES} lines: split it")
    schools = {s.name: s for s in session.scalars(select(School))}
    known = {u.email: u for u in session.scalars(select(User).where(User.email.is_not(None)))}
    held: set[tuple[int, str, int | None]] = {
        (g.user_id, g.role, g.school_id) for g in session.scalars(select(RoleGrant))
    }
    new: dict[str, tuple[int, str, list[Grant]]] = {}
    seen: set[tuple[str, Grant]] = set()
    for line, cells in rows[1:]:
        if len(cells) != len(HEADER):
            plan.errors.append(LineError(line, f"expected 4 columns, found {len(cells)}"))
            continue
        name, email, role, school = cells
        try:
            clean_name = people.clean_name(name)
            clean_email = people.clean_email(email)
            grant = Grant(role.lower().replace(" ", "_").replace("-", "_"), school or None)
            people.check_grant(grant)
            if grant.school is not None and grant.school not in schools:
                raise SetupError(f"no school named {grant.school!r}")
        except SetupError as exc:
            plan.errors.append(LineError(line, str(exc)))
            continue
        if (clean_email, grant) in seen:
            plan.unchanged.append(LineError(line, f"repeats {grant.label()} for {clean_email}"))
            continue
        seen.add((clean_email, grant))
        user = known.get(clean_email)
        if user is not None:
            school_id = schools[grant.school].id if grant.school else None
            if (user.id, grant.role, school_id) in held:
                plan.unchanged.append(
                    LineError(line, f"{clean_email} already holds {grant.label()}")
                )
            else:
                plan.new_grants.append(PlannedGrant(line, clean_email, user.display_name, grant))
            continue
        if clean_email in new:
            first_line, first_name, grants = new[clean_email]
            if first_name != clean_name:
                plan.errors.append(
                    LineError(
                        line,
                        f"the name differs from line {first_line} for the same email "
                        f"({clean_name!r}, not {first_name!r})",
                    )
                )
                continue
            grants.append(grant)
            continue
        new[clean_email] = (line, clean_name, [grant])
    plan.new_people = [
        PlannedPerson(line, name, email, tuple(grants))
        for email, (line, name, grants) in new.items()
    ]
    return plan


def apply_import(
    session: Session,
    text: str,
    fingerprint: str,
    now: datetime,
    days: int,
    actor: User | None = None,
) -> tuple[Plan, list[Link]]:
    """Apply the file, as planned again now: refused if it has errors, or if the plan is no
    longer the one previewed (fingerprint). Returns the plan and the new people's links."""
    plan = plan_import(session, text)
    if plan.errors:
        raise SetupError(f"the file has {len(plan.errors)} line(s) with errors: nothing was added")
    if fingerprint and plan.fingerprint() != fingerprint:
        raise SetupError(
            "people or schools changed since the preview: nothing was added; review it again"
        )
    links = [
        people.invite(session, person.name, person.email, person.grants, now, days, actor)
        for person in plan.new_people
    ]
    for planned in plan.new_grants:
        people.add_grant(session, people.find_user(session, planned.email), planned.grant)
    return plan, links
