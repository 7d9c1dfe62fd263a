"""HTTPS through a real nginx, configured with deploy/nginx-kiosk.conf and a self-signed
certificate, in front of a real gunicorn: a kiosk enrolls and taps, the designee acknowledges
from the emailed link, signs in and resolves, all in headless Chromium."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ROOT, Console, KioskServer, enroll_kiosk, stop
from tests.browser.test_kiosk_browser import tap_start, text_of
from tests.browser.test_office_browser import ACKNOWLEDGED, DESIGNEE_EMAIL, LIVE, ack_link, sign_in
from tests.conftest import REQUIRE_ALL, SmtpSink, free_port

NGINX = Path("/usr/sbin/nginx")
SITE = ROOT / "deploy" / "nginx-kiosk.conf"
MAIL_SECONDS = 10.0


class Nginx:
    """deploy/nginx-kiosk.conf on loopback ports, with a throwaway certificate and prefix."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.https_port = free_port()
        self.http_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def certificate(self) -> None:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-keyout", str(self.directory / "privkey.pem"),
                "-out", str(self.directory / "fullchain.pem"),
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip

    def site(self, app_port: int) -> str:
        """The shipped site, changed only where a district changes it: ports and certificate."""
        text = SITE.read_text()
        replacements = {
            "    listen [::]:80;\n": "",
            "    listen [::]:443 ssl http2;\n": "",
            "listen 80;": f"listen 127.0.0.1:{self.http_port};",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{self.https_port} ssl http2;",
            "/etc/ssl/kiosk/fullchain.pem": str(self.directory / "fullchain.pem"),
            "/etc/ssl/kiosk/privkey.pem": str(self.directory / "privkey.pem"),
            "proxy_pass http://127.0.0.1:8000;": f"proxy_pass http://127.0.0.1:{app_port};",
        }
        for old, new in replacements.items():
            assert old in text, f"deploy/nginx-kiosk.conf no longer has {old!r}"
            text = text.replace(old, new)
        return text

    def start(self, app_port: int) -> None:
        self.certificate()
        (self.directory / "site.conf").write_text(self.site(app_port))
        temp = self.directory / "temp"
        temp.mkdir()
        user = "user root;\n" if os.geteuid() == 0 else ""
        (self.directory / "nginx.conf").write_text(
            f"{user}worker_processes 1;\ndaemon off;\npid {self.directory}/nginx.pid;\n"
            f"error_log {self.directory}/error.log;\nevents {{ worker_connections 256; }}\n"
            "http {\n"
            f"  client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n"
            f"  fastcgi_temp_path {temp}/fastcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n"
            f"  scgi_temp_path {temp}/scgi;\n"
            f"  include {self.directory}/site.conf;\n}}\n"
        )
        command = [str(NGINX), "-p", str(self.directory), "-c", str(self.directory / "nginx.conf")]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(command, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        error_log = (self.directory / "error.log").read_text(errors="replace")
        pytest.fail(f"nginx did not answer on {self.base_url}:\n{error_log}")

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: str = ""
    ) -> tuple[int, dict[str, str], str]:
        context = ssl.create_default_context(cafile=str(self.directory / "fullchain.pem"))
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.https_port, context=context, timeout=10
        )
        try:
            connection.request(method, path, body=body or None, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def behind_nginx(
    tmp_path_factory: pytest.TempPathFactory, kiosk_servers: Callable[..., KioskServer]
) -> Iterator[tuple[KioskServer, Nginx]]:
    if not NGINX.exists() or shutil.which("openssl") is None:
        message = f"{NGINX} or openssl is missing (apt-get install nginx openssl)"
        if REQUIRE_ALL:
            pytest.fail(message)
        pytest.skip(message)
    nginx = Nginx(tmp_path_factory.mktemp("nginx"))
    server = kiosk_servers(KIOSK_BASE_URL=nginx.base_url, KIOSK_PROXY_HOPS="1")
    nginx.start(int(server.base_url.rsplit(":", 1)[1]))
    try:
        yield server, nginx
    finally:
        assert nginx.process is not None
        stop(nginx.process)


def wait_for_alert(sink: SmtpSink, since: int, base_url: str) -> Message:
    deadline = time.monotonic() + MAIL_SECONDS
    while time.monotonic() < deadline:
        with sink.lock:
            fresh = list(sink.messages[since:])
        for message in fresh:
            if DESIGNEE_EMAIL in str(message["To"]) and f"{base_url}/ack/" in text_of(message):
                return message
        time.sleep(0.05)
    raise AssertionError(f"no alert with a link to {base_url} within {MAIL_SECONDS}s")


@pytest.mark.browser
def test_enroll_tap_acknowledge_and_resolve_through_nginx(
    behind_nginx: tuple[KioskServer, Nginx],
    smtp_sink: SmtpSink,
    new_context: Callable[..., Any],
    console: Console,
) -> None:
    server, nginx = behind_nginx
    kiosk: Page = new_context(ignore_https_errors=True).new_page()
    designee: Page = new_context(ignore_https_errors=True).new_page()
    console.watch(kiosk)
    console.watch(designee)

    link = server.enrollment_link()
    assert link.startswith(f"{nginx.base_url}/enroll/"), link
    enroll_kiosk(kiosk, link)
    with smtp_sink.lock:
        since = len(smtp_sink.messages)
    tap_start(kiosk)

    ack = ack_link(wait_for_alert(smtp_sink, since, nginx.base_url))
    assert ack.startswith(f"{nginx.base_url}/ack/"), ack
    response = designee.goto(ack)
    assert response is not None and response.status == 200
    assert response.headers["strict-transport-security"].startswith("max-age=")
    designee.get_by_role("button", name="Acknowledge").click()
    expect(designee.get_by_role("heading", name=re.compile(r"^Acknowledged at "))).to_be_visible()
    expect(kiosk.locator("#ack-state")).to_have_text(ACKNOWLEDGED, timeout=LIVE)

    designee.get_by_role("link", name="Open the record").click()
    sign_in(designee)
    expect(designee.locator("#timeline")).to_contain_text("Acknowledged (email)")
    resolve = designee.locator("form", has=designee.get_by_role("button", name="Resolve"))
    resolve.get_by_label("They left").check()
    resolve.get_by_role("button", name="Resolve").click()
    expect(designee.locator("#timeline")).to_contain_text("Resolved", timeout=LIVE)
    assert "This page had expired" not in designee.content()
    assert not console.errors, console.errors
    assert f"{nginx.base_url}" in designee.url


@pytest.mark.browser
def test_nginx_sends_plain_http_to_https_and_the_app_refuses_other_sites(
    behind_nginx: tuple[KioskServer, Nginx],
) -> None:
    _, nginx = behind_nginx
    connection = http.client.HTTPConnection("127.0.0.1", nginx.http_port, timeout=10)
    connection.request("GET", "/login")
    redirect = connection.getresponse()
    connection.close()
    assert redirect.status == 301
    assert redirect.getheader("Location", "").startswith("https://")

    status, headers, page = nginx.request("GET", "/login")
    assert status == 200 and headers["Strict-Transport-Security"].startswith("max-age=")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    cookie = headers["Set-Cookie"].split(";")[0]
    form = f"csrf_token={token.group(1)}&email=a%40b.test&password=x"
    base = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    status, _, page = nginx.request(
        "POST", "/login", {**base, "Origin": "https://elsewhere.example"}, form
    )
    assert status == 400 and "not sent from this site" in page
    status, _, _ = nginx.request("POST", "/login", {**base, "Origin": nginx.base_url}, form)
    assert status == 200  # the form was taken: a wrong password, shown on the page
