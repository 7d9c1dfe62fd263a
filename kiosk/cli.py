"""flask --app app ...: db, demo, keys, schools, contacts, users, kiosks, outbox."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from kiosk import audit, audit_mail, backup, credentials, logs, migrate, webdb
from kiosk import db as database_module
from kiosk.admin.changes import record_change
from kiosk.api.cli import api_tokens_cli
from kiosk.audit import verify
from kiosk.auth import invitations, passwords, second_factor
from kiosk.auth.devices import revoke, shown_code
from kiosk.clock import now_utc
from kiosk.config import ConfigError, missing_sms_settings, write_keys_file
from kiosk.delivery import deliverer_for
from kiosk.keys_rotate import keys_rotate
from kiosk.models import ROLES, AuditVerification, Contact, District, Encounter, School, User
from kiosk.notify.links import Links
from kiosk.protocol import people, roster, scriptstore, search, setup
from kiosk.protocol.scriptstore import current_script_version
from kiosk.protocol.test_alerts import send_test_alert
from kiosk.retention_cli import retention_cli
from kiosk.vocabulary import OFFSITE_PLACES

db_cli = AppGroup("db", help="Database migrations.")
users_cli = AppGroup("users", help="People who sign in or identify at a kiosk.")
kiosks_cli = AppGroup("kiosks", help="Kiosk devices.")
outbox_cli = AppGroup("outbox", help="Delivery of alerts.")
keys_cli = AppGroup("keys", help="Instance keys.")
schools_cli = AppGroup("schools", help="The district and its schools.")
contacts_cli = AppGroup("contacts", help="Who is alerted for a school, at which level.")
audit_cli = AppGroup("audit", help="The hash-chained audit log.")
alerts_cli = AppGroup("alerts", help="Test alerts: check a school's routing end to end.")
scripts_cli = AppGroup("scripts", help="Script versions and counsel's approval.")
review_cli = AppGroup("review", help="The district's review log.")


def init_app(app: Flask) -> None:
    for group in (
        db_cli,
        users_cli,
        kiosks_cli,
        outbox_cli,
        keys_cli,
        schools_cli,
        contacts_cli,
        audit_cli,
        alerts_cli,
        scripts_cli,
        api_tokens_cli,
        review_cli,
    ):
        app.cli.add_command(group)
    app.cli.add_command(demo_command)
    app.cli.add_command(backup.backup_cli)
    app.cli.add_command(retention_cli)
    keys_cli.add_command(backup.keys_export)
    keys_cli.add_command(keys_rotate)
    for command in app.cli.commands.values():
        _report_database_errors(command)


def _report_database_errors(command: click.Command) -> None:
    """A database that cannot be reached or used stops a command in one line, not a
    traceback. The line is the driver's own first line: it names the host, never a password."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _report_database_errors(sub)
        return
    callback = command.callback
    if callback is None or getattr(callback, "reports_database_errors", False):
        return

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            first = (str(exc.orig or exc).strip().splitlines() or ["no message"])[0]
            raise click.ClickException(
                f"the database (KIOSK_DATABASE_URL) could not be used: {first}"
            ) from None

    run.reports_database_errors = True  # type: ignore[attr-defined]
    command.callback = run


