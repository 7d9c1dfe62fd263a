"""Every table, re-exported from one place."""

from kiosk.models.api_tokens import ApiToken
from kiosk.models.base import Base, UTCDateTime, new_public_id
from kiosk.models.delivery import (
    Acknowledgement,
    AuditEntry,
    AuditHead,
    AuditVerification,
    OutboxMessage,
    TestAlert,
    WorkerHeartbeat,
)
from kiosk.models.encounters import (
    Agent,
    DeskMessage,
    Document,
    Encounter,
    EncounterEvent,
    LateAddition,
    NamedPerson,
    Photo,
    ScriptVersion,
)
from kiosk.models.ferpa import PersonMatch, RequestRecord, Student
from kiosk.models.invitations import INVITATION_PURPOSES, Invitation
from kiosk.models.places import ROLES, Contact, District, Kiosk, RoleGrant, School, User
from kiosk.models.review import PrivilegedNote, SearchTerm
from kiosk.models.sealed import SealedText
from kiosk.models.second_factor import RecoveryCode
from kiosk.models.signin import SigninSession, SigninThrottle

__all__ = [
    "INVITATION_PURPOSES",
    "ROLES",
    "Acknowledgement",
    "Agent",
    "ApiToken",
    "AuditEntry",
    "AuditHead",
    "AuditVerification",
    "Base",
    "Contact",
    "DeskMessage",
    "District",
    "Document",
    "Encounter",
    "EncounterEvent",
    "Invitation",
    "Kiosk",
    "LateAddition",
    "NamedPerson",
    "OutboxMessage",
    "PersonMatch",
    "Photo",
    "PrivilegedNote",
    "RecoveryCode",
    "RequestRecord",
    "RoleGrant",
    "School",
    "ScriptVersion",
    "SealedText",
    "SearchTerm",
    "SigninSession",
    "SigninThrottle",
    "Student",
    "TestAlert",
    "UTCDateTime",
    "User",
    "WorkerHeartbeat",
    "new_public_id",
]
