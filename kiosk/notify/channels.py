"""Senders behind one small interface: send(message) or raise DeliveryError.

Email over SMTP, webhooks (signed JSON POST) and SMS through a Twilio-compatible HTTP
gateway. Every network call has explicit timeouts; errors say whether a retry may help.
"""

from __future__ import annotations

import base64
import http.client
import json
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, parseaddr, parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

from kiosk.clock import now_utc
from kiosk.notify import webhook

USER_AGENT = "front-office-kiosk"
# Enough of a reply to read an error code; the rest is never needed.
MAX_REPLY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Outgoing:
    """A claimed outbox row, detached from the database while it is sent."""

    id: int
    key: str
    channel: str
    kind: str
    recipient: str
    subject: str
    body: str
    payload: str
    attempts: int
    contact_id: int | None = None
    # Read from the contact when the row is claimed, never stored in the outbox row.
    secret: str = field(default="", repr=False)
    # For the deliverer, not the channel: marking the result and keeping the lease.
    encounter_id: int | None = None
    created_at: datetime | None = None
    lease_until: datetime | None = None


class DeliveryError(Exception):
    """The message was not accepted; retry says whether trying again may help."""

    def __init__(
        self,
        message: str,
        *,
        retry: bool,
        retry_after: float | None = None,
        server_down: bool = False,
        untried: bool = False,
    ) -> None:
        super().__init__(message)
        self.retry = retry
        self.retry_after = retry_after
        # Held back because its server is down: the try does not count, and it is due
        # again as soon as the server may be probed.
        self.untried = untried
        # The server itself did not answer (not this one message): the rest of the round
        # for the same server waits instead of each try waiting out its own timeout.
        self.server_down = server_down


class Sender(Protocol):
    name: str

    def send(self, message: Outgoing) -> None: ...


def _clean_header(value: str) -> str:
    # Headers are built from our own rendering, but never let a line break through.
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def build_email(message: Outgoing, mail_from: str) -> EmailMessage:
    """Build the email with a stable Message-ID taken from the idempotency key."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    email = EmailMessage()
    email["From"] = _clean_header(mail_from)
    email["To"] = _clean_header(message.recipient)
    email["Subject"] = _clean_header(message.subject)
    email["Message-ID"] = f"<{message.key}@{domain}>"
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.body)
    return email


class SmtpSender:
    """Email over SMTP with explicit timeouts; 4xx and connection errors retry, 5xx fail."""

    name = "smtp"

    def __init__(self, settings: dict[str, Any]) -> None:
        self.host = settings["SMTP_HOST"]
        self.port = int(settings["SMTP_PORT"])
        self.username = settings.get("SMTP_USERNAME") or ""
        self.password = settings.get("SMTP_PASSWORD") or ""
        self.starttls = bool(settings.get("SMTP_STARTTLS"))
        self.timeout = float(settings.get("SMTP_TIMEOUT") or 10)
        self.mail_from = settings["MAIL_FROM"]

    def send(self, message: Outgoing) -> None:
        email = build_email(message, self.mail_from)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"recipient refused ({', '.join(str(c) for c in codes)})",
                retry=all(400 <= c < 500 for c in codes),
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP {exc.smtp_code}: {_short(exc.smtp_error)}",
                retry=400 <= exc.smtp_code < 500,
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # smtplib reports a reply that never came as a disconnection caused by a timeout.
            if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
                raise DeliveryError(
                    f"timeout: no answer from the SMTP server within {self.timeout:g} s",
                    retry=True,
                    server_down=True,
                ) from exc
            raise DeliveryError(
                f"{type(exc).__name__}: {_short(exc)}", retry=True, server_down=True
            ) from exc


class MailLogSender:
    """Demo mode without SMTP: the message stays in the outbox and is shown on the mail log page."""

    name = "maillog"

    def send(self, message: Outgoing) -> None:
        return None


def _short(value: object) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text[:300]


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def http_post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    connect_timeout: float,
    read_timeout: float,
) -> HttpReply:
    """POST with separate connect and read timeouts; redirects are not followed.

    Raises DeliveryError for a bad URL (permanent) and for timeouts and connection errors
    (retry). Any HTTP status is returned for the caller to judge.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise DeliveryError("the address has an invalid port", retry=False) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError("the address is not an http(s) URL", retry=False)
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise DeliveryError("the address contains spaces or control characters", retry=False)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, port, timeout=connect_timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=connect_timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    stage = "connect"
    try:
        connection.connect()
        assert connection.sock is not None
        # The connect timeout covered TCP (and TLS); from here on each read has its own.
        connection.sock.settimeout(read_timeout)
        stage = "read"
        connection.request("POST", path, body=body, headers={"User-Agent": USER_AGENT, **headers})
        response = connection.getresponse()
        data = response.read(MAX_REPLY_BYTES)
        return HttpReply(response.status, response.headers, data)
    except http.client.InvalidURL as exc:
        raise DeliveryError("the address is not a valid URL", retry=False) from exc
    except TimeoutError as exc:
        limit = connect_timeout if stage == "connect" else read_timeout
        raise DeliveryError(f"{stage} timeout after {limit:g} s", retry=True) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {_short(exc)}", retry=True) from exc
    finally:
        connection.close()


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Read Retry-After: delay seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def check_reply(reply: HttpReply, what: str) -> None:
    """Accept 2xx; retry 429 and 5xx (honouring Retry-After); fail every other status."""
    if 200 <= reply.status < 300:
        return
    detail = f"{what} answered HTTP {reply.status}"
    code = _error_code(reply.body)
    if code:
        detail += f" (code {code})"
    if 300 <= reply.status < 400:
        raise DeliveryError(f"{detail}: redirects are not followed", retry=False)
    if reply.status == 429 or reply.status >= 500:
        wait = retry_after_seconds(reply.headers.get("Retry-After"), now_utc())
        raise DeliveryError(detail, retry=True, retry_after=wait)
    raise DeliveryError(detail, retry=False)