def upgrade_database(app: Flask) -> None:
    """Migrate to head and store the built-in script pack if none is stored yet."""
    migrate.upgrade(app.config["DATABASE_URL"])
    with database_module.unit_of_work(webdb.database(app).session_factory) as session:
        current_script_version(session, now_utc())


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest revision."""
    upgrade_database(current_app)
    click.echo("database: up to date")


@keys_cli.command("create")
def keys_create() -> None:
    """Write instance/keys.json once (mode 0600); existing keys are kept. Needs no settings."""
    try:
        path = write_keys_file(current_app.instance_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"keys: {path} (mode 0600)")


def find_school(session, name: str) -> School:  # type: ignore[no-untyped-def]
    try:
        return setup.find_school(session, name)
    except setup.SetupError as exc:
        names = ", ".join(session.scalars(select(School.name).order_by(School.name))) or "none"
        raise click.ClickException(f"{exc} (schools: {names})") from exc


@contextlib.contextmanager
def setting_up() -> Iterator[Session]:
    """One unit of work for a setup command; a rule it breaks is one line on stderr."""
    try:
        with webdb.unit_of_work() as session:
            yield session
    except setup.SetupError as exc:
        raise click.ClickException(str(exc)) from exc


@users_cli.command("create")
@click.option("--email", default=None, help="Sign-in email (office staff).")
@click.option("--name", "display_name", required=True, help="Name as shown to colleagues.")
@click.option("--role", "roles", multiple=True, type=click.Choice(ROLES), required=True)
@click.option("--school", default=None, help="Limit the roles to this school.")
@click.option(
    "--password",
    default=None,
    hidden=True,
    expose_value=False,
    callback=credentials.refuse_password_argument,
)
@click.option(
    "--pin",
    is_flag=False,
    flag_value=credentials.ASK,
    default=None,
    help="Give a six-digit PIN (front-desk staff): asked for, or read from KIOSK_NEW_PIN.",
)
def users_create(
    email: str | None,
    display_name: str,
    roles: tuple[str, ...],
    school: str | None,
    pin: str | None,
) -> None:
    """Create a person with roles; office staff (--email) get a password, asked for or read
    from KIOSK_NEW_PASSWORD; desk staff get a PIN (--pin)."""
    password = credentials.new_password() if email else None
    problem = passwords.password_problem(password, email) if password is not None else None
    if problem:
        raise click.ClickException(f"the password was not accepted. {problem}")
    pin = credentials.new_pin() if credentials.pin_wanted(pin) else None
    if not setup.valid_pin(pin):
        raise click.ClickException("the PIN must be six digits")
    # Hashing is slow on purpose: done before the write lock is taken.
    values = setup.UserInput(
        display_name=display_name,
        roles=roles,
        email=email,
        school=school,
        password_hash=passwords.hash_password(password) if password else None,
        pin_hash=passwords.hash_password(pin) if pin else None,
    )
    with setting_up() as session:
        user = setup.create_user(session, values)
        _record(session, "user.create", user, None)
    click.echo(f"user created: {display_name} ({', '.join(roles)})")


@users_cli.command("reset-second-factor")
@click.argument("address", metavar="EMAIL")
def users_reset_second_factor(address: str) -> None:
    """Remove a person's second factor (a lost phone): their sessions end, and they set it up
    again at their next sign-in if their role requires it."""
    address = address.strip().lower()
    with setting_up() as session:
        user = session.scalar(select(User).where(User.email == address))
        if user is None:
            raise click.ClickException(f"no one signs in as {address}")
        had = second_factor.reset(session, user)
        if had:
            record_change(
                session,
                None,
                "user.reset_second_factor",
                f"user:{user.public_id}",
                {"second_factor": "on"},
                {"second_factor": "off"},
            )
    if had:
        click.echo(f"second factor reset for {address}: set up again at next sign-in")
    else:
        click.echo(f"{address} had no second factor; nothing changed")


def _grant(value: str) -> people.Grant:
    """ROLE or ROLE:SCHOOL, as --grant takes it."""
    role, _, school = value.partition(":")
    return people.Grant(role.strip(), school.strip() or None)


def _echo_link(link: people.Link, mailed: bool) -> None:
    click.echo(invitations.welcome_link(current_app.config["BASE_URL"], link.token))
    when = invitations.expiry_words(link.invitation.expires_at)
    sent = f"; emailed to {link.user.email}" if mailed else "; not emailed (no email set up)"
    click.echo(f"(works once, until {when}{sent})")


def _record(session: Session, action: str, user: User, before: Any, after: Any = None) -> None:
    after = after if after is not None else people.snapshot(session, user)
    record_change(session, None, action, f"user:{user.public_id}", before, after)


@users_cli.command("list")
@click.option("--school", default=None, help="Only people with a role at this school.")
@click.option("--role", type=click.Choice(ROLES), default=None)
def users_list(school: str | None, role: str | None) -> None:
    """List people: email, name, roles, active or disabled, password, PIN, lockouts."""
    now = now_utc()
    with webdb.database().session_factory() as session:
        school_id = find_school(session, school).id if school else None
        lines = people.overview(session, people.all_people(session, school_id, role), now)
        rows = [
            (
                line.user.email or "-",
                line.user.display_name,
                "; ".join(line.roles) or "no roles",
                "active" if line.user.active else "DISABLED",
                "set" if line.user.password_hash else "not set",
                "set" if line.user.pin_hash else "-",
                ", ".join(
                    word
                    for word, locked in (("PIN", line.pin_locked), ("sign-in", line.signin_locked))
                    if locked
                )
                or "no",
            )
            for line in lines
        ]
    header = ("EMAIL", "NAME", "ROLES", "STATUS", "PASSWORD", "PIN", "LOCKED")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@users_cli.command("invite")
@click.option("--name", "display_name", required=True, help="Name as shown to colleagues.")
@click.option("--email", required=True, help="Where the link is sent; the sign-in name.")
@click.option(
    "--grant",
    "grants",
    multiple=True,
    required=True,
    help='A role, ROLE:SCHOOL for front_desk and designee (e.g. "designee:Oak School"), '
    "ROLE alone for counsel, reviewer and admin. Repeat for several.",
)
def users_invite(display_name: str, email: str, grants: tuple[str, ...]) -> None:
    """Create a person without a password and print their one-time invitation link."""
    now = now_utc()
    with setting_up() as session:
        link = people.invite(
            session,
            display_name,
            email,
            [_grant(g) for g in grants],
            now,
            current_app.config["INVITATION_DAYS"],
        )
        _record(session, "user.invite", link.user, None)
        mailed = invitations.mail_link(
            session, current_app.config, link.user, link.invitation, link.token, now
        )
    _echo_link(link, mailed)


@users_cli.command("reset-link")
@click.argument("email")
def users_reset_link(email: str) -> None:
    """Print a new one-time link: a password reset (the old password stops working and their
    sessions end), or a new invitation for someone who never set a password."""
    now = now_utc()
    with setting_up() as session:
        user = people.find_user(session, email)
        before = people.snapshot(session, user)
        link = people.send_link(session, user, now, current_app.config["INVITATION_DAYS"])
        _record(session, f"user.{link.purpose}_link", user, before)
        mailed = invitations.mail_link(
            session, current_app.config, link.user, link.invitation, link.token, now
        )
    _echo_link(link, mailed)


def _change_user(email: str, action: str, change: Any) -> User:
    with setting_up() as session:
        user = people.find_user(session, email)
        before = people.snapshot(session, user)
        change(session, user)
        session.refresh(user)
        _record(session, action, user, before)
    return user


@users_cli.command("disable")
@click.argument("email")
def users_disable(email: str) -> None:
    """Disable a person: signed out everywhere at once, no sign-in, no PIN at the desk."""
    now = now_utc()
    _change_user(email, "user.disable", lambda s, u: people.set_active(s, u, False, now))
    click.echo(f"disabled: {email}")


@users_cli.command("enable")
@click.argument("email")
def users_enable(email: str) -> None:
    """Enable a disabled person again."""
    now = now_utc()
    _change_user(email, "user.enable", lambda s, u: people.set_active(s, u, True, now))
    click.echo(f"enabled: {email}")


@users_cli.command("grant")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
@click.option("--school", default=None, help="For front_desk and designee.")
def users_grant(email: str, role: str, school: str | None) -> None:
    """Give a person a role (their sessions end; they sign in again)."""
    grant = people.Grant(role, school)
    _change_user(email, "user.grant", lambda s, u: people.add_grant(s, u, grant))
    click.echo(f"granted: {grant.label()} to {email}")


@users_cli.command("revoke")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
@click.option("--school", default=None, help="For front_desk and designee.")
def users_revoke(email: str, role: str, school: str | None) -> None:
    """Take a role from a person (their sessions end at once)."""
    grant = people.Grant(role, school)
    _change_user(email, "user.revoke", lambda s, u: people.remove_grant(s, u, grant))
    click.echo(f"revoked: {grant.label()} from {email}")


@users_cli.command("unlock")
@click.argument("email")
def users_unlock(email: str) -> None:
    """Lift a person's PIN lockout and the sign-in lockout of their email."""
    _change_user(email, "user.unlock", lambda s, u: people.unlock(s, u))
    click.echo(f"unlocked: {email}")


