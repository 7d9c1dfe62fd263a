"""The words of the record, defined once: each value the database keeps, with the label a
person reads (on the kiosk, on the office pages, in forms) and, where an alert speaks of it,
the phrase the alert uses. Plain data: every layer may import it."""

from __future__ import annotations

from collections.abc import Sequence

Choices = Sequence[tuple[str, str]]

CHANNELS: Choices = (
    ("in_person", "In person"),
    ("phone", "Phone"),
    ("email", "Email"),
    ("letter", "Letter"),
    ("offsite", "Our staff, reporting from elsewhere"),
)
# How an alert says it: "A request ... was made at SCHOOL, <phrase>."
CHANNEL_PHRASES = {
    "in_person": "in person at the front desk",
    "phone": "by phone",
    "email": "by email",
    "letter": "by letter",
    "offsite": "reported by school staff from elsewhere",
}

PLACES: Choices = (
    ("front_desk", "Front desk"),
    ("entrance", "Entrance"),
    ("lobby", "Lobby"),
    ("parking_lot", "Parking lot"),
    ("bus", "Bus or bus stop"),
    ("field_trip", "Field trip"),
    ("event", "School event"),
    ("phone", "Phone"),
    ("elsewhere", "Somewhere else"),
)
# Places away from the school building: a school may route them to contacts of their own.
OFFSITE_PLACES = ("bus", "field_trip", "event")
PLACE_PHRASES = {
    "front_desk": "the front desk",
    "entrance": "the entrance",
    "lobby": "the lobby",
    "parking_lot": "the parking lot",
    "bus": "a bus or bus stop",
    "field_trip": "a field trip",
    "event": "a school event",
    "phone": "by phone",
    "elsewhere": "elsewhere",
}

REQUEST_KINDS: Choices = (
    ("student_access", "A student: to see, speak with or take them"),
    ("student_info", "A student's records or information"),
    ("staff", "A staff member"),
    ("adult", "A parent, guardian or other adult at the school"),
    ("entry", "To enter areas that are not public"),
    ("other", "Something else"),
)
REQUEST_KIND_PHRASES = {
    "student_access": "access to a student",
    "student_info": "student information or records",
    "staff": "information about or access to a staff member",
    "adult": "a parent, guardian or other adult at the school",
    "entry": "entry to non-public areas",
    "other": "other",
}

RELATIONS: Choices = (
    ("student", "Student"),
    ("staff", "Staff member"),
    ("family", "Parent or family member"),
    ("unknown", "Not sure"),
)

OUTCOMES: Choices = (
    ("waited", "They are waiting"),
    ("left", "They left"),
    ("designee_took_over", "The district office took over"),
    ("entered_without_consent", "They went in without consent"),
    ("other", "Something else"),
)

ID_SHOWN: Choices = (
    ("freely", "Shown on arrival, without asking"),
    ("when_asked", "Shown only when asked"),
    ("refused", "Refused to show"),
    ("hidden", "Hidden after being shown"),
)

ATTIRE: Choices = (("uniform", "Uniform"), ("plain", "Plain clothes"))

AGENCIES: Choices = (
    ("ice_ero", "ICE ERO"),
    ("hsi", "HSI"),
    ("cbp", "CBP / Border Patrol"),
    ("uscis", "USCIS"),
    ("fbi", "FBI"),
    ("dea", "DEA"),
    ("usms", "US Marshals"),
    ("usss", "Secret Service"),
    ("other_federal", "Other federal agency"),
    ("state_local", "State or local police"),
    ("unknown", "Unknown"),
)


def keys(choices: Choices) -> tuple[str, ...]:
    """The values a column may hold, in order."""
    return tuple(key for key, _ in choices)


def labels(choices: Choices) -> dict[str, str]:
    """Each value's label, for showing what is stored."""
    return dict(choices)
