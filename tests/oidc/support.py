"""A real OpenID Connect provider on loopback (tests/oidc/provider.mjs, the npm package
oidc-provider), started with node for as long as a test needs it, and a person signing in
at it without a browser."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from tests.conftest import REQUIRE_ALL, free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "oidc" / "provider.mjs"
PACKAGE = ROOT / "tests" / "js" / "node_modules" / "oidc-provider" / "package.json"
START_WAIT_SECONDS = 15.0
CLIENT_ID = "front-office"
CLIENT_SECRET = "provider-test-secret-2e9c"


@dataclass
class Provider:
    """A running provider: its issuer, the client the app is registered as, its process."""

    issuer: str
    client_id: str
    client_secret: str
    process: subprocess.Popen[bytes]
    log: Path

    def settings(self, **extra: Any) -> dict[str, Any]:
        """The app's settings for this provider (as make_app overrides)."""
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENT_ID": self.client_id,
            "OIDC_CLIENT_SECRET": self.client_secret,
            "OIDC_LABEL": "Sign in with the district account",
            **extra,
        }

    def environment(self) -> dict[str, str]:
        """The same settings as environment variables, for a server process."""
        return {
            "KIOSK_OIDC_ISSUER": self.issuer,
            "KIOSK_OIDC_CLIENT_ID": self.client_id,
            "KIOSK_OIDC_CLIENT_SECRET": self.client_secret,
            "KIOSK_OIDC_LABEL": "Sign in with the district account",
        }

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def node_or_skip() -> str:
    """node and the installed package, or a skip (a failure under KIOSK_TEST_REQUIRE_ALL=1)."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is missing (apt-get install nodejs npm)"
    elif not PACKAGE.exists():
        problem = "oidc-provider is not installed (npm ci --prefix tests/js)"
    if problem:
        if REQUIRE_ALL:
            pytest.fail(problem)
        pytest.skip(problem)
    assert node is not None
    return node


def _wait_ready(issuer: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_WAIT_SECONDS
    last: object = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the provider exited with {process.returncode}:\n{log.read_text()}")
        try:
            url = issuer + "/.well-known/openid-configuration"
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
                last = response.status
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.1)
    pytest.fail(
        f"the provider did not answer in {START_WAIT_SECONDS}s ({last}):\n{log.read_text()}"
    )


@contextlib.contextmanager
def running_provider(
    directory: Path,
    redirect_uris: list[str],
    accounts: list[dict[str, Any]],
    port: int | None = None,
    email_in_userinfo_only: bool = False,
) -> Iterator[Provider]:
    """Start the provider with node on a free loopback port; stop it afterwards."""
    node = node_or_skip()
    port = port or free_port()
    issuer = f"http://127.0.0.1:{port}"
    command = [node, str(SCRIPT), "--port", str(port), "--client-id", CLIENT_ID]
    command += ["--client-secret", CLIENT_SECRET, "--accounts", json.dumps(accounts)]
    for uri in redirect_uris:
        command += ["--redirect-uri", uri]
    if email_in_userinfo_only:
        command.append("--email-in-userinfo-only")
    log = directory / f"provider-{port}.log"
    env = {**os.environ, "NODE_ENV": "test"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    provider = Provider(issuer, CLIENT_ID, CLIENT_SECRET, process, log)
    try:
        _wait_ready(issuer, process, log)
        yield provider
    finally:
        stop_process(process, grace=5.0)


def sign_in_at_provider(authorize_url: str, email: str, cancel: bool = False) -> str:
    """What a person does at the provider's sign-in page: type the email and continue (or
    cancel). Returns the address the provider sends the browser back to (the app's callback)."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
    with requests.Session() as browser:
        return _through_the_provider(browser, origin, authorize_url, email, cancel)


def _through_the_provider(
    browser: requests.Session, origin: str, authorize_url: str, email: str, cancel: bool
) -> str:
    answer = browser.get(authorize_url, allow_redirects=False, timeout=10)
    url = authorize_url
    posted = False
    for _ in range(10):
        if answer.is_redirect:
            url = urljoin(url, answer.headers["Location"])
            if not url.startswith(origin + "/"):
                return url
            answer = browser.get(url, allow_redirects=False, timeout=10)
            continue
        assert answer.status_code == 200 and not posted, answer.text
        assert "/interaction/" in url, answer.text
        posted = True
        action = f"{url}/cancel" if cancel else f"{url}/login"
        answer = browser.post(action, data={"email": email}, allow_redirects=False, timeout=10)
        url = action
    raise AssertionError(f"the provider never sent the browser back: {url}")