@users_cli.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
def users_import(path: str, dry_run: bool) -> None:
    """Add people and roles from a CSV file with the header name,email,role,school."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(roster.MAX_BYTES + 1)
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from exc
    try:
        text = roster.decode(raw)
    except setup.SetupError as exc:
        raise click.ClickException(str(exc)) from exc
    with webdb.database().session_factory() as session:
        try:
            plan = roster.plan_import(session, text)
        except setup.SetupError as exc:
            raise click.ClickException(str(exc)) from exc
    for person in plan.new_people:
        grants = ", ".join(g.label() for g in person.grants)
        click.echo(f"line {person.line}: add {person.name} <{person.email}>: {grants}")
    for planned in plan.new_grants:
        click.echo(f"line {planned.line}: give {planned.email} {planned.grant.label()}")
    for same in plan.unchanged:
        click.echo(f"line {same.line}: no change ({same.message})")
    for error in plan.errors:
        click.echo(f"line {error.line}: error: {error.message}", err=True)
    if plan.errors:
        raise click.ClickException(f"{len(plan.errors)} line(s) with errors; nothing was written")
    if dry_run:
        click.echo(f"dry run: {plan.changes} change(s), nothing written")
        return
    now = now_utc()
    with setting_up() as session:
        plan, links = roster.apply_import(
            session, text, plan.fingerprint(), now, current_app.config["INVITATION_DAYS"]
        )
        for link in links:
            _record(session, "user.invite", link.user, None)
        for planned in plan.new_grants:
            user = people.find_user(session, planned.email)
            _record(session, "user.grant", user, None, {"role added": planned.grant.label()})
        mailed = [
            invitations.mail_link(
                session, current_app.config, link.user, link.invitation, link.token, now
            )
            for link in links
        ]
    for link, was_mailed in zip(links, mailed, strict=True):
        click.echo(f"{link.user.email}:")
        _echo_link(link, was_mailed)
    click.echo(f"imported: {len(links)} people added, {len(plan.new_grants)} role(s) added")


@schools_cli.command("district")
@click.option("--name", required=True)
@click.option("--phone", default="", help="The Superintendent's Office phone number.")
def schools_district(name: str, phone: str) -> None:
    """Set the district's name and office phone (shown when an alert is not delivered)."""
    with setting_up() as session:
        district = session.scalar(select(District).limit(1))
        before = (
            {"name": district.name, "office_phone": district.office_phone}
            if district is not None
            else None
        )
        district = setup.set_district(session, name, phone)
        after = {"name": district.name, "office_phone": district.office_phone}
        record_change(session, None, "district.update", "district", before, after)
    click.echo(f"district: {name}")


@schools_cli.command("create")
@click.option("--name", required=True)
@click.option("--timezone", "zone_name", required=True, help="For example America/New_York.")
@click.option("--phone", default="", help="The school office's phone number.")
def schools_create(name: str, zone_name: str, phone: str) -> None:
    """Add a school with its time zone and office phone."""
    with setting_up() as session:
        school = setup.create_school(session, name, zone_name, phone)
        session.flush()
        record_change(
            session,
            None,
            "school.create",
            f"school:{school.public_id}",
            None,
            setup.school_values(school),
        )
    click.echo(f"school created: {name}")


