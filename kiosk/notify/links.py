"""Signed, expiring acknowledgement links: they name an encounter and a contact, nothing more."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from kiosk.clock import now_utc

SALT = "kiosk.ack"


class AckLinkError(ValueError):
    """The link is forged, damaged or expired; reason says which, for the page shown."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AckClaim:
    """What a link names. test: the public id is a test alert's, not an encounter's."""

    encounter_public_id: str
    contact_id: int
    test: bool = False


class _ClockSigner(TimestampSigner):
    """Sign and check ages with the app's one clock (which tests can shift)."""

    def get_timestamp(self) -> int:
        return int(now_utc().timestamp())


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT, signer=_ClockSigner)


def ack_token(
    secret_key: str, encounter_public_id: str, contact_id: int, test: bool = False
) -> str:
    data: dict[str, Any] = {"e": encounter_public_id, "c": contact_id}
    if test:
        data["t"] = 1
    return str(_serializer(secret_key).dumps(data))


def ack_link(base_url: str, token: str) -> str:
    return f"{base_url}/ack/{token}"


def read_ack_token(secret_key: str, token: str, max_age_seconds: int) -> AckClaim:
    """Return what the token names, or raise AckLinkError("expired" or "invalid")."""
    try:
        data = _serializer(secret_key).loads(token, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise AckLinkError("expired") from exc
    except BadSignature as exc:
        raise AckLinkError("invalid") from exc
    if not isinstance(data, dict) or not isinstance(data.get("e"), str):
        raise AckLinkError("invalid")
    contact = data.get("c")
    if not isinstance(contact, int):
        raise AckLinkError("invalid")
    return AckClaim(data["e"], contact, test=data.get("t") == 1)


@dataclass(frozen=True)
class Links:
    """What rendering needs to build links: the public address and the signing key."""

    base_url: str
    secret_key: str

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Links:
        return cls(str(settings["BASE_URL"]), str(settings["SECRET_KEY"]))

    def encounter(self, encounter_public_id: str) -> str:
        return f"{self.base_url}/office/encounters/{encounter_public_id}"

    def acknowledge(self, encounter_public_id: str, contact_id: int) -> str:
        return ack_link(self.base_url, ack_token(self.secret_key, encounter_public_id, contact_id))

    def acknowledge_test(self, test_alert_public_id: str, contact_id: int) -> str:
        """The same kind of link as a real alert's, naming a test alert."""
        token = ack_token(self.secret_key, test_alert_public_id, contact_id, test=True)
        return ack_link(self.base_url, token)
