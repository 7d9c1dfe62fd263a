"""The two ways in, `flask --app app ...` and gunicorn: a missing or bad setting is one line on
stderr and a non-zero exit, never a traceback, and `--help` and `keys create` need no settings."""

from __future__ import annotations

import copy
import logging
import os
import sys
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup

from kiosk import cli, create_app
from kiosk.config import ConfigError, check_settings, load_settings

# Commands that run with no settings at all, as paths of command names.
RUN_WITHOUT_SETTINGS = frozenset({("keys", "create")})


def instance_folder() -> str:
    """The instance folder: KIOSK_INSTANCE_PATH, or instance/ beside app.py."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get("KIOSK_INSTANCE_PATH") or os.path.join(root, "instance")


def settings_problem() -> ConfigError | None:
    """Load and check the settings as create_app() does; return what is wrong, if anything."""
    try:
        check_settings(load_settings(dict(os.environ), instance_folder()))
    except ConfigError as exc:
        return exc
    return None


def entry_app() -> Flask:
    """The app for app.py. Under `flask`, wrong settings leave the commands listed, with help,
    each refusing in one line (but `keys create`); elsewhere ConfigError is raised."""
    try:
        return create_app()
    except ConfigError as exc:
        context = click.get_current_context(silent=True)
        if context is None:
            raise
        if not isinstance(context.command, click.Group):
            # Flask's own commands (run, shell, routes) load the app as they start.
            raise click.ClickException(str(exc)) from None
        return unconfigured_app(exc)


def unconfigured_app(problem: ConfigError) -> Flask:
    """An app with only the command line, whose commands report the settings problem."""
    app = Flask("kiosk", instance_path=instance_folder())
    app.cli = RefusingGroup(problem)
    cli.init_app(app)
    return app


class RefusingGroup(AppGroup):
    """The app's commands, with their help, that stop in one line because of the settings."""

    def __init__(self, problem: ConfigError) -> None:
        super().__init__()
        self.problem = problem

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        return None if command is None else refusing(command, (cmd_name,), self.problem)


def refusing(command: click.Command, path: tuple[str, ...], problem: ConfigError) -> Any:
    """A copy of the command (the shared original stays as it is) that raises the problem."""
    if path in RUN_WITHOUT_SETTINGS:
        return command
    twin = copy.copy(command)
    if isinstance(command, click.Group):
        assert isinstance(twin, click.Group)
        twin.commands = {
            name: refusing(sub, (*path, name), problem) for name, sub in command.commands.items()
        }
        return twin

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise click.ClickException(str(problem))

    twin.callback = refuse
    return twin


def stop_unless_configured(log: logging.Logger | Any) -> None:
    """gunicorn's master: log one line and exit 1 before any worker starts, if a setting is
    missing or bad (a worker that cannot start would otherwise be restarted again and again)."""
    problem = settings_problem()
    if problem is not None:
        log.error("cannot start, settings: %s", problem)
        sys.exit(1)


def whole_number(name: str, default: int) -> int:
    """A positive whole-number setting read by gunicorn.conf.py; one line and exit 1 if bad."""
    raw = (os.environ.get(name) or "").strip() or str(default)
    if not raw.isdigit() or int(raw) < 1:
        sys.exit(f"cannot start, settings: {name} must be a whole number of at least 1")
    return int(raw)