@contacts_cli.command("add")
@click.option("--school", required=True)
@click.option("--level", type=click.IntRange(1, 3), default=1, show_default=True)
@click.option("--name", required=True)
@click.option(
    "--channel", type=click.Choice(["email", "webhook", "sms"]), default="email", show_default=True
)
@click.option(
    "--address",
    "--email",
    "address",
    required=True,
    help="Email address, webhook URL, or phone number for SMS.",
)
@click.option("--phone", default="", help="Shown at the desk when an alert is not delivered.")
@click.option("--after-hours", is_flag=True, help="Takes level 1 outside school hours.")
@click.option(
    "--webhook-format",
    type=click.Choice(["generic", "slack", "teams"]),
    default="generic",
    show_default=True,
)
@click.option("--webhook-secret", default=None, help="Shared secret for the signature header.")
@click.option(
    "--places",
    default="",
    help="Off-site places this contact is alerted for, with level 1, instead of the usual "
    f"levels: comma-separated, from {', '.join(OFFSITE_PLACES)}.",
)
def contacts_add(
    school: str,
    level: int,
    name: str,
    channel: str,
    address: str,
    phone: str,
    after_hours: bool,
    webhook_format: str,
    webhook_secret: str | None,
    places: str,
) -> None:
    """Alert this contact for a school at an escalation level, by email, webhook or SMS."""
    chosen = tuple(p.strip() for p in places.split(",") if p.strip())
    values = setup.ContactInput(
        school=school,
        name=name,
        address=address,
        level=level,
        channel=channel,
        phone=phone,
        after_hours=after_hours,
        webhook_format=webhook_format,
        webhook_secret=webhook_secret,
        places=chosen,
    )
    gateway_missing = tuple(missing_sms_settings(current_app.config))
    with setting_up() as session:
        find_school(session, school)
        contact = setup.add_contact(session, values, sms_gateway_missing=gateway_missing)
        record_change(
            session,
            None,
            "contact.create",
            f"contact:{contact.id}",
            None,
            setup.contact_values(contact),
        )
    if chosen:
        where = ", ".join(dict.fromkeys(chosen))
        click.echo(f"contact added: {name}, for {where}, {channel}, {school}")
    else:
        click.echo(f"contact added: {name}, level {level}, {channel}, {school}")


@contacts_cli.command("list")
@click.option("--school", default=None, help="Only this school's contacts.")
def contacts_list(school: str | None) -> None:
    """List contacts: number, school, level, name, channel, address, and whether active."""
    with webdb.database().session_factory() as session:
        chosen = find_school(session, school) if school else None
        rows = [
            (
                str(c.id),
                c.school.name,
                _routed(c),
                c.name,
                c.channel,
                setup.shown_address(c.channel, c.address),
                "yes" if c.active else "no (removed)",
            )
            for c in setup.contacts_of(session, chosen)
        ]
    if not rows:
        click.echo("no contacts yet (contacts add --school NAME ...)")
        return
    _table(("ID", "SCHOOL", "ROUTED", "NAME", "CHANNEL", "ADDRESS", "ACTIVE"), rows)


def _routed(contact: Contact) -> str:
    if contact.places:
        return "places " + contact.places
    if contact.after_hours:
        return "after hours"
    return f"level {contact.level}"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@contacts_cli.command("remove")
@click.argument("contact_ref", metavar="ID")
def contacts_remove(contact_ref: str) -> None:
    """Stop alerting a contact (ID from `contacts list`): deleted if never alerted, otherwise
    deactivated so that what was sent to it stays on record."""
    with setting_up() as session:
        contact = setup.find_contact(session, contact_ref)
        before = setup.contact_values(contact)
        name, school, contact_id = contact.name, contact.school.name, contact.id
        outcome = setup.remove_contact(session, contact)
        after = None if outcome == "deleted" else setup.contact_values(contact)
        record_change(
            session,
            None,
            f"contact.{'delete' if outcome == 'deleted' else 'deactivate'}",
            f"contact:{contact_id}",
            before,
            after,
        )
    if outcome == "deleted":
        click.echo(f"contact {contact_ref} deleted: {name}, {school}")
    else:
        click.echo(
            f"contact {contact_ref} deactivated: {name}, {school} (alerts were sent to it; "
            "its history is kept)"
        )


@alerts_cli.command("test")
@click.option("--school", required=True)
def alerts_test(school: str) -> None:
    """Send a test alert to the school's level-1 contacts of this moment, marked TEST; it
    needs acknowledging like a real one, and never appears as a record."""
    links = Links.from_settings(current_app.config)
    with setting_up() as session:
        row = find_school(session, school)
        sent = send_test_alert(session, row, links, now_utc())
        record_change(
            session,
            None,
            "test_alert.send",
            f"test_alert:{sent.test.public_id}",
            None,
            {"school": row.public_id, "contacts": [c.id for c in sent.contacts]},
        )
        lines = [
            f"  {c.name}, {c.channel} {setup.shown_address(c.channel, c.address)}"
            for c in sent.contacts
        ]
        public_id, when = sent.test.public_id, "outside school hours" if sent.after_hours else ""
    click.echo(
        f"test alert {public_id} sent for {school}{' ' + when if when else ''} to "
        f"{len(lines)} level-1 contact{'' if len(lines) == 1 else 's'}:"
    )
    for line in lines:
        click.echo(line)
    click.echo("sent through the outbox; who acknowledged shows on /admin/test-alerts")


