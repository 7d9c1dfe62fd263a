"""Senders behind one small interface: send(message) or raise DeliveryError."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any, Protocol


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


class DeliveryError(Exception):
    """The message was not accepted; retry says whether trying again may help."""

    def __init__(self, message: str, *, retry: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.retry_after = retry_after


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
            raise DeliveryError(f"{type(exc).__name__}: {_short(exc)}", retry=True) from exc


class MailLogSender:
    """Demo mode without SMTP: the message stays in the outbox and is shown on the mail log page."""

    name = "maillog"

    def send(self, message: Outgoing) -> None:
        return None


def _short(value: object) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text[:300]


def senders_from_settings(settings: dict[str, Any]) -> dict[str, Sender]:
    """Choose one sender per channel from the configuration."""
    senders: dict[str, Sender] = {}
    if settings.get("SMTP_HOST"):
        senders["email"] = SmtpSender(settings)
    elif settings.get("DEMO"):
        senders["email"] = MailLogSender()
    return senders
