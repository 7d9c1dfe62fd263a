"""Passwords and PINs for the command line: typed at a hidden prompt or read from the
environment, never taken as an argument (arguments stay in the shell history and show in the
process list)."""

from __future__ import annotations

import os

import click

# The name of a variable, not a password.
PASSWORD_VARIABLE = "KIOSK_NEW_PASSWORD"  # noqa: S105  # nosec B105
PIN_VARIABLE = "KIOSK_NEW_PIN"
# The value of --pin given without one: ask for the PIN.
ASK = "\0ask"


def refuse_password_argument(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> None:
    """Refuse --password VALUE in favour of the prompt or the environment."""
    if value is not None:
        raise click.ClickException(
            "a password is not taken on the command line (it would stay in the shell history): "
            f"type it at the prompt, or set {PASSWORD_VARIABLE}"
        )


def pin_wanted(value: str | None) -> bool:
    """True for a bare --pin; refuses --pin VALUE in favour of the prompt or the environment."""
    if value is None:
        return False
    if value != ASK:
        raise click.ClickException(
            "a PIN is not taken on the command line (it would stay in the shell history): "
            f"give --pin alone and type it at the prompt, or set {PIN_VARIABLE}"
        )
    return True


def new_secret(label: str, variable: str) -> str:
    """The secret from the environment variable, or typed twice at a hidden prompt."""
    value = os.environ.get(variable)
    if value:
        return value
    return str(click.prompt(label, hide_input=True, confirmation_prompt=True))


def new_password() -> str:
    return new_secret("Password", PASSWORD_VARIABLE)


def new_pin() -> str:
    return new_secret("PIN", PIN_VARIABLE)