@schools_cli.command("routing")
@click.option("--school", required=True)
@click.option(
    "--level2-after",
    "level2_after_minutes",
    type=click.IntRange(1, 240),
    default=None,
    help="Minutes after the tap before level 2 is alerted (default 3).",
)
@click.option(
    "--level3-after",
    "level3_after_minutes",
    type=click.IntRange(1, 480),
    default=None,
    help="Minutes after the tap before level 3 is alerted (default 10).",
)
@click.option(
    "--realert-every",
    "realert_minutes",
    type=click.IntRange(1, 120),
    default=None,
    help="Minutes between reminders after the last level (default 5).",
)
@click.option("--hours", default=None, help="School hours in local time, e.g. 07:00-17:00.")
@click.option("--days", default=None, help="School days, Monday=0, e.g. 0,1,2,3,4.")
def schools_routing(
    school: str,
    level2_after_minutes: int | None,
    level3_after_minutes: int | None,
    realert_minutes: int | None,
    hours: str | None,
    days: str | None,
) -> None:
    """Set a school's escalation timing and hours (outside them, after-hours contacts)."""
    values = setup.RoutingInput(
        level2_after_minutes=level2_after_minutes,
        level3_after_minutes=level3_after_minutes,
        realert_minutes=realert_minutes,
        hours=hours,
        days=days,
    )
    with setting_up() as session:
        before = setup.routing_values(find_school(session, school))
        row = setup.set_routing(session, school, values)
        record_change(
            session,
            None,
            "routing.update",
            f"school:{row.public_id}",
            before,
            setup.routing_values(row),
        )
        click.echo(
            f"{row.name}: level 2 after {row.level2_after_minutes} min, level 3 after "
            f"{row.level3_after_minutes} min, reminders every {row.realert_minutes} min; hours "
            f"{row.hours_open}-{row.hours_close} on days {row.school_days}"
        )


@schools_cli.command("hotline")
@click.option("--phone", default=None)
@click.option("--on/--off", "enabled", default=True)
def schools_hotline(phone: str | None, enabled: bool) -> None:
    """Turn the district's rapid-response hotline on or off (shown at the desk on escalation)."""
    with setting_up() as session:
        before = setup.district_values(setup.the_district(session))
        district = setup.set_hotline(session, phone, enabled)
        record_change(
            session,
            None,
            "district.phones",
            f"district:{district.id}",
            before,
            setup.district_values(district),
        )
    click.echo(f"hotline: {'on' if enabled else 'off'}")


@kiosks_cli.command("enroll")
@click.option("--school", required=True, help="The school this kiosk serves.")
@click.option("--label", default="Front desk", help="The kiosk's name, such as Front desk.")
def kiosks_enroll(school: str, label: str) -> None:
    """Create a kiosk and print its one-time enrollment link and short code."""
    config = current_app.config
    with setting_up() as session:
        enrollment = setup.enroll_kiosk(
            session,
            find_school(session, school),
            label,
            now_utc(),
            secret_key=config["SECRET_KEY"],
            link_hours=config["ENROLLMENT_HOURS"],
            code_minutes=config["ENROLLMENT_CODE_MINUTES"],
        )
        kiosk = enrollment.kiosk
        record_change(
            session,
            None,
            "kiosk.enroll",
            f"kiosk:{kiosk.public_id}",
            None,
            {"school": kiosk.school.name, "name": kiosk.label},
        )
    click.echo(enrollment_link(config["BASE_URL"], enrollment.token))
    click.echo(f"(valid for {config['ENROLLMENT_HOURS']} hours, once)")
    click.echo(
        f"or type the code {shown_code(enrollment.code)} at {config['BASE_URL']}/enroll "
        f"(valid for {config['ENROLLMENT_CODE_MINUTES']} minutes, once)"
    )


@kiosks_cli.command("rename")
@click.argument("kiosk_ref", metavar="ID")
@click.argument("name", metavar="NAME")
def kiosks_rename(kiosk_ref: str, name: str) -> None:
    """Rename a kiosk (by ID or public id), as the kiosks page and `kiosks list` show it."""
    with setting_up() as session:
        kiosk = setup.find_kiosk(session, kiosk_ref)
        before = {"school": kiosk.school.name, "name": kiosk.label}
        setup.rename_kiosk(session, kiosk, name)
        record_change(
            session,
            None,
            "kiosk.rename",
            f"kiosk:{kiosk.public_id}",
            before,
            {"school": kiosk.school.name, "name": kiosk.label},
        )
        school, label = kiosk.school.name, kiosk.label
    click.echo(f"kiosk {kiosk_ref} ({school}) is now named {label}")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


