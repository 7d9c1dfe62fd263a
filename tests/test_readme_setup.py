"""The README's PostgreSQL, production and district sections, run as written: every command of
their shell blocks, verbatim, from this checkout, in a scratch instance, against a scratch
database and a real SMTP server on loopback that speaks STARTTLS (the default) with a
certificate this machine is told to trust. Only what the README asks the reader to fill in is
filled in: the `export` and `read` lines' values (database, base URL, SMTP host and port, SMS
gateway and chat webhook addresses, typed secrets) and the passwords and PINs typed at
prompts. Then a kiosk enrolls through its printed one-time link and taps, over HTTP, against
the gunicorn the README starts, and the alert reaches the SMTP server."""

from __future__ import annotations

import contextlib
import datetime
import http.cookiejar
import ipaddress
import os
import re
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import SmtpSink, free_port, start_fields, stop_process

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("Running on PostgreSQL", "Production start", "Setting up a district")
INSTALL = "make .venv/.installed"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
PASSWORD = "a long typed password"
PIN = "135790"


def section_commands(readme: str, title: str) -> list[str]:
    """The commands of a section's shell blocks, continuation lines joined, comments dropped."""
    body = readme.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", body, re.DOTALL):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip() and not command.lstrip().startswith("#"):
                commands.append(command)
    return commands


def typed_at_prompts(command: str) -> str:
    """What the reader types when `users create` asks (each secret twice)."""
    typed = ""
    if "users create" in command and "--email" in command:
        typed += f"{PASSWORD}\n{PASSWORD}\n"
    if "users create" in command and "--pin" in command:
        typed += f"{PIN}\n{PIN}\n"
    return typed


@contextlib.contextmanager
def starttls_smtp(folder: Path) -> Iterator[tuple[SmtpSink, Path]]:
    """A real SMTP server on loopback that requires STARTTLS, and its certificate to trust."""
    from aiosmtpd.controller import Controller
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    sink = SmtpSink("127.0.0.1", free_port())
    controller = Controller(
        sink, hostname="127.0.0.1", port=sink.port, tls_context=context, require_starttls=True
    )
    controller.start()
    try:
        yield sink, cert_file
    finally:
        controller.stop()


@contextlib.contextmanager
def receiver() -> Iterator[str]:
    """A loopback HTTP server standing in for the chat webhook and the SMS gateway."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name the server library calls
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def scratch_database(tmp_path: Path) -> Iterator[str | None]:
    """A new PostgreSQL database when the suite runs on PostgreSQL; else None (SQLite)."""
    base_url = os.environ.get("KIOSK_TEST_DATABASE_URL")
    if not base_url:
        yield None
        return
    name = f"kiosk_readme_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_url(base_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Reader:
    """Runs README lines as the reader's shell would: `export` and `read` lines change the
    environment (their values filled in), every other line runs verbatim in bash."""

    def __init__(self, env: dict[str, str], fill_in: dict[str, str | None]) -> None:
        self.env = env
        self.fill_in = fill_in
        self.filled: set[str] = set()
        self.servers: list[subprocess.Popen[bytes]] = []

    def settings_line(self, line: str) -> None:
        typed_names = re.findall(r"read -rs (\w+)", line)
        names = [*re.findall(r"\b([A-Za-z_]\w*)=", line), *typed_names]
        typed = "".join(f"{self.fill_in[name]}\n" for name in typed_names)
        result = subprocess.run(
            ["bash", "-c", f"{line}\nenv -0"],
            env=self.env,
            input=typed.encode(),
            capture_output=True,
            check=True,
            timeout=10,
        )
        after = dict(
            item.split("=", 1) for item in result.stdout.decode().split("\0") if "=" in item
        )
        for name in names:
            assert name in after, f"{line} sets no {name}"
            value: str | None = after[name]
            if name in self.fill_in:
                self.filled.add(name)
                value = self.fill_in[name]
            if value is None:  # "leave it unset"
                self.env.pop(name, None)
            else:
                self.env[name] = value

    def run(self, line: str, log: Path) -> str:
        if line.startswith(INSTALL):
            # The install step: this checkout runs installed already; running it here could
            # reinstall the shared environment.
            return ""
        if line.startswith(("export ", "read ")):
            self.settings_line(line)
            return ""
        if "gunicorn" in line:
            with log.open("wb") as out:
                self.servers.append(
                    subprocess.Popen(
                        ["bash", "-c", line],
                        cwd=ROOT,
                        env=self.env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            return ""
        result = subprocess.run(
            ["bash", "-c", line],
            cwd=ROOT,
            env=self.env,
            input=typed_at_prompts(line),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr
        return result.stdout

    def stop(self) -> None:
        for process in self.servers:
            stop_process(process)


def wait_healthy(base_url: str, reader: Reader, log: Path) -> None:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        for process in reader.servers:
            assert process.poll() is None, log.read_text(errors="replace")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:  # noqa: S310 - a fixed loopback URL
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server never answered:\n{log.read_text(errors='replace')}")


def browse(opener: Any, url: str, form: dict[str, str] | None = None) -> tuple[int, str]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data)  # noqa: S310 - the loopback server
    try:
        with opener.open(request, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def test_the_readme_sets_up_a_district_that_alerts(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "gunicorn.log"
    with (
        starttls_smtp(tmp_path) as (smtp, certificate),
        receiver() as hooks,
        scratch_database(tmp_path) as database_url,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KIOSK_", "FLASK_"))}
        env.update(
            {
                "KIOSK_INSTANCE_PATH": str(tmp_path / "instance"),
                "PORT": str(port),
                # This machine trusts the district's mail server certificate.
                "SSL_CERT_FILE": str(certificate),
            }
        )
        reader = Reader(
            env,
            {
                "KIOSK_DATABASE_URL": database_url,
                "KIOSK_BASE_URL": base_url,
                "KIOSK_SMTP_HOST": smtp.host,
                "KIOSK_SMTP_PORT": str(smtp.port),
                "KIOSK_SMS_BASE_URL": hooks,
                "KIOSK_SMS_AUTH_TOKEN": "typed-sms-token",
                "CHAT_WEBHOOK_URL": f"{hooks}/hooks/abc",
                "CHAT_WEBHOOK_SECRET": "typed-webhook-secret",
            },
        )
        printed = ""
        try:
            for title in SECTIONS:
                commands = section_commands(readme, title)
                assert commands, f"no commands under {title}"
                for command in commands:
                    printed = reader.run(command, log) or printed
                    if "gunicorn" in command:
                        wait_healthy(base_url, reader, log)
            assert reader.servers, "the README starts no server"
            assert reader.filled == set(reader.fill_in), "a filled-in value is not in the README"
            link = re.search(r"https?://\S+/enroll/\S+", printed)
            assert link, printed
            assert link.group(0).startswith(base_url)
            opener = urllib.request.build_opener(
                urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
            )
            status, page = browse(opener, link.group(0))
            assert status == 200, page[:300]
            token = CSRF.search(page)
            assert token, page[:300]
            status, page = browse(opener, link.group(0), {"csrf_token": token.group(1)})
            assert status == 200 and "start_token" in page, page[:300]
            status, _ = browse(opener, f"{base_url}/desk/start", start_fields(page))
            assert status == 200
            assert smtp.received.wait(30), log.read_text(errors="replace")
        finally:
            reader.stop()
    recipients = {str(message["To"]) for message in smtp.messages}
    assert recipients & {"dana@district.example", "oncall@district.example"}, recipients
