"""Settings from the environment (prefix KIOSK_), with safe embedded defaults."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

KEY_NAMES = ("SECRET_KEY", "ENCRYPTION_KEY", "AUDIT_KEY", "INDEX_KEY")
KEYS_FILE = "keys.json"

TRUE_WORDS = {"1", "true", "yes", "on"}
# The sign-in page's button for the district's identity provider, unless KIOSK_OIDC_LABEL says.
DEFAULT_OIDC_LABEL = "Sign in with the district account"
# Seven years (7 x 365 + 2 leap days): a common school-records schedule for incident files.
DEFAULT_RETENTION_DAYS = 2557
# Shorter than this would purge a record before a review or a complaint could ask for it.
MIN_RETENTION_DAYS = 30


class ConfigError(RuntimeError):
    """The app cannot start with these settings."""


def _flag(environ: dict[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in TRUE_WORDS


def _int(environ: dict[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from exc


def _float(environ: dict[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from exc


def _words(raw: str | None) -> tuple[str, ...]:
    """A comma- or space-separated list, lower case, without empty entries."""
    return tuple(word.lower() for word in re.split(r"[\s,]+", raw or "") if word)


def read_keys_file(instance_path: str) -> dict[str, str]:
    """Return the keys stored in the instance folder, if any."""
    path = Path(instance_path) / KEYS_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read as keys ({type(exc).__name__})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} cannot be read as keys (not a JSON object)")
    return {name: str(data[name]) for name in KEY_NAMES if data.get(name)}


def write_keys_file(instance_path: str) -> Path:
    """Create the instance keys once (mode 0600); never overwrite existing keys."""
    folder = Path(instance_path)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # the instance folder holds the keys and the database
    path = folder / KEYS_FILE
    existing = read_keys_file(instance_path)
    if all(name in existing for name in KEY_NAMES):
        return path
    keys = {name: existing.get(name) or secrets.token_urlsafe(48) for name in KEY_NAMES}
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(keys, handle, indent=2)
    os.chmod(path, 0o600)
    return path


def load_settings(environ: dict[str, str], instance_path: str) -> dict[str, Any]:
    """Read every KIOSK_* setting; keys come from the environment or instance/keys.json."""
    default_db = "sqlite:///" + str(Path(instance_path) / "kiosk.db")
    demo = _flag(environ, "KIOSK_DEMO", False)
    file_keys = read_keys_file(instance_path)
    settings: dict[str, Any] = {
        "DEMO": demo,
        "DATABASE_URL": environ.get("KIOSK_DATABASE_URL") or default_db,
        "BASE_URL": (environ.get("KIOSK_BASE_URL") or "http://127.0.0.1:8000").rstrip("/"),
        "SMTP_HOST": environ.get("KIOSK_SMTP_HOST", ""),
        "SMTP_PORT": _int(environ, "KIOSK_SMTP_PORT", 587),
        "SMTP_USERNAME": environ.get("KIOSK_SMTP_USERNAME", ""),
        "SMTP_PASSWORD": environ.get("KIOSK_SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": _flag(environ, "KIOSK_SMTP_STARTTLS", True),
        "SMTP_TIMEOUT": _float(environ, "KIOSK_SMTP_TIMEOUT", 10.0),
        "MAIL_FROM": environ.get("KIOSK_MAIL_FROM", ""),
        "DELIVERY": environ.get("KIOSK_DELIVERY", "inprocess"),
        "SECURE_COOKIES": _flag(
            environ,
            "KIOSK_SECURE_COOKIES",
            (environ.get("KIOSK_BASE_URL") or "").startswith("https://"),
        ),
        # argon2id's cost for passwords and PINs; the defaults are RFC 9106's low-memory
        # profile (3 passes over 64 MiB, 4 lanes): a fraction of a second a hash.
        "PASSWORD_TIME_COST": _int(environ, "KIOSK_PASSWORD_TIME_COST", 3),
        "PASSWORD_MEMORY_KIB": _int(environ, "KIOSK_PASSWORD_MEMORY_KIB", 64 * 1024),
        "PASSWORD_PARALLELISM": _int(environ, "KIOSK_PASSWORD_PARALLELISM", 4),
        "UNDELIVERED_AFTER_SECONDS": _int(environ, "KIOSK_UNDELIVERED_AFTER_SECONDS", 10),
        "COVER_AFTER_SECONDS": _int(environ, "KIOSK_COVER_AFTER_SECONDS", 60),
        "MISTAKE_WINDOW_SECONDS": _int(environ, "KIOSK_MISTAKE_WINDOW_SECONDS", 120),
        "ENROLLMENT_HOURS": _int(environ, "KIOSK_ENROLLMENT_HOURS", 72),
        # Invitation and password-reset links for people stay valid this many days, once.
        "INVITATION_DAYS": _int(environ, "KIOSK_INVITATION_DAYS", 7),
        # A short enrollment code typed at the device lasts minutes; guesses from one address
        # are refused after this many tries in KIOSK_SIGNIN_WINDOW_SECONDS.
        "ENROLLMENT_CODE_MINUTES": _int(environ, "KIOSK_ENROLLMENT_CODE_MINUTES", 30),
        "ENROLLMENT_CODE_TRIES": _int(environ, "KIOSK_ENROLLMENT_CODE_TRIES", 10),
        # The admins are emailed when a kiosk has not checked in for this long in school hours.
        "CHECKIN_ALERT_MINUTES": _int(environ, "KIOSK_CHECKIN_ALERT_MINUTES", 60),
        "DELIVERY_GIVE_UP_SECONDS": _int(environ, "KIOSK_DELIVERY_GIVE_UP_SECONDS", 600),
        "DELIVERY_BACKOFF_CAP_SECONDS": _float(environ, "KIOSK_DELIVERY_BACKOFF_CAP_SECONDS", 30.0),
        # Webhooks and the SMS gateway: explicit connect and read timeouts.
        "HTTP_CONNECT_TIMEOUT": _float(environ, "KIOSK_HTTP_CONNECT_TIMEOUT", 5.0),
        "HTTP_READ_TIMEOUT": _float(environ, "KIOSK_HTTP_READ_TIMEOUT", 10.0),
        "SMS_BASE_URL": (environ.get("KIOSK_SMS_BASE_URL") or "").rstrip("/"),
        "SMS_ACCOUNT_SID": environ.get("KIOSK_SMS_ACCOUNT_SID", ""),
        "SMS_AUTH_TOKEN": environ.get("KIOSK_SMS_AUTH_TOKEN", ""),
        "SMS_FROM": environ.get("KIOSK_SMS_FROM", ""),
        # Acknowledgement links in alerts stay valid this long.
        "ACK_LINK_HOURS": _int(environ, "KIOSK_ACK_LINK_HOURS", 24),
        # /readyz and /healthz answer 503 when no deliverer has finished a round for this
        # long, or when an alert has waited this long on email or SMS (kiosk/notify/health.py).
        "DELIVERY_STALL_SECONDS": _int(environ, "KIOSK_DELIVERY_STALL_SECONDS", 60),
        "PHOTO_DIR": environ.get("KIOSK_PHOTO_DIR") or str(Path(instance_path) / "photos"),
        # Signed checkpoints of the audit chain's head (`audit checkpoint`), outside the database.
        "AUDIT_CHECKPOINT_FILE": environ.get("KIOSK_AUDIT_CHECKPOINT_FILE")
        or str(Path(instance_path) / "audit-checkpoints.jsonl"),
        # Who is emailed each checkpoint's signed line, to keep a copy off the server.
        "AUDIT_CHECKPOINT_EMAILS": _words(environ.get("KIOSK_AUDIT_CHECKPOINT_EMAILS")),
        "PHOTO_MAX_BYTES": _int(environ, "KIOSK_PHOTO_MAX_BYTES", 10 * 1024 * 1024),
        # FERPA advance notice to a parent of a subpoena or court order is due this many
        # calendar days after the request (counsel shortens it when the return date is sooner).
        "FERPA_NOTICE_DAYS": _int(environ, "KIOSK_FERPA_NOTICE_DAYS", 5),
        "WRITE_LOCK_TIMEOUT_SECONDS": _float(environ, "KIOSK_WRITE_LOCK_TIMEOUT_SECONDS", 30.0),
        "SIGNIN_FAILURES_ALLOWED": _int(environ, "KIOSK_SIGNIN_FAILURES_ALLOWED", 10),
        "SIGNIN_WINDOW_SECONDS": _int(environ, "KIOSK_SIGNIN_WINDOW_SECONDS", 600),
        # A signed-in session ends after this long without a request, and this long after sign-in.
        "SESSION_IDLE_MINUTES": _int(environ, "KIOSK_SESSION_IDLE_MINUTES", 30),
        "SESSION_MAX_HOURS": _int(environ, "KIOSK_SESSION_MAX_HOURS", 12),
        # How many reverse proxies in front are trusted to say who the client is, and over
        # which scheme and host it came (X-Forwarded-For, -Proto, -Host, -Port).
        "PROXY_HOPS": _int(environ, "KIOSK_PROXY_HOPS", 0),
        # The board report shows a count from 1 to below this only as "fewer than N".
        "BOARD_SUPPRESS_BELOW": _int(environ, "KIOSK_BOARD_SUPPRESS_BELOW", 5),
        # Ended encounters keep their content this many days, then `retention run` removes
        # it (unless on legal hold). Finite by design: there is no "keep forever".
        "RETENTION_DAYS": _int(environ, "KIOSK_RETENTION_DAYS", DEFAULT_RETENTION_DAYS),
        # Sign-in with the district's identity provider (OpenID Connect): off unless set.
        "OIDC_ISSUER": (environ.get("KIOSK_OIDC_ISSUER") or "").strip(),
        "OIDC_CLIENT_ID": (environ.get("KIOSK_OIDC_CLIENT_ID") or "").strip(),
        "OIDC_CLIENT_SECRET": environ.get("KIOSK_OIDC_CLIENT_SECRET") or "",
        "OIDC_LABEL": (environ.get("KIOSK_OIDC_LABEL") or "").strip() or DEFAULT_OIDC_LABEL,
        "OIDC_ALLOWED_DOMAINS": _words(environ.get("KIOSK_OIDC_ALLOWED_DOMAINS")),
        "OIDC_TRUST_DIRECTORY_EMAIL": _flag(environ, "KIOSK_OIDC_TRUST_DIRECTORY_EMAIL", False),
    }
    for name in KEY_NAMES:
        settings[name] = environ.get(f"KIOSK_{name}") or file_keys.get(name, "")
    return settings


def check_settings(settings: dict[str, Any]) -> None:
    """Refuse to start without keys, and outside demo mode without SMTP settings."""
    missing = [f"KIOSK_{name}" for name in KEY_NAMES if not settings.get(name)]
    if missing:
        raise ConfigError(
            "missing keys: "
            + ", ".join(missing)
            + " (set them in the environment or run `.venv/bin/flask --app app keys create`)"
        )
    if settings["PROXY_HOPS"] < 0:
        raise ConfigError("KIOSK_PROXY_HOPS must be 0 or more")
    if settings["BOARD_SUPPRESS_BELOW"] < 1:
        raise ConfigError("KIOSK_BOARD_SUPPRESS_BELOW must be 1 or more")
    if settings["RETENTION_DAYS"] < MIN_RETENTION_DAYS:
        raise ConfigError(f"KIOSK_RETENTION_DAYS must be {MIN_RETENTION_DAYS} or more")
    check_password_cost(settings)
    check_urls(settings)
    check_oidc(settings)
    if settings["DELIVERY"] not in {"inprocess", "off"}:
        raise ConfigError("KIOSK_DELIVERY must be 'inprocess' or 'off'")
    if settings["DATABASE_URL"].startswith("sqlite") and ":memory:" in settings["DATABASE_URL"]:
        raise ConfigError("an in-memory SQLite database cannot be shared; use a file")
    if not settings["DEMO"] and (not settings["SMTP_HOST"] or not settings["MAIL_FROM"]):
        raise ConfigError("KIOSK_SMTP_HOST and KIOSK_MAIL_FROM are required outside demo mode")
    if not settings["MAIL_FROM"]:
        settings["MAIL_FROM"] = "kiosk@localhost"


def check_password_cost(settings: dict[str, Any]) -> None:
    """Refuse an argon2id cost it cannot run with, before any password is hashed with it."""
    if settings["PASSWORD_TIME_COST"] < 1:
        raise ConfigError("KIOSK_PASSWORD_TIME_COST must be 1 or more")
    if settings["PASSWORD_PARALLELISM"] < 1:
        raise ConfigError("KIOSK_PASSWORD_PARALLELISM must be 1 or more")
    if settings["PASSWORD_MEMORY_KIB"] < 8 * settings["PASSWORD_PARALLELISM"]:
        raise ConfigError(
            "KIOSK_PASSWORD_MEMORY_KIB must be at least 8 times KIOSK_PASSWORD_PARALLELISM"
        )


# Settings earlier versions read that no longer do anything: named in a warning at start-up.
# Each retired setting's name, and what replaced it.
RETIRED_SETTINGS = dict(
    [
        (
            "KIOSK_PASSWORD_HASH",
            "passwords and PINs are hashed with argon2id; "
            "its cost is set with KIOSK_PASSWORD_TIME_COST, _MEMORY_KIB and _PARALLELISM",
        ),
    ]
)


def retired_settings(environ: dict[str, str]) -> list[str]:
    """One line for each retired setting still set in the environment."""
    return [
        f"{name} is no longer used: {reason}"
        for name, reason in RETIRED_SETTINGS.items()
        if environ.get(name)
    ]


SMS_SETTINGS = ("SMS_BASE_URL", "SMS_ACCOUNT_SID", "SMS_AUTH_TOKEN", "SMS_FROM")


def missing_sms_settings(settings: dict[str, Any]) -> list[str]:
    """The SMS gateway settings not set, by their environment names."""
    return [f"KIOSK_{name}" for name in SMS_SETTINGS if not settings.get(name)]


def check_urls(settings: dict[str, Any]) -> None:
    """Name a setting that cannot work; never repeat its value (a URL may hold a password)."""
    try:
        make_url(settings["DATABASE_URL"]).get_dialect().import_dbapi()
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        raise ConfigError(
            "KIOSK_DATABASE_URL is not a database URL this app can use "
            "(e.g. postgresql+psycopg://user:password@host:5432/dbname)"
        ) from exc
    if not str(settings["BASE_URL"]).startswith(("http://", "https://")):
        raise ConfigError("KIOSK_BASE_URL must start with http:// or https://")
    missing = missing_sms_settings(settings)
    if 0 < len(missing) < len(SMS_SETTINGS):
        raise ConfigError(f"the SMS gateway is half set up: {', '.join(missing)} missing")


OIDC_SETTINGS = ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# Microsoft's shared issuers accept accounts of any organisation: their emails prove nothing.
ENTRA_SHARED = re.compile(
    r"^https://login\.microsoftonline\.com/(common|organizations|consumers)(/|$)", re.IGNORECASE
)
CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_oidc(settings: dict[str, Any]) -> None:
    """Sign-in through the identity provider is either fully set up or off; name what is
    wrong, never a value (the client secret is a secret)."""
    given = [name for name in OIDC_SETTINGS if settings.get(name)]
    if not given:
        for extra in ("OIDC_ALLOWED_DOMAINS", "OIDC_TRUST_DIRECTORY_EMAIL"):
            if settings.get(extra):
                raise ConfigError(f"KIOSK_{extra} is set but KIOSK_OIDC_ISSUER is not")
        return
    missing = [f"KIOSK_{name}" for name in OIDC_SETTINGS if not settings.get(name)]
    if missing:
        raise ConfigError(
            f"sign-in with the identity provider is half set up: {', '.join(missing)} missing"
        )
    issuer = urlsplit(str(settings["OIDC_ISSUER"]))
    secure = issuer.scheme == "https" or (
        issuer.scheme == "http" and _loopback(issuer.hostname or "")
    )
    if not secure or not issuer.hostname or issuer.query or issuer.fragment:
        raise ConfigError(
            "KIOSK_OIDC_ISSUER must be the provider's https:// issuer or discovery URL"
        )
    label = str(settings.get("OIDC_LABEL") or "")
    if not label or len(label) > 80 or CONTROL.search(label):
        raise ConfigError("KIOSK_OIDC_LABEL must be one line of at most 80 characters")
    domains = tuple(settings.get("OIDC_ALLOWED_DOMAINS") or ())
    bad = [domain for domain in domains if not DOMAIN.match(domain)]
    if bad:
        raise ConfigError(
            "KIOSK_OIDC_ALLOWED_DOMAINS must list email domains such as district.example"
        )
    if settings.get("OIDC_TRUST_DIRECTORY_EMAIL"):
        if not domains:
            raise ConfigError("KIOSK_OIDC_TRUST_DIRECTORY_EMAIL needs KIOSK_OIDC_ALLOWED_DOMAINS")
        if ENTRA_SHARED.match(str(settings["OIDC_ISSUER"])):
            raise ConfigError(
                "KIOSK_OIDC_TRUST_DIRECTORY_EMAIL needs the district's own tenant issuer "
                "(https://login.microsoftonline.com/<tenant id>/v2.0), not a shared one"
            )
