"""Start-up rules: keys always, SMTP outside demo mode, no in-memory SQLite."""

from __future__ import annotations

import json
import os
import stat
from typing import Any

import pytest

from kiosk import create_app
from kiosk.config import ConfigError, load_settings, write_keys_file
from tests.conftest import settings


def test_refuses_to_start_without_keys(database_url: str, tmp_path: Any) -> None:
    values = settings(database_url, str(tmp_path), SECRET_KEY="")
    with pytest.raises(ConfigError, match="KIOSK_SECRET_KEY"):
        create_app(values)


def test_refuses_to_start_without_smtp_outside_demo(database_url: str, tmp_path: Any) -> None:
    values = settings(database_url, str(tmp_path), DEMO=False, SMTP_HOST="")
    with pytest.raises(ConfigError, match="KIOSK_SMTP_HOST"):
        create_app(values)


def test_refuses_in_memory_sqlite(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="in-memory"):
        create_app(settings("sqlite:///:memory:", str(tmp_path)))


def test_keys_file_is_private_and_written_once(tmp_path: Any) -> None:
    path = write_keys_file(str(tmp_path))
    first = json.loads(path.read_text())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    write_keys_file(str(tmp_path))
    assert json.loads(path.read_text()) == first
    loaded = load_settings({}, str(tmp_path))
    assert loaded["SECRET_KEY"] == first["SECRET_KEY"]
    assert loaded["DATABASE_URL"] == f"sqlite:///{tmp_path}/kiosk.db"
    override = load_settings({"KIOSK_SECRET_KEY": "from-env"}, str(tmp_path))
    assert override["SECRET_KEY"] == "from-env"


def test_bad_numbers_in_settings_are_named(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="KIOSK_SMTP_PORT"):
        load_settings({"KIOSK_SMTP_PORT": "twenty-five"}, str(tmp_path))


def test_tests_cannot_reach_beyond_loopback() -> None:
    import socket

    import pytest

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        with pytest.raises(AssertionError, match="beyond loopback: 192.0.2.1"):
            sock.connect(("192.0.2.1", 25))  # TEST-NET-1: documentation only
