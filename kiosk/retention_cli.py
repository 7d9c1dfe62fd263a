"""flask --app app retention ...: purge ended encounters past the retention period, and set
or release a legal hold from the command line."""

from __future__ import annotations

import contextlib
from datetime import datetime

import click
from flask import current_app
from flask.cli import AppGroup

from kiosk import retention, webdb
from kiosk.clock import now_utc
from kiosk.models import Encounter
from kiosk.photos import PhotoUnavailable, legacy_path

retention_cli = AppGroup("retention", help="The retention period and legal holds.")

REASON_LIMIT = int(getattr(Encounter.hold_reason.property.columns[0].type, "length", 300))


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{table} {number}" for table, number in counts.items())


def _remove_files(names: tuple[str, ...]) -> None:
    """Photo files kept from before photos moved into the database, once the row is purged."""
    for name in names:
        with contextlib.suppress(OSError, PhotoUnavailable):
            legacy_path(current_app.config["PHOTO_DIR"], name).unlink()


@retention_cli.command("run")
@click.option("--dry-run", is_flag=True, help="Say what would be purged; change nothing.")
def retention_run(dry_run: bool) -> None:
    """Remove the content of ended encounters past KIOSK_RETENTION_DAYS, except those on legal
    hold: one transaction and one audit entry per encounter. The audit chain and the events
    are kept, so `audit verify` still passes."""
    days = int(current_app.config["RETENTION_DAYS"])
    now = now_utc()
    with webdb.database().session_factory() as session:
        candidates = retention.due(session, now, days)
    limit = _day(retention.cutoff(now, days))
    if dry_run:
        for item in candidates:
            click.echo(f"would purge {item.public_id} (ended {_day(item.ended_at)})")
        click.echo(
            f"dry run: {len(candidates)} encounter(s) ended before {limit} would be purged "
            f"(retention period {days} days); nothing was changed"
        )
        return
    purged = skipped = 0
    key = current_app.config["AUDIT_KEY"]
    for item in candidates:
        with webdb.unit_of_work() as session:
            result = retention.purge(
                session, item.id, now, days, key, "cli", current_app.config["INDEX_KEY"]
            )
        if result is None:
            skipped += 1
            click.echo(f"skipped {item.public_id}: no longer due (put on hold or changed)")
            continue
        _remove_files(result.files)
        purged += 1
        click.echo(
            f"purged {result.public_id} (ended {_day(result.ended_at)}): {_counts(result.counts)}"
        )
    click.echo(
        f"retention: {purged} encounter(s) ended before {limit} purged, {skipped} skipped "
        f"(retention period {days} days)"
    )


def _encounter_id(public_id: str) -> int:
    with webdb.database().session_factory() as session:
        found = retention.find_id(session, public_id)
    if found is None:
        raise click.ClickException(f"no encounter has the id {public_id}")
    return found


def _checked_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise click.ClickException("give the reason for the hold (--reason)")
    if len(reason) > REASON_LIMIT:
        raise click.ClickException(f"keep the reason under {REASON_LIMIT} characters")
    if any(not char.isprintable() for char in reason):
        raise click.ClickException("the reason contains a control character; retype it")
    return reason


@retention_cli.command("hold")
@click.argument("public_id", metavar="PUBLIC_ID")
@click.option("--reason", required=True, help="Why the record must be kept (sealed at rest).")
def retention_hold(public_id: str, reason: str) -> None:
    """Put an encounter on legal hold: `retention run` keeps its content until released."""
    reason = _checked_reason(reason)
    encounter_id = _encounter_id(public_id)
    try:
        with webdb.unit_of_work() as session:
            changed = retention.set_hold(
                session,
                encounter_id,
                now_utc(),
                reason,
                None,
                current_app.config["AUDIT_KEY"],
                actor="cli",
            )
    except retention.RetentionError as exc:
        raise click.ClickException(str(exc)) from exc
    if changed:
        click.echo(f"on legal hold: {public_id}")
    else:
        click.echo(f"{public_id} was already on legal hold with that reason; nothing changed")


@retention_cli.command("release")
@click.argument("public_id", metavar="PUBLIC_ID")
def retention_release(public_id: str) -> None:
    """Release an encounter's legal hold: the retention period applies to it again."""
    encounter_id = _encounter_id(public_id)
    try:
        with webdb.unit_of_work() as session:
            changed = retention.release_hold(
                session, encounter_id, now_utc(), current_app.config["AUDIT_KEY"], actor="cli"
            )
    except retention.RetentionError as exc:
        raise click.ClickException(str(exc)) from exc
    if changed:
        click.echo(f"hold released: {public_id}")
    else:
        click.echo(f"{public_id} was not on legal hold; nothing changed")