def _error_code(body: bytes) -> str:
    # Twilio-style errors carry a numeric code; messages may echo numbers, so keep only that.
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return ""
    code = data.get("code") if isinstance(data, dict) else None
    return str(code)[:20] if isinstance(code, int | str) else ""


class WebhookSender:
    """JSON POST to the contact's URL, signed with the contact's secret (see notify.webhook)."""

    name = "webhook"

    def __init__(self, settings: dict[str, Any]) -> None:
        self.connect_timeout = float(settings.get("HTTP_CONNECT_TIMEOUT") or 5)
        self.read_timeout = float(settings.get("HTTP_READ_TIMEOUT") or 10)

    def send(self, message: Outgoing) -> None:
        if not message.secret:
            raise DeliveryError(
                "the webhook contact has no signing secret; set one for this contact",
                retry=False,
            )
        body = webhook.wire_body(message.body, message.payload, message.key)
        timestamp = int(now_utc().timestamp())
        headers = webhook.signed_headers(message.secret, message.key, body, timestamp)
        reply = http_post(message.recipient, body, headers, self.connect_timeout, self.read_timeout)
        check_reply(reply, "webhook")


class SmsSender:
    """A text through a Twilio-compatible Messages API: form POST with HTTP basic auth."""

    name = "sms"

    def __init__(self, settings: dict[str, Any]) -> None:
        self.base_url = str(settings.get("SMS_BASE_URL") or "").rstrip("/")
        self.account_sid = str(settings.get("SMS_ACCOUNT_SID") or "")
        self.auth_token = str(settings.get("SMS_AUTH_TOKEN") or "")
        self.sms_from = str(settings.get("SMS_FROM") or "")
        self.connect_timeout = float(settings.get("HTTP_CONNECT_TIMEOUT") or 5)
        self.read_timeout = float(settings.get("HTTP_READ_TIMEOUT") or 10)

    def messages_url(self) -> str:
        account = quote(self.account_sid, safe="")
        return f"{self.base_url}/2010-04-01/Accounts/{account}/Messages.json"

    def send(self, message: Outgoing) -> None:
        if not (self.account_sid and self.auth_token and self.sms_from):
            raise DeliveryError(
                "the SMS gateway is not fully configured "
                "(KIOSK_SMS_ACCOUNT_SID, KIOSK_SMS_AUTH_TOKEN, KIOSK_SMS_FROM)",
                retry=False,
            )
        credentials = f"{self.account_sid}:{self.auth_token}".encode()
        headers = {
            "Authorization": "Basic " + base64.b64encode(credentials).decode("ascii"),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        form = urlencode({"To": message.recipient, "From": self.sms_from, "Body": message.body})
        reply = http_post(
            self.messages_url(),
            form.encode("utf-8"),
            headers,
            self.connect_timeout,
            self.read_timeout,
        )
        check_reply(reply, "the SMS gateway")


def senders_from_settings(settings: dict[str, Any]) -> dict[str, Sender]:
    """Choose one sender per channel from the configuration."""
    senders: dict[str, Sender] = {}
    if settings.get("SMTP_HOST"):
        senders["email"] = SmtpSender(settings)
    elif settings.get("DEMO"):
        senders["email"] = MailLogSender()
    senders["webhook"] = WebhookSender(settings)
    if settings.get("SMS_BASE_URL"):
        senders["sms"] = SmsSender(settings)
    return senders
