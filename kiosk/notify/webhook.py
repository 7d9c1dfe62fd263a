"""The webhook contract: how a delivery is signed, and how a receiver checks it.

Every webhook POST carries three headers:

- ``X-Kiosk-Timestamp``: Unix seconds when this try was sent.
- ``X-Kiosk-Signature``: ``sha256=`` + hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` keyed
  with the contact's webhook secret (body = the exact request bytes, UTF-8).
- ``X-Kiosk-Delivery``: the outbox idempotency key, the same on every retry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

TIMESTAMP_HEADER = "X-Kiosk-Timestamp"
SIGNATURE_HEADER = "X-Kiosk-Signature"
DELIVERY_HEADER = "X-Kiosk-Delivery"
SIGNATURE_PREFIX = "sha256="
# A receiver should refuse signatures older (or newer) than this many seconds.
DEFAULT_TOLERANCE_SECONDS = 300

FORMATS = ("generic", "slack", "teams")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Return the X-Kiosk-Signature value for one try."""
    material = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), material, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def signed_headers(secret: str, delivery_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        DELIVERY_HEADER: delivery_id,
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Check a received delivery the way a receiver should: fresh timestamp, equal signature."""
    try:
        timestamp = int(headers.get(TIMESTAMP_HEADER, ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected, headers.get(SIGNATURE_HEADER, ""))


def canonical(document: Mapping[str, Any]) -> str:
    """Serialise a payload the same way every time (sorted keys, no spaces)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def wire_body(body: str, payload: str, delivery_id: str) -> bytes:
    """Return the request bytes for a stored row: the same bytes on every try.

    The generic format carries its own delivery id; rendering happens before the row (and
    so its key) exists, so the id is set here, deterministically, from the stored key.
    """
    meta = json.loads(payload or "{}")
    if meta.get("format") != "generic":
        return body.encode("utf-8")
    document = json.loads(body)
    document["delivery_id"] = delivery_id
    return canonical(document).encode("utf-8")
