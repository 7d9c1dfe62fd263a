"""Log lines: plain text or JSON (KIOSK_LOG_FORMAT=json), and never a token from a URL.

gunicorn uses GunicornLogger (gunicorn.conf.py): its error and access logs, and the app's
own loggers (through the root logger), share one format. Acknowledgement and enrollment
links carry one-time tokens in their paths, so every access-log field and every log line
has those paths, and query values named like a token, redacted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gunicorn.glogging import Logger as _GunicornBase

REDACTED = "[redacted]"
# /ack/<token> and /enroll/<token>, also percent-encoded inside another URL (?next=...).
_TOKEN_PATH = re.compile(r"((?:/|%2F)(?:ack|enroll)(?:/|%2F))[^/?&#\s\"']+", re.IGNORECASE)
# Query values named like a token, and the identity provider's answer (/login/oidc/callback
# carries a one-time code and the sign-in's state).
_TOKEN_QUERY = re.compile(
    r"([?&;](?:[^=&#\s\"']*token[^=&#\s\"']*|code|state|session_state)=)[^&#\s\"']*",
    re.IGNORECASE,
)
PLAIN_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
PLAIN_DATE = "%Y-%m-%d %H:%M:%S %z"
# Structured fields a record may carry (logging's `extra`), kept as they are in JSON.
EXTRA_FIELDS = ("delivery", "access")


def redact(text: str) -> str:
    """Hide the tokens of acknowledgement and enrollment links, token=... values, and the
    code and state the identity provider sends back."""
    text = _TOKEN_PATH.sub(lambda m: m.group(1) + REDACTED, text)
    if "?" in text or "=" in text:
        text = _TOKEN_QUERY.sub(lambda m: m.group(1) + REDACTED, "?" + text)[1:]
    return text


def log_format(environ: Mapping[str, str] | None = None) -> str:
    """'json' when KIOSK_LOG_FORMAT=json; plain text otherwise."""
    value = (environ if environ is not None else os.environ).get("KIOSK_LOG_FORMAT", "")
    return "json" if value.strip().lower() == "json" else "text"


class RedactFilter(logging.Filter):
    """Redact tokens in a record's message and arguments before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        # Mapping arguments (gunicorn's access atoms) are redacted where they are built.
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(PLAIN_FORMAT, PLAIN_DATE)


def configure_app_logging(fmt: str | None = None, level: int | str = logging.INFO) -> None:
    """Send the app's logs (the root logger) to standard error in the chosen format."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_kiosk", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._kiosk = True  # type: ignore[attr-defined]
    handler.setFormatter(formatter(fmt or log_format()))
    handler.addFilter(RedactFilter())
    root.addHandler(handler)
    root.setLevel(level)


class GunicornLogger(_GunicornBase):
    """gunicorn's logger in the chosen format, with tokens redacted from every line."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        fmt = log_format()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if fmt == "json":
                    handler.setFormatter(JsonFormatter())
                if not any(isinstance(f, RedactFilter) for f in handler.filters):
                    handler.addFilter(RedactFilter())
        configure_app_logging(fmt, self.loglevel)

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {k: redact(v) if isinstance(v, str) else v for k, v in atoms.items()}

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        fields = {
            "remote": atoms.get("h"),
            "method": atoms.get("m"),
            "path": atoms.get("U"),
            "query": atoms.get("q") or "",
            "status": atoms.get("s"),
            "bytes": atoms.get("B"),
            "duration_ms": atoms.get("M"),
        }
        try:
            self.access_log.info(
                self.cfg.access_log_format,
                self.atoms_wrapper_class(atoms),
                extra={"access": fields},
            )
        except Exception:
            self.error(traceback.format_exc())
