"""Encryption at rest: AES-GCM bound to table, column and row, under keys with ids.

No Flask and no models here, so the worker and the rotate job use it as the app does.

A stored text value is ``sealed:v1:<key id>:<base64url(nonce + ciphertext)>``; a stored
photo is the same envelope in bytes. The associated data is ``table``, ``column`` and the
row's identity, so a value copied to another row or column fails to open.

The row's identity must be known before its INSERT (the database id is not), so it is:

- the row's random ``public_id`` where the row has one (encounters, desk messages, late
  additions, photos);
- otherwise ``<encounter_id>/<position>``, unique per table and never changed once the
  row exists (agents, named people, documents).

Keys come from ``ENCRYPTION_KEY`` (environment or ``instance/keys.json``): one secret, or
several ``id:secret`` entries separated by commas, the first being the one new values
are sealed with. A bare secret has the id ``k1``. Each AES-256 key is derived from its
secret with HKDF-SHA256. The blind index for names uses ``INDEX_KEY``, a separate secret
that rotation does not change.

Values written before sealing existed do not start with the prefix: they are read as
they are, and ``flask keys rotate`` seals them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy.orm import Session

PREFIX = "sealed:v1:"
BYTES_PREFIX = b"sealed:v1:"
KEY_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,19}$")
FIRST_KEY_ID = "k1"
NONCE_BYTES = 12
INFO = b"kiosk sealed values v1"
SESSION_KEY = "keyring"


class SealError(ValueError):
    """A sealed value cannot be opened: unknown key, or it belongs to another place."""


def _derive(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(secret.encode())


@dataclass(frozen=True)
class Keyring:
    """The keys in use: new values are sealed with ``current``; any listed key opens."""

    secrets: tuple[tuple[str, str], ...]
    _ciphers: dict[str, AESGCM] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.secrets:
            raise SealError("no encryption key")
        for key_id, secret in self.secrets:
            if not KEY_ID.match(key_id) or not secret:
                raise SealError(f"not a valid encryption key entry: {key_id!r}")
            if key_id in self._ciphers:
                raise SealError(f"encryption key id {key_id!r} is listed twice")
            self._ciphers[key_id] = AESGCM(_derive(secret))

    @property
    def current(self) -> str:
        return self.secrets[0][0]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(key_id for key_id, _ in self.secrets)

    def cipher(self, key_id: str) -> AESGCM:
        try:
            return self._ciphers[key_id]
        except KeyError:
            raise SealError(f"the encryption key {key_id!r} is not configured") from None

    def spec(self) -> str:
        """The ENCRYPTION_KEY value that lists these keys, current first."""
        return ",".join(f"{key_id}:{secret}" for key_id, secret in self.secrets)

    def with_new_key(self) -> Keyring:
        """A keyring with a fresh current key in front of the existing ones."""
        number = 1 + max((int(k[1:]) for k in self.ids if re.fullmatch(r"k\d+", k)), default=0)
        return Keyring(((f"k{number}", secrets.token_urlsafe(48)), *self.secrets))

    def only_current(self) -> Keyring:
        return Keyring(self.secrets[:1])


def parse_keys(spec: str) -> Keyring:
    """Read ENCRYPTION_KEY: a bare secret, or ``id:secret`` entries, current first."""
    entries = [entry.strip() for entry in spec.split(",") if entry.strip()]
    pairs: list[tuple[str, str]] = []
    for entry in entries:
        key_id, colon, secret = entry.partition(":")
        if colon and KEY_ID.match(key_id) and secret:
            pairs.append((key_id, secret))
        elif len(entries) == 1:
            pairs.append((FIRST_KEY_ID, entry))
        else:
            raise SealError("each encryption key entry must be written id:secret")
    return Keyring(tuple(pairs))


def _aad(table: str, column: str, row: str) -> bytes:
    if not row:
        raise SealError(f"{table}.{column}: the row's identity is not known yet")
    return f"{table}\x1f{column}\x1f{row}".encode()


def is_sealed(stored: str | None) -> bool:
    return stored is not None and stored.startswith(PREFIX)


def key_id_of(stored: str) -> str | None:
    """The id of the key a stored value was sealed with (None for plain text)."""
    if not is_sealed(stored):
        return None
    return stored[len(PREFIX) :].split(":", 1)[0]


def seal_text(keyring: Keyring, value: str, table: str, column: str, row: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    data = keyring.cipher(keyring.current).encrypt(
        nonce, value.encode("utf-8"), _aad(table, column, row)
    )
    body = base64.urlsafe_b64encode(nonce + data).decode("ascii")
    return f"{PREFIX}{keyring.current}:{body}"


def open_text(keyring: Keyring, stored: str, table: str, column: str, row: str) -> str:
    """Return the plain value; a value stored before sealing existed is returned as is."""
    if not is_sealed(stored):
        return stored
    key_id, _, body = stored[len(PREFIX) :].partition(":")
    try:
        raw = base64.urlsafe_b64decode(body.encode("ascii"))
        plain = keyring.cipher(key_id).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(table, column, row)
        )
    except (InvalidTag, binascii.Error, ValueError, UnicodeEncodeError) as exc:
        if isinstance(exc, SealError):
            raise
        raise SealError(f"{table}.{column} of row {row} does not open here") from exc
    return plain.decode("utf-8")


def seal_bytes(keyring: Keyring, value: bytes, table: str, column: str, row: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    data = keyring.cipher(keyring.current).encrypt(nonce, value, _aad(table, column, row))
    return BYTES_PREFIX + keyring.current.encode("ascii") + b":" + nonce + data


def open_bytes(keyring: Keyring, stored: bytes, table: str, column: str, row: str) -> bytes:
    if not stored.startswith(BYTES_PREFIX):
        raise SealError(f"{table}.{column} of row {row} is not sealed")
    key_id, _, raw = stored[len(BYTES_PREFIX) :].partition(b":")
    try:
        return keyring.cipher(key_id.decode("ascii")).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(table, column, row)
        )
    except (InvalidTag, UnicodeDecodeError) as exc:
        raise SealError(f"{table}.{column} of row {row} does not open here") from exc


def bytes_key_id(stored: bytes) -> str | None:
    if not stored.startswith(BYTES_PREFIX):
        return None
    return stored[len(BYTES_PREFIX) :].split(b":", 1)[0].decode("ascii", "replace")


def normalise_name(name: str) -> str:
    """Fold a name for matching: Unicode NFKC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def blind_index(index_key: str, name: str) -> str:
    """A keyed hash of the normalised name: finds a person without reading names."""
    return hmac.new(index_key.encode(), normalise_name(name).encode(), hashlib.sha256).hexdigest()


def keyring_of(session: Session) -> Keyring:
    """The keyring the session's factory was configured with."""
    keyring = session.info.get(SESSION_KEY)
    if keyring is None:
        raise SealError("this database session has no encryption keys")
    return keyring  # type: ignore[no-any-return]


def init_app(app: Flask) -> None:
    """Give every session of the app's database the app's keyring."""
    from kiosk import webdb

    keyring = parse_keys(app.config["ENCRYPTION_KEY"])
    app.extensions["kiosk_keyring"] = keyring
    configure(webdb.database(app).session_factory, keyring)


def configure(factory: Any, keyring: Keyring) -> None:
    """Attach a keyring to a sessionmaker: its sessions seal and open with it."""
    info = dict(factory.kw.get("info") or {})
    info[SESSION_KEY] = keyring
    factory.configure(info=info)
