"""`flask --app app keys rotate`: add a key, re-seal everything under it, retire old keys."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from kiosk import rotation, sealing, webdb
from kiosk.config import KEYS_FILE
from kiosk.sealing import Keyring

ENVIRONMENT_NAME = "KIOSK_ENCRYPTION_KEY"


def save_encryption_keys(instance_path: str, keyring: Keyring) -> Path:
    """Write the keyring into instance/keys.json (mode 0600), keeping the other keys."""
    path = Path(instance_path) / KEYS_FILE
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data["ENCRYPTION_KEY"] = keyring.spec()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".keys-")
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def use_keyring(keyring: Keyring) -> None:
    current_app.extensions["kiosk_keyring"] = keyring
    current_app.config["ENCRYPTION_KEY"] = keyring.spec()
    sealing.configure(webdb.database().session_factory, keyring)


def _in_use() -> dict[str, int]:
    with webdb.database().session_factory() as session:
        return dict(rotation.keys_in_use(session))


@click.command("rotate")
@click.option("--add-only", is_flag=True, help="Add a new key and stop; re-seal later.")
@click.option("--batch-size", default=200, show_default=True, type=click.IntRange(1))
@click.option("--max-batches", default=None, type=click.IntRange(1), help="Stop after this many.")
@click.option("--retire", is_flag=True, help="Drop the old keys once no value needs them.")
@with_appcontext
def keys_rotate(add_only: bool, batch_size: int, max_batches: int | None, retire: bool) -> None:
    """Seal every value with a new key, in batches; run again to resume.

    The first run adds a key to instance/keys.json; old keys stay until --retire. With
    keys in KIOSK_ENCRYPTION_KEY, put the new id:secret first there, then run this.
    """
    keyring: Keyring = current_app.extensions["kiosk_keyring"]
    from_file = not os.environ.get(ENVIRONMENT_NAME)
    if retire:
        left = {k: n for k, n in _in_use().items() if k != keyring.current}
        if left:
            raise click.ClickException(f"values still need other keys: {left}; run rotate first")
        if from_file and len(keyring.ids) > 1:
            save_encryption_keys(current_app.instance_path, keyring.only_current())
            use_keyring(keyring.only_current())
        click.echo(f"keys: only {keyring.current} is needed")
        return
    if from_file and len(keyring.ids) == 1:
        keyring = keyring.with_new_key()
        path = save_encryption_keys(current_app.instance_path, keyring)
        use_keyring(keyring)
        click.echo(f"keys: added {keyring.current} to {path}")
    if add_only:
        click.echo("keys: restart every app server so it knows the new key, then run rotate")
        return
    progress = rotation.reseal(
        webdb.database().session_factory,
        keyring,
        current_app.config["INDEX_KEY"],
        current_app.config["PHOTO_DIR"],
        batch_size=batch_size,
        max_batches=max_batches,
    )
    click.echo(f"keys: re-sealed {progress.rows} rows in {progress.batches} batches")
    if not progress.done:
        click.echo("keys: stopped before the end; run rotate again to resume")
        return
    old = [k for k in keyring.ids if k != keyring.current]
    click.echo(f"keys: every value is on {keyring.current}")
    if old:
        click.echo(f"keys: {', '.join(old)} can go: `flask --app app keys rotate --retire`")
