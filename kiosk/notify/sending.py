"""Try one message: the retry policy, channels whose server is down, and send_one()."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from kiosk.notify.channels import DeliveryError, Outgoing, Sender

log = logging.getLogger(__name__)

# How long a send may take before another deliverer may take the row over.
LEASE_SECONDS = 60
# After a server did not answer, one message probes it again after this long.
OUTAGE_PROBE_SECONDS = 1.0
# A message held back by an outage in a one-off round is due again this soon.
UNTRIED_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class Policy:
    """How hard to try: capped exponential backoff with jitter, then give up."""

    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    give_up_after: float = 600.0
    lease_seconds: float = LEASE_SECONDS

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Return seconds before the next try; jitter keeps many rows from retrying in step."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** max(attempts - 1, 0)))
        # Retry jitter, not a secret.
        delay = random.uniform(ceiling / 2, ceiling)  # nosec B311
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_cap))
        return delay


def policy_from_settings(settings: Mapping[str, object]) -> Policy:
    return Policy(
        backoff_cap=float(settings["DELIVERY_BACKOFF_CAP_SECONDS"]),  # type: ignore[arg-type]
        give_up_after=float(settings["DELIVERY_GIVE_UP_SECONDS"]),  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class Result:
    """How one try ended: accepted by its channel (via), or not (error)."""

    message: Outgoing
    at: datetime
    via: str | None = None
    error: DeliveryError | None = None


class Outages:
    """Channels whose server did not answer: their messages wait instead of each timing out.

    window None: blocked for good (one round of deliver_due). Otherwise blocked for window
    seconds, after which one message goes through as a probe; if it gets through, the
    channel is open again.
    """

    def __init__(self, window: float | None = None) -> None:
        self.window = window
        self._down: dict[str, tuple[DeliveryError, float]] = {}
        self._lock = threading.Lock()

    def blocked(self, channel: str) -> DeliveryError | None:
        """Return an error for a message held back, or None to let it through."""
        with self._lock:
            found = self._down.get(channel)
            if found is None:
                return None
            error, until = found
            now = time.monotonic()
            if self.window is not None and now >= until:
                # Let this one message probe the server; hold the others back meanwhile.
                self._down[channel] = (error, now + self.window)
                return None
            wait = max(until - now, 0.2) if self.window is not None else UNTRIED_RETRY_SECONDS
            return DeliveryError(f"not tried: {error}", retry=True, retry_after=wait, untried=True)

    def record(self, channel: str, error: DeliveryError) -> None:
        with self._lock:
            until = time.monotonic() + (self.window or 0.0)
            self._down[channel] = (self._down.get(channel, (error, 0.0))[0], until)

    def clear(self, channel: str) -> bool:
        """Open the channel again; say whether it had been down."""
        with self._lock:
            return self._down.pop(channel, None) is not None


def send_one(
    message: Outgoing,
    senders: Mapping[str, Sender],
    outages: Outages,
    at: Callable[[], datetime],
) -> Result:
    """Try one message (never raises): accepted, refused, or held back by an outage."""
    sender = senders.get(message.channel)
    if sender is None:
        error = DeliveryError(f"no sender is configured for {message.channel}", retry=False)
        return Result(message, at(), error=error)
    held_back = outages.blocked(message.channel)
    if held_back is not None:
        return Result(message, at(), error=held_back)
    try:
        sender.send(message)
    except DeliveryError as exc:
        log_failure(message, exc)
        if exc.server_down:
            outages.record(message.channel, exc)
        return Result(message, at(), error=exc)
    except Exception as exc:  # a sender bug must not kill the deliverer
        log_failure(message, exc, crashed=True)
        error = DeliveryError(f"unexpected error: {type(exc).__name__}", retry=True)
        return Result(message, at(), error=error)
    return Result(message, at(), via=sender.name)


def log_failure(message: Outgoing, exc: Exception, crashed: bool = False) -> None:
    """One line per failed try, enough to act on: ids, channel, attempt and the error.

    Never the recipient, the subject or the body: they stay in the outbox row. The error
    class is the underlying one (ConnectionRefusedError, TimeoutError...) when there is one.
    """
    cause = exc.__cause__ if isinstance(exc, DeliveryError) and exc.__cause__ else exc
    fields = {
        "channel": message.channel,
        "contact_id": message.contact_id,
        "outbox_id": message.id,
        "kind": message.kind,
        "attempt": message.attempts,
        "error_class": type(cause).__name__,
        "error": str(exc)[:300] if isinstance(exc, DeliveryError) else "sender crashed",
        "retry": exc.retry if isinstance(exc, DeliveryError) else True,
    }
    log.log(
        logging.ERROR if crashed else logging.WARNING,
        "delivery failed: channel=%s contact=%s outbox=%s kind=%s attempt=%s "
        "error_class=%s error=%s",
        *(fields[name] for name in ("channel", "contact_id", "outbox_id", "kind", "attempt")),
        fields["error_class"],
        fields["error"],
        extra={"delivery": fields},
        exc_info=crashed,
    )