@kiosks_cli.command("list")
def kiosks_list() -> None:
    """List every kiosk: school, label, enrolled, last check-in, revoked."""
    with webdb.database().session_factory() as session:
        kiosks = setup.all_kiosks(session)
        rows = [
            (
                str(k.id),
                k.public_id,
                k.school.name,
                k.label,
                _when(k.enrolled_at) if k.enrolled_at else "not yet",
                _when(k.last_seen_at),
                _when(k.revoked_at) if k.revoked_at else "no",
            )
            for k in kiosks
        ]
    if not rows:
        click.echo("no kiosks yet (kiosks enroll --school NAME)")
        return
    header = ("ID", "PUBLIC ID", "SCHOOL", "LABEL", "ENROLLED", "LAST CHECK-IN", "REVOKED")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@kiosks_cli.command("revoke")
@click.argument("kiosk_ref", metavar="ID")
def kiosks_revoke(kiosk_ref: str) -> None:
    """Take a kiosk back (by ID or public id): at its next request it says it is not set up."""
    now = now_utc()
    with setting_up() as session:
        kiosk = setup.find_kiosk(session, kiosk_ref)
        changed = revoke(session, kiosk, now)
        if changed:
            audit.record(
                session,
                current_app.config["AUDIT_KEY"],
                now,
                actor="cli",
                action="kiosk.revoke",
                subject=f"kiosk:{kiosk.public_id}",
            )
        school, label = kiosk.school.name, kiosk.label
    if changed:
        click.echo(f"revoked kiosk {kiosk_ref} ({school}, {label})")
    else:
        click.echo(f"kiosk {kiosk_ref} ({school}, {label}) was already revoked")


def enrollment_link(base_url: str, token: str) -> str:
    return f"{base_url}/enroll/{token}"


@outbox_cli.command("run")
def outbox_run() -> None:
    """Deliver alerts in this process until stopped (for a dedicated worker)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    logs.configure_app_logging(level=os.environ.get("KIOSK_LOG_LEVEL", "info").upper())
    deliverer = deliverer_for(app)
    deliverer.start()
    stop = False

    def _stop(*_args: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo("outbox: delivering (Ctrl-C to stop)")
    while not stop and deliverer.is_alive():
        time.sleep(0.2)
    deliverer.stop()
    sys.exit(0)


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Demo mode only: migrate, seed a demo district on an empty database, print kiosk links."""
    from kiosk import demo

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config["DEMO"]:
        raise click.ClickException("`demo` runs only in demo mode (KIOSK_DEMO=1)")
    upgrade_database(app)
    with database_module.unit_of_work(webdb.database(app).session_factory) as session:
        lines = demo.seed_or_report(session, app.config, now_utc())
    for line in lines:
        click.echo(line)


# `audit verify` exit codes: each names a different thing for the operator to do.
EXIT_CHAIN_BROKEN = 1
EXIT_RECORD_CHANGED = 6
EXIT_WRONG_KEY = 3
EXIT_ENTRIES_REMOVED = 4
EXIT_CHECKPOINT_UNTRUSTED = 5


def audit_checkpoint_path() -> Path:
    return Path(
        current_app.config.get("AUDIT_CHECKPOINT_FILE")
        or Path(current_app.instance_path) / "audit-checkpoints.jsonl"
    )


def audit_failure(message: str, code: int) -> click.exceptions.Exit:
    """One line on stderr, and the exit code that says which failure it was."""
    click.echo(f"Error: {message}", err=True)
    return click.exceptions.Exit(code)


