"""The OpenAPI 3 document of API v1, built from one Python description.

The filter values come from the same vocabularies the review log's form offers, so the
document and the checks cannot drift apart; tests run schemathesis against it."""

from __future__ import annotations

from typing import Any

from kiosk.ferpa.operations import EXCEPTIONS
from kiosk.ferpa.reads import NOTICE_STATES
from kiosk.protocol.documents import DocType
from kiosk.protocol.state import Status
from kiosk.review.forms import ReviewFilterForm
from kiosk.vocabulary import AGENCIES, CHANNELS, OUTCOMES, REQUEST_KINDS

FILTER_NAMES = ReviewFilterForm.FILTER_NAMES
YES_NO = ["yes", "no"]


def _text(nullable: bool = False, **extra: Any) -> dict[str, Any]:
    return {"type": "string", **({"nullable": True} if nullable else {}), **extra}


def _time(nullable: bool = True) -> dict[str, Any]:
    return _text(nullable, format="date-time")


def _object(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    """An object whose every property is always present (null when not recorded)."""
    shape: dict[str, Any] = {
        "type": "object",
        "required": sorted(properties),
        "properties": properties,
        "additionalProperties": False,
    }
    if description:
        shape["description"] = description
    return shape


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


SUMMARY = {
    "public_id": _text(),
    "school": _object({"public_id": _text(), "name": _text()}),
    "started_at": _time(nullable=False),
    "channel": _text(description="in_person, phone, email, letter or offsite"),
    "status": _text(enum=[s.value for s in Status]),
    "outcome": _text(nullable=True),
    "document_first_impression": _text(nullable=True),
    "document_confirmed": _text(nullable=True),
    "exigency": {"type": "boolean", "nullable": True},
    "stood_down": {"type": "boolean"},
    "first_acknowledged_at": _time(),
    "acknowledged_late": {"type": "boolean"},
    "resolved_at": _time(),
    "people_named": {
        "type": "integer",
        "minimum": 0,
        "description": "How many people the agents named (withdrawn names not counted). "
        "Their names are never given.",
    },
}

AGENT = _object(
    {
        "position": {"type": "integer"},
        "name": _text(nullable=True),
        "badge_number": _text(nullable=True),
        "agency_printed": _text(nullable=True),
        "agency_pick": _text(nullable=True),
        "title": _text(nullable=True),
        "phone": _text(nullable=True),
        "supervisor_name": _text(nullable=True),
        "supervisor_phone": _text(nullable=True),
        "id_shown": _array(_text()),
        "attire": _text(nullable=True),
        "card_kept": {"type": "boolean"},
    },
    "An agent as the desk recorded them.",
)

DOCUMENT = _object(
    {
        "position": {"type": "integer"},
        "first_impression": _text(nullable=True),
        "pick": _text(nullable=True),
        "names_person": _text(nullable=True),
        "confirmed_type": _text(nullable=True),
        "confirmed_at": _time(),
        "dates": _text(nullable=True),
        "matches_school": _text(nullable=True),
        "photos": {"type": "integer", "minimum": 0},
    },
    "A document the agents showed; its photos are counted, never sent.",
)

NOTIFICATION = _object(
    {
        "channel": _text(),
        "kind": _text(),
        "level": {"type": "integer"},
        "status": _text(),
        "created_at": _time(nullable=False),
        "sent_at": _time(),
        "acknowledged_at": _time(),
    },
    "A message to a contact, and when that contact first acknowledged.",
)

DETAIL = {
    **SUMMARY,
    "place": _text(nullable=True),
    "agents_present": {"type": "integer", "nullable": True},
    "first_alert_sent_at": _time(),
    "desk_closed_at": _time(),
    "stood_down_at": _time(),
    "escalation_level": {"type": "integer"},
    "script_version": {
        **_object({"id": {"type": "integer"}, "label": _text(), "sha256": _text()}),
        "nullable": True,
    },
    "agents": _array(_ref("Agent")),
    "request": _object(
        {
            "kinds": _array(_text()),
            "other_recorded": {"type": "boolean"},
            "purpose_recorded": {
                "type": "boolean",
                "description": "Whether the stated purpose was recorded; its words may name "
                "someone, so they are read on the record page only.",
            },
            "consent_claimed": _text(nullable=True),
        }
    ),
    "documents": _array(_ref("Document")),
    "notifications": _array(_ref("Notification")),
    "events_url": _text(),
}

EVENT = _object(
    {
        "seq": {"type": "integer"},
        "at": _time(nullable=False),
        "kind": _text(),
        "actor_kind": _text(),
        "actor_label": _text(),
        "script_version_id": {"type": "integer", "nullable": True},
        "data": {
            "type": "object",
            "description": 'The change\'s categories; free text is given as "recorded".',
        },
    }
)

FERPA_RECORD = _object(
    {
        "public_id": _text(),
        "student": _object(
            {
                "public_id": _text(),
                "local_id": _text(nullable=True),
                "name": _text(description="The student's own name, as enrolled."),
            }
        ),
        "school": _object({"public_id": _text(), "name": _text()}),
        "encounter_public_id": _text(),
        "requested_at": _time(nullable=False),
        "requested_on": _text(format="date", description="The date in the school's time zone."),
        "channel": _text(enum=[v for v, _ in CHANNELS]),
        "request_kinds": _array(_text()),
        "document_type": _text(nullable=True),
        "requester": _text(description="Each agent as recorded, one a line."),
        "agency": _text(),
        "basis": _text(description="The stated interest or legal basis."),
        "released": _text(description="What was released, and to whom."),
        "exception": _text(enum=[v for v, _ in EXCEPTIONS]),
        "exception_label": _text(),
        "released_anything": {"type": "boolean"},
        "notice": _object(
            {
                "state": _text(enum=list(NOTICE_STATES)),
                "text": _text(description="The state in words, as the student's file shows it."),
                "due_on": _text(nullable=True, format="date"),
                "sent_on": _text(nullable=True, format="date"),
                "method": _text(nullable=True),
            },
            "The advance notice to the parent.",
        ),
        "nondisclosure": {
            "type": "boolean",
            "description": "Counsel recorded a non-disclosure order: the parent's copy leaves "
            "this record out.",
        },
        "updated_at": _time(),
        "withdrawn_at": _time(),
    },
    "One 99.32 request record in a student's file. Other people named in the same "
    "encounter were taken out of every copied text when it was made.",
)

ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": _text(),
        "message": _text(),
        "fields": {
            "type": "object",
            "additionalProperties": _array(_text()),
            "description": "For invalid_filters: each filter at fault and what to correct.",
        },
    },
}


