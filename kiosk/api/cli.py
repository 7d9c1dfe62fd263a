"""flask --app app api-tokens ...: make, list and revoke the API's bearer tokens."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup

from kiosk import webdb
from kiosk.admin.changes import record_change
from kiosk.auth import api_tokens
from kiosk.clock import now_utc
from kiosk.protocol import people
from kiosk.protocol.setup import SetupError

api_tokens_cli = AppGroup("api-tokens", help="Bearer tokens for the read-only API.")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


@api_tokens_cli.command("create")
@click.argument("email")
@click.option("--label", required=True, help="What will use the token, e.g. the SIS export.")
def api_tokens_create(email: str, label: str) -> None:
    """Make a token for a reviewer or counsel and print it once: it is not kept."""
    try:
        with webdb.unit_of_work() as db:
            user = people.find_user(db, email)
            made = api_tokens.create(db, user, label, now_utc())
            record_change(
                db,
                None,
                "api_token.create",
                f"api_token:{made.row.id}",
                None,
                api_tokens.snapshot(made.row),
            )
            token_id = made.row.id
    except SetupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(made.value)
    click.echo(f"(API token {token_id} for {email}; shown this once, keep it safe)")


@api_tokens_cli.command("list")
def api_tokens_list() -> None:
    """List tokens: ID, holder, label, first characters, made, last used, revoked."""
    with webdb.database().session_factory() as db:
        rows = [
            (
                str(row.id),
                row.user.email or row.user.public_id,
                row.label,
                row.prefix + "…",
                _when(row.created_at),
                _when(row.last_used_at),
                _when(row.revoked_at) if row.revoked_at else "no",
            )
            for row in api_tokens.all_tokens(db)
        ]
    if not rows:
        click.echo("no API tokens yet (api-tokens create EMAIL --label LABEL)")
        return
    header = ("ID", "HOLDER", "LABEL", "TOKEN", "MADE", "LAST USED", "REVOKED")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@api_tokens_cli.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
def api_tokens_revoke(token_id: int) -> None:
    """Stop a token at once (by the ID that list shows)."""
    now = now_utc()
    try:
        with webdb.unit_of_work() as db:
            row, changed = api_tokens.revoke(db, token_id, now)
            if changed:
                after = api_tokens.snapshot(row)
                before = {**after, "revoked": False}
                record_change(db, None, "api_token.revoke", f"api_token:{row.id}", before, after)
    except SetupError as exc:
        raise click.ClickException(str(exc)) from exc
    if changed:
        click.echo(f"revoked API token {token_id}")
    else:
        click.echo(f"API token {token_id} was already revoked")
