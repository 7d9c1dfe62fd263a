"""How delivery is keeping up: per channel, per contact, and whether a deliverer is alive.

A channel whose server is shared by every contact (email over the SMTP server, SMS through
the gateway) is stalled when it has a sender and its oldest waiting alert has waited too
long: nothing gets through it. A webhook goes to each contact's own server, so one that
does not answer is that contact's problem, not the channel's. Delivery as a whole is
stalled when a channel is, or when alerts wait and no deliverer has finished a round lately.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kiosk.models import OutboxMessage, WorkerHeartbeat
from kiosk.notify.outbox import ALERT_KINDS

WAITING = ("pending", "sending")
# Channels that send to a server of each contact's own: no one server can stall them.
PER_CONTACT_CHANNELS = frozenset({"webhook"})


@dataclass(frozen=True)
class ChannelState:
    """Waiting messages of one channel; stalled only if its one shared server is."""

    channel: str
    sender: bool
    waiting: int
    waiting_alerts: int
    oldest_alert_age_s: float | None
    stalled: bool


@dataclass(frozen=True)
class ContactProblem:
    """A contact whose messages have waited too long (ids and errors only, no content)."""

    contact_id: int
    channel: str
    waiting: int
    oldest_age_s: float
    last_error: str


@dataclass(frozen=True)
class DeliveryState:
    waiting: int
    heartbeat_age_s: float | None
    oldest_alert_age_s: float | None
    no_deliverer: bool
    channels: dict[str, ChannelState] = field(default_factory=dict)
    contacts: list[ContactProblem] = field(default_factory=list)

    @property
    def stalled(self) -> bool:
        return self.no_deliverer or any(c.stalled for c in self.channels.values())


def age(now: datetime, moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return round(max((now - moment).total_seconds(), 0.0), 1)


def shared_channels(sender_channels: Iterable[str]) -> set[str]:
    """The channels, among those with a sender, whose one server every contact shares."""
    return set(sender_channels) - PER_CONTACT_CHANNELS


def delivery_state(
    session: Session, now: datetime, limit_s: float, sender_channels: Iterable[str]
) -> DeliveryState:
    """Read how delivery keeps up; sender_channels: the channels a sender is configured for."""
    senders = set(sender_channels)
    shared = shared_channels(senders)
    by_channel = session.execute(
        select(
            OutboxMessage.channel,
            func.count(),
            func.count(OutboxMessage.id).filter(OutboxMessage.kind.in_(ALERT_KINDS)),
            func.min(OutboxMessage.created_at).filter(OutboxMessage.kind.in_(ALERT_KINDS)),
        )
        .where(OutboxMessage.status.in_(WAITING))
        .group_by(OutboxMessage.channel)
    ).all()
    channels = {
        channel: ChannelState(channel, True, 0, 0, None, stalled=False) for channel in senders
    }
    for channel, waiting, alerts, oldest in by_channel:
        oldest_age = age(now, oldest)
        channels[channel] = ChannelState(
            channel=channel,
            sender=channel in senders,
            waiting=int(waiting),
            waiting_alerts=int(alerts),
            oldest_alert_age_s=oldest_age,
            stalled=channel in shared and oldest_age is not None and oldest_age > limit_s,
        )
    ages = [c.oldest_alert_age_s for c in channels.values() if c.oldest_alert_age_s is not None]
    oldest_alert = max(ages) if ages else None
    heartbeat_age = age(now, session.scalar(select(func.max(WorkerHeartbeat.beat_at))))
    no_deliverer = oldest_alert is not None and (heartbeat_age is None or heartbeat_age > limit_s)
    return DeliveryState(
        waiting=sum(c.waiting for c in channels.values()),
        heartbeat_age_s=heartbeat_age,
        oldest_alert_age_s=oldest_alert,
        no_deliverer=no_deliverer,
        channels=channels,
        contacts=contact_problems(session, now, limit_s),
    )


def contact_problems(session: Session, now: datetime, limit_s: float) -> list[ContactProblem]:
    """Contacts with a message waiting longer than limit_s, the longest waiting first."""
    cutoff = now - timedelta(seconds=limit_s)
    found = session.execute(
        select(
            OutboxMessage.contact_id,
            OutboxMessage.channel,
            func.count(),
            func.min(OutboxMessage.created_at),
        )
        .where(OutboxMessage.status.in_(WAITING), OutboxMessage.contact_id.is_not(None))
        .group_by(OutboxMessage.contact_id, OutboxMessage.channel)
        .having(func.min(OutboxMessage.created_at) < cutoff)
    ).all()
    problems = []
    for contact_id, channel, waiting, oldest in found:
        last_error = session.scalar(
            select(OutboxMessage.last_error)
            .where(
                OutboxMessage.contact_id == contact_id,
                OutboxMessage.channel == channel,
                OutboxMessage.status.in_(WAITING),
                OutboxMessage.last_error.is_not(None),
            )
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        )
        problems.append(
            ContactProblem(
                contact_id=int(contact_id),
                channel=channel,
                waiting=int(waiting),
                oldest_age_s=age(now, oldest) or 0.0,
                last_error=last_error or "",
            )
        )
    return sorted(problems, key=lambda p: (-p.oldest_age_s, p.contact_id))


# A delivery failure this recent still counts against the alert path.
RECENT_FAILURE = timedelta(minutes=15)


def alert_path_healthy(
    session: Session, now: datetime, limit_s: float, sender_channels: Iterable[str]
) -> bool:
    """One yes or no for a kiosk's self-check: nothing stalled, no contact's messages kept
    waiting, a deliverer finished a round lately, and no alert failed in RECENT_FAILURE."""
    state = delivery_state(session, now, limit_s, sender_channels)
    if state.stalled or state.contacts:
        return False
    if state.heartbeat_age_s is None or state.heartbeat_age_s > limit_s:
        return False
    failed = session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.status.in_(("failed", "dead")),
            OutboxMessage.kind.in_(ALERT_KINDS),
            OutboxMessage.failed_at >= now - RECENT_FAILURE,
        )
    )
    return not failed