def _error(description: str, challenge: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if challenge:
        response["headers"] = {
            "WWW-Authenticate": {"schema": _text(), "description": 'Bearer realm="api", ...'}
        }
    return response


REFUSALS = {
    "401": _error(
        "No bearer token, or one that does not work: unknown, revoked, or its holder disabled.",
        challenge=True,
    ),
    "403": _error("The token's holder no longer holds the reviewer or counsel role."),
}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _parameters() -> list[dict[str, Any]]:
    return [
        _query("school", "A school's public id, of a school the holder reads.", _text()),
        _query("date_from", "Started on or after this UTC date.", _text(format="date")),
        _query(
            "date_to",
            "Started on or before this UTC date (not before date_from).",
            _text(format="date"),
        ),
        _query("state", "Open (not yet closed) or ended.", _text(enum=["open", "ended"])),
        _query("channel", "How the request came.", _text(enum=[v for v, _ in CHANNELS])),
        _query(
            "document",
            "Document type: the confirmed one, else the desk's first impression.",
            _text(enum=[kind.value for kind in DocType]),
        ),
        _query("exigency", "Emergency declared.", _text(enum=YES_NO)),
        _query(
            "outcome",
            'Outcome; "none" for not recorded.',
            _text(enum=["none", *(v for v, _ in OUTCOMES)]),
        ),
        _query("stood_down", "Stood down at the desk.", _text(enum=YES_NO)),
        _query("late", "Acknowledged late.", _text(enum=YES_NO)),
        _query(
            "agency",
            "An agency any agent of the encounter was recorded with, as picked at the desk.",
            _text(enum=[v for v, _ in AGENCIES]),
        ),
        _query(
            "request_kind",
            "One kind of what was asked for (an encounter may ask for several).",
            _text(enum=[v for v, _ in REQUEST_KINDS]),
        ),
        _query(
            "after",
            "The next_cursor of the page before: the next page starts after it.",
            _text(pattern=r"^[0-9]{1,20}-[0-9]{1,20}$"),
        ),
    ]


def _ferpa_parameters() -> list[dict[str, Any]]:
    return [
        _query("school", "A school's public id, of a school the holder reads.", _text()),
        _query("date_from", "Requested on or after this UTC date.", _text(format="date")),
        _query(
            "date_to",
            "Requested on or before this UTC date (not before date_from).",
            _text(format="date"),
        ),
        _query(
            "exception",
            "The exception anything was released under.",
            _text(enum=[v for v, _ in EXCEPTIONS]),
        ),
        _query(
            "released", 'Anything released (an exception other than "none").', _text(enum=YES_NO)
        ),
        _query(
            "notice",
            "The parent notice's state; due and overdue by the school's own date.",
            _text(enum=list(NOTICE_STATES)),
        ),
        _query(
            "after",
            "The next_cursor of the page before: the next page starts after it.",
            _text(pattern=r"^[0-9]{1,20}-[0-9]{1,20}$"),
        ),
    ]


PUBLIC_ID_PARAMETER = {
    "name": "public_id",
    "in": "path",
    "required": True,
    "schema": _text(pattern="^[A-Za-z0-9_-]{1,32}$"),
}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.0 document."""
    not_found = _error("No encounter with this id among the schools the holder reads.")
    no_record = _error("No request record with this id among the schools the holder reads.")
    no_student = _error("No student with this id among the schools the holder reads.")
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "School front-office protocol kiosk: review API",
            "version": "1.0.0",
            "description": "Read-only. Encounters hold categories, states and times, the "
            "agents as recorded, and a count of the people named, never their names or free "
            "text. FERPA request records are each one student's: they name that student, "
            "never another person of the same encounter. Every use is recorded in the audit "
            "log.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/encounters": {
                "get": {
                    "operationId": "listEncounters",
                    "summary": "Encounters, newest first, 50 to a page",
                    "parameters": _parameters(),
                    "responses": {
                        "200": _ok("One page of encounters.", _ref("EncounterPage")),
                        "400": _error("A filter is not valid: fields says which."),
                        **REFUSALS,
                    },
                }
            },
            "/encounters/{public_id}": {
                "get": {
                    "operationId": "getEncounter",
                    "summary": "One encounter",
                    "parameters": [PUBLIC_ID_PARAMETER],
                    "responses": {
                        "200": _ok("The encounter.", _ref("Encounter")),
                        **REFUSALS,
                        "404": not_found,
                    },
                }
            },
            "/encounters/{public_id}/events": {
                "get": {
                    "operationId": "getEncounterEvents",
                    "summary": "One encounter's events, oldest first",
                    "parameters": [PUBLIC_ID_PARAMETER],
                    "responses": {
                        "200": _ok(
                            "The events.",
                            _object({"public_id": _text(), "events": _array(_ref("Event"))}),
                        ),
                        **REFUSALS,
                        "404": not_found,
                    },
                }
            },
            "/ferpa/records": {
                "get": {
                    "operationId": "listFerpaRecords",
                    "summary": "FERPA request records, newest request first, 50 to a page",
                    "parameters": _ferpa_parameters(),
                    "responses": {
                        "200": _ok("One page of request records.", _ref("FerpaRecordPage")),
                        "400": _error("A filter is not valid: fields says which."),
                        **REFUSALS,
                    },
                }
            },
            "/ferpa/records/{public_id}": {
                "get": {
                    "operationId": "getFerpaRecord",
                    "summary": "One FERPA request record",
                    "parameters": [PUBLIC_ID_PARAMETER],
                    "responses": {
                        "200": _ok("The request record.", _ref("FerpaRecord")),
                        **REFUSALS,
                        "404": no_record,
                    },
                }
            },
            "/ferpa/students/{public_id}/records": {
                "get": {
                    "operationId": "getFerpaStudentRecords",
                    "summary": "One student's file: the request records, oldest first",
                    "parameters": [
                        PUBLIC_ID_PARAMETER,
                        _query(
                            "copy",
                            "The official's file, or the parent's copy (\"parent\"), which "
                            "leaves out requests under a non-disclosure order.",
                            _text(enum=["file", "parent"]),
                        ),
                    ],
                    "responses": {
                        "200": _ok("The student's records.", _ref("FerpaStudentRecords")),
                        "400": _error("copy is neither file nor parent."),
                        **REFUSALS,
                        "404": no_student,
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": _ok("The OpenAPI document.", {"type": "object"})},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token made by an administrator or with "
                    "`flask --app app api-tokens create`, for a reviewer or counsel.",
                }
            },
            "schemas": {
                "EncounterSummary": _object(SUMMARY),
                "EncounterPage": _object(
                    {
                        "items": _array(_ref("EncounterSummary")),
                        "next_cursor": _text(
                            nullable=True, description="Pass as after= for the next page."
                        ),
                        "next_url": _text(nullable=True),
                    }
                ),
                "Encounter": _object(DETAIL),
                "Agent": AGENT,
                "Document": DOCUMENT,
                "Notification": NOTIFICATION,
                "Event": EVENT,
                "FerpaRecord": FERPA_RECORD,
                "FerpaRecordPage": _object(
                    {
                        "items": _array(_ref("FerpaRecord")),
                        "next_cursor": _text(
                            nullable=True, description="Pass as after= for the next page."
                        ),
                        "next_url": _text(nullable=True),
                    }
                ),
                "FerpaStudentRecords": _object(
                    {
                        "student": _object(
                            {
                                "public_id": _text(),
                                "local_id": _text(nullable=True),
                                "name": _text(),
                            }
                        ),
                        "copy": _text(enum=["file", "parent"]),
                        "records": _array(_ref("FerpaRecord")),
                    }
                ),
                "Error": ERROR,
            },
        },
    }