class AuditProblem(Exception):
    """What `audit verify` found wrong, with the exit code that names it."""

    def __init__(
        self, message: str, code: int, first_bad_seq: int | None = None, wrong_key: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.first_bad_seq = first_bad_seq
        self.wrong_key = wrong_key


def checked_audit_chain(command: str) -> tuple[audit.Verification, audit.CheckpointFile]:
    """Check the chain and the record, keep the outcome for the review pages, and raise
    the exit on the first failure."""
    try:
        result, points = _check_chain()
    except AuditProblem as problem:
        _keep_outcome(command, False, 0, problem.first_bad_seq, problem.wrong_key)
        raise audit_failure(problem.message, problem.code) from None
    _keep_outcome(command, True, result.checked, None, False)
    return result, points


def _keep_outcome(
    command: str, ok: bool, checked: int, first_bad_seq: int | None, wrong_key: bool
) -> None:
    with webdb.unit_of_work() as session:
        session.add(
            AuditVerification(
                at=now_utc(),
                command=command,
                ok=ok,
                checked=checked,
                first_bad_seq=first_bad_seq,
                wrong_key=wrong_key,
            )
        )


def _check_chain() -> tuple[audit.Verification, audit.CheckpointFile]:
    """Verify the chain, against the latest signed checkpoint and the head row, then every
    row of the record against its latest entry; raise AuditProblem on the first failure."""
    key = current_app.config["AUDIT_KEY"]
    path = audit_checkpoint_path()
    points = audit.read_checkpoints(path, key)
    latest = points.latest
    with webdb.database().session_factory() as session:
        result = verify(session, key)
        if result.wrong_key:
            raise AuditProblem(
                f"wrong audit key (fingerprint {result.expected_fingerprint} expected, "
                f"this key is {result.given_fingerprint}); the entries were not checked",
                EXIT_WRONG_KEY,
                wrong_key=True,
            )
        if not result.ok:
            hint = (
                "; this chain began before first entries named their key: "
                "if the audit key may have changed, check it first"
                if result.first_bad_seq == 1 and not result.fingerprinted
                else ""
            )
            raise AuditProblem(
                f"audit chain broken at entry {result.first_bad_seq} "
                f"({result.checked} entries before it verified){hint}",
                EXIT_CHAIN_BROKEN,
                result.first_bad_seq,
            )
        seen = audit.hash_at(session, latest.seq) if latest is not None else None
        for number in points.untrusted_lines:
            click.echo(
                f"Error: {path} line {number}: the checkpoint's signature does not match "
                "the audit key; it is not trusted",
                err=True,
            )
        if points.untrusted_lines and not points.valid:
            click.echo("Error: no checkpoint line is trusted: check the audit key first", err=True)
        if latest is not None and latest.seq and seen != latest.hash:
            if result.checked < latest.seq:
                message = (
                    f"the chain ends at entry {result.checked} but a checkpoint of "
                    f"{latest.at} saw entry {latest.seq}: entries were removed"
                )
            else:
                message = (
                    f"entry {latest.seq} is not the one a checkpoint of {latest.at} saw: "
                    "entries were removed and others written in their place"
                )
            raise AuditProblem(message, EXIT_ENTRIES_REMOVED, min(result.checked + 1, latest.seq))
        if result.head_seq is not None and result.head_seq != result.checked:
            raise AuditProblem(
                f"the chain ends at entry {result.checked} but its head row names entry "
                f"{result.head_seq}: entries were removed",
                EXIT_ENTRIES_REMOVED,
                result.checked + 1,
            )
        problem = audit.check_rows(session, result)
    if problem is not None:
        raise AuditProblem(
            f"record changed: {problem.sentence()}", EXIT_RECORD_CHANGED, problem.seq
        )
    return result, points


def intact_line(result: audit.Verification, latest: audit.Checkpoint | None) -> str:
    """Record intact: N entries, key <fp>, last checkpoint seq S at T."""
    fingerprint = audit.key_fingerprint(current_app.config["AUDIT_KEY"])
    checkpoint = (
        f"last checkpoint seq {latest.seq} at {latest.at}"
        if latest is not None
        else f"no checkpoint yet in {audit_checkpoint_path()}"
    )
    return f"Record intact: {result.checked} entries, key {fingerprint}, {checkpoint}"


@audit_cli.command("verify")
def audit_verify() -> None:
    """Recompute the audit chain, compare it with the latest signed checkpoint, and check
    every row of the record against its latest entry.

    Exit 0 when it verifies, 1 when an entry was altered, 3 for a wrong audit key, 4 when
    entries are gone, 5 when a checkpoint line is not signed with the key, 6 when a row of
    the record was changed without its entry. Run `audit checkpoint` to record the head.
    """
    result, points = checked_audit_chain("verify")
    click.echo(intact_line(result, points.latest))
    if not result.fingerprinted and result.checked:
        click.echo("the first entry predates key fingerprints: a wrong key shows as broken")
    if points.untrusted_lines:
        raise click.exceptions.Exit(EXIT_CHECKPOINT_UNTRUSTED)


@audit_cli.command("checkpoint")
def audit_checkpoint() -> None:
    """Verify the chain, then append its head, signed, to the checkpoint file.

    Run it daily (deploy/kiosk-audit-checkpoint.timer) and copy the file off the server:
    a later `audit verify` then notices entries deleted from the end of the chain.
    """
    result, points = checked_audit_chain("checkpoint")
    path = audit_checkpoint_path()
    if points.untrusted_lines and not points.valid:
        # Most likely the wrong key: signing with it would bury the file's real checkpoints.
        raise audit_failure(
            f"no checkpoint in {path} is signed with this audit key; nothing written "
            "(if the key was changed on purpose, move the file aside first)",
            EXIT_CHECKPOINT_UNTRUSTED,
        )
    key = current_app.config["AUDIT_KEY"]
    point = audit.write_checkpoint(path, key, result.checked, result.head_hash, now_utc())
    click.echo(f"checkpoint written to {path}: entry {point.seq} at {point.at}")
    recipients = current_app.config["AUDIT_CHECKPOINT_EMAILS"]
    if recipients:
        with webdb.unit_of_work() as session:
            audit_mail.queue_checkpoint(session, recipients, key, point, now_utc())
        click.echo(f"checkpoint emailed to {len(recipients)} recipient(s) through the outbox")


@audit_cli.command("record-existing")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1))
def audit_record_existing(batch_size: int) -> None:
    """Append an entry for each row of the record that has none yet: rows written before
    every change was chained. Run once after upgrading, then `audit checkpoint`.

    Each entry is marked `record.existing`, so the chain shows when rows were taken in."""
    key = current_app.config["AUDIT_KEY"]
    with webdb.database().session_factory() as session:
        result = verify(session, key)
    if not result.ok:
        raise audit_failure(
            "the chain does not verify: run `audit verify` and resolve that first",
            EXIT_WRONG_KEY if result.wrong_key else EXIT_CHAIN_BROKEN,
        )
    total = 0
    for table_name in audit.COVERED_TABLES:
        known = result.latest.get(table_name, {})
        with webdb.database().session_factory() as session:
            missing = [
                row_id
                for row_id in session.scalars(audit.row_ids(table_name))
                if row_id not in known
            ]
        for start in range(0, len(missing), batch_size):
            batch = missing[start : start + batch_size]
            with webdb.unit_of_work() as session:
                audit.record_rows(
                    session, table_name, dict.fromkeys(batch, "existing"), actor="cli"
                )
        if missing:
            click.echo(f"{table_name}: {len(missing)} row(s) recorded")
        total += len(missing)
    click.echo(f"recorded {total} existing row(s); run `audit checkpoint` next")


