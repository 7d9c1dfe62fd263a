"""Every table, re-exported from one place."""

from kiosk.models.base import Base, SealedText, UTCDateTime, new_public_id
from kiosk.models.delivery import Acknowledgement, AuditEntry, OutboxMessage
from kiosk.models.encounters import (
    Agent,
    Document,
    Encounter,
    EncounterEvent,
    NamedPerson,
    ScriptVersion,
)
from kiosk.models.places import ROLES, Contact, District, Kiosk, RoleGrant, School, User

__all__ = [
    "ROLES",
    "Acknowledgement",
    "Agent",
    "AuditEntry",
    "Base",
    "Contact",
    "District",
    "Document",
    "Encounter",
    "EncounterEvent",
    "Kiosk",
    "NamedPerson",
    "OutboxMessage",
    "RoleGrant",
    "School",
    "ScriptVersion",
    "SealedText",
    "UTCDateTime",
    "User",
    "new_public_id",
]