@contextlib.contextmanager
def scripting() -> Iterator[Session]:
    """One unit of work for a scripts command; a refusal is one line on stderr."""
    try:
        with webdb.unit_of_work() as session:
            yield session
    except scriptstore.ScriptError as exc:
        raise click.ClickException(str(exc)) from exc


@scripts_cli.command("list")
def scripts_list() -> None:
    """List every version, newest first: status, approval, review date, and the one in use."""
    today = now_utc().date()
    with webdb.database().session_factory() as session:
        in_use = scriptstore.in_use(session)
        rows = [
            (
                str(v.id),
                v.status + (" (review overdue)" if scriptstore.review_overdue(v, today) else ""),
                "in use" if in_use is not None and v.id == in_use.id else "",
                v.label,
                v.author,
                _when(v.created_at),
                f"{v.approved_by}, {_when(v.approved_at)}" if v.approved_at else "-",
                v.review_due.isoformat() if v.review_due else "-",
            )
            for v in scriptstore.all_versions(session)
        ]
    if not rows:
        click.echo("no script versions yet (db upgrade stores the shipped draft)")
        return
    header = ("ID", "STATUS", "DESKS", "LABEL", "AUTHOR", "CREATED", "APPROVED", "REVIEW DUE")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@scripts_cli.command("show")
@click.argument("version_id", metavar="ID", type=int)
def scripts_show(version_id: int) -> None:
    """Print a version's pack as JSON (what `scripts import` takes back as a new draft)."""
    with webdb.database().session_factory() as session:
        try:
            version = scriptstore.find_version(session, version_id)
        except scriptstore.ScriptError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(scriptstore.pack_text(version), nl=False)


@scripts_cli.command("import")
@click.argument("pack_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--based-on", type=int, default=None, help="The version this one started from.")
def scripts_import(pack_file: Path, based_on: int | None) -> None:
    """Store a JSON pack file as a new draft version; counsel approves it separately."""
    # Read here, not by click, so that missing settings are named before a missing file.
    try:
        text = pack_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {pack_file}: {exc}") from exc
    try:
        data = scriptstore.parse_pack_text(text)
    except scriptstore.ScriptError as exc:
        raise click.ClickException(f"{pack_file.name}: {exc}") from exc
    with scripting() as session:
        version = scriptstore.store_draft(
            session, scriptstore.NewVersion(data, "command line", based_on), now_utc()
        )
        record_change(
            session,
            None,
            "script.create",
            f"script_version:{version.id}",
            None,
            scriptstore.as_record(version),
        )
        version_id = version.id
    click.echo(f"stored version {version_id} (draft; desks show it once counsel approves it)")


@scripts_cli.command("approve")
@click.argument("version_id", metavar="ID", type=int)
@click.option("--by", "email", required=True, help="The email of a district-wide counsel account.")
@click.option(
    "--review-due",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="YYYY-MM-DD; one year from today if left out.",
)
def scripts_approve(version_id: int, email: str, review_due: datetime | None) -> None:
    """Record counsel's approval of a draft: every new encounter shows it from now on."""
    now = now_utc()
    due = review_due.date() if review_due else scriptstore.default_review_due(now.date())
    with scripting() as session:
        counsel = session.scalar(select(User).where(User.email == email.strip().lower()))
        if counsel is None:
            raise scriptstore.ScriptError(f"no account with the email {email!r}")
        version = scriptstore.approve(session, version_id, counsel, due, now)
        record_change(
            session,
            None,
            "script.approve",
            f"script_version:{version.id}",
            {"status": scriptstore.DRAFT},
            {
                "status": scriptstore.APPROVED,
                "approved_by": f"user:{counsel.public_id}",
                "review_due": due.isoformat(),
            },
        )
    click.echo(f"approved version {version_id}; review due {due.isoformat()}")


@review_cli.command("reindex")
@click.option("--batch", default=500, show_default=True, help="Encounters per transaction.")
def review_reindex(batch: int) -> None:
    """Rewrite the search digests of every encounter (after an upgrade, or a new INDEX_KEY)."""
    key = current_app.config["INDEX_KEY"]
    after, encounters, digests = 0, 0, 0
    while True:
        with webdb.unit_of_work() as session:
            ids = session.scalars(
                select(Encounter.id).where(Encounter.id > after).order_by(Encounter.id).limit(batch)
            ).all()
            for encounter_id in ids:
                # Locked like every write to the encounter, so a desk saving an agent at the
                # same moment is indexed after this, never beside it.
                encounter = database_module.locked(session, Encounter, encounter_id)
                if encounter is not None:
                    digests += search.reindex(session, encounter, key)
        if not ids:
            break
        after = ids[-1]
        encounters += len(ids)
    click.echo(f"review: search index rewritten for {encounters} encounters ({digests} terms)")
