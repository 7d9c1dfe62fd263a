"""Document kinds an agent may show, and the desk's first-impression triage.

The desk never decides what a document allows. Staff answer a few plain questions;
`triage()` turns the answers into a first impression that picks a safe script, and
the district office confirms the type from the photo. Every doubt resolves away
from "judicial warrant", the one kind the desk treats as something not to obstruct.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from functools import cached_property


class DocType(StrEnum):
    """Name the kinds of document the desk can record as a first impression."""

    JUDICIAL_WARRANT = "judicial_warrant"
    ADMINISTRATIVE_WARRANT = "administrative_warrant"
    JUDICIAL_SUBPOENA = "judicial_subpoena"
    DHS_SUBPOENA = "dhs_subpoena"
    DETAINER = "detainer"
    NOTICE_TO_APPEAR = "notice_to_appear"
    GRAND_JURY_SUBPOENA = "grand_jury_subpoena"
    I9_NOTICE = "i9_notice"
    OTHER = "other"
    NONE = "none"
    UNSURE = "unsure"


ANSWERS = ("yes", "no", "unsure")

ANSWER_CHOICES: tuple[tuple[str, str], ...] = (("yes", "Yes"), ("no", "No"), ("unsure", "Not sure"))

ASKS_CHOICES: tuple[tuple[str, str], ...] = (
    ("enter_or_arrest", "To enter, search, or arrest or take a person"),
    ("records", "Records, information or testimony by a date"),
    ("hold", "To hold a person already in custody"),
    ("appear", "For a person to appear in immigration court"),
    ("employment", "The district's employment records or I-9 forms"),
    ("unsure", "Not sure"),
)

FORM_CHOICES: tuple[tuple[str, str], ...] = (
    ("AO 93", "AO 93"),
    ("AO 442", "AO 442"),
    ("AO 88B", "AO 88B"),
    ("AO 110", "AO 110"),
    ("I-200", "I-200"),
    ("I-205", "I-205"),
    ("I-138", "I-138"),
    ("I-247A", "I-247A"),
    ("I-862", "I-862"),
    ("I-9 notice", "I-9 Notice of Inspection"),
    ("none_seen", "None seen"),
)


@dataclass(frozen=True)
class Question:
    """Hold one triage question and the answers the desk may tap."""

    key: str
    text: str
    choices: tuple[tuple[str, str], ...]
    help: str = ""

    @cached_property
    def values(self) -> frozenset[str]:
        """Return the answer keys this question accepts."""
        return frozenset(key for key, _ in self.choices)

    def allows(self, value: object) -> bool:
        """Return whether value is one of this question's answer keys."""
        return isinstance(value, str) and value in self.values


# Texts are short and neutral because the agent may read the screen.
TRIAGE_QUESTIONS: tuple[Question, ...] = (
    Question(
        key="shown",
        text="Has a document been shown or handed over?",
        choices=ANSWER_CHOICES,
        help="Any paper, letter or screen counts.",
    ),
    Question(
        key="court_named",
        text="Is a court named at the top?",
        choices=ANSWER_CHOICES,
        help='For example "United States District Court for ..." or a state court.',
    ),
    Question(
        key="judge_signed",
        text="Is it signed by a judge or magistrate judge?",
        choices=ANSWER_CHOICES,
        help="Not by a clerk, an attorney or an officer.",
    ),
    Question(
        key="dhs_form",
        text="Is there a Homeland Security heading or a form number starting with I-?",
        choices=ANSWER_CHOICES,
        help="For example Department of Homeland Security, ICE, or forms I-200, I-205, "
        "I-138, I-247A, I-862.",
    ),
    Question(
        key="immigration_court",
        text='Does it say "Immigration Court" or "Immigration Judge"?',
        choices=ANSWER_CHOICES,
    ),
    Question(
        key="grand_jury",
        text='Does it say "grand jury"?',
        choices=ANSWER_CHOICES,
    ),
    Question(
        key="asks",
        text="What does it ask for?",
        choices=ASKS_CHOICES,
    ),
    Question(
        key="form",
        text="Is a form number printed on it?",
        choices=FORM_CHOICES,
        help="Often in a corner, for example AO 93 or I-205.",
    ),
)

QUESTIONS_BY_KEY: Mapping[str, Question] = {q.key: q for q in TRIAGE_QUESTIONS}


@dataclass(frozen=True)
class TriageAnswers:
    """Hold the desk's answers to the triage questions; None means not answered."""

    shown: str | None = None
    court_named: str | None = None
    judge_signed: str | None = None
    dhs_form: str | None = None
    immigration_court: str | None = None
    grand_jury: str | None = None
    asks: str | None = None
    form: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> TriageAnswers:
        """Build answers from stored or posted data, dropping unknown keys and values."""
        # Stored JSON may be old or damaged; a bad value must read as "not answered",
        # never as an answer and never as an error on the desk's screen.
        if not isinstance(data, Mapping):
            return cls()
        return cls(
            **{
                q.key: value if q.allows(value := data.get(q.key)) else None
                for q in TRIAGE_QUESTIONS
            }
        )

    def to_dict(self) -> dict[str, str | None]:
        """Return every answer by question key, None for the unanswered ones."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


DOC_LABELS: dict[DocType, str] = {
    DocType.JUDICIAL_WARRANT: "Warrant signed by a judge",
    DocType.ADMINISTRATIVE_WARRANT: "Administrative warrant",
    DocType.JUDICIAL_SUBPOENA: "Court subpoena or court order for records",
    DocType.DHS_SUBPOENA: "Administrative subpoena",
    DocType.DETAINER: "Detainer (request to hold a person)",
    DocType.NOTICE_TO_APPEAR: "Notice to appear",
    DocType.GRAND_JURY_SUBPOENA: "Grand jury subpoena",
    DocType.I9_NOTICE: "Employment records notice (I-9)",
    DocType.OTHER: "Other document",
    DocType.NONE: "No document shown",
    DocType.UNSURE: "Not sure yet",
}

DOC_MEANING: dict[DocType, str] = {
    DocType.JUDICIAL_WARRANT: (
        "It allows entry or a search limited to exactly what it names; the desk does not "
        "obstruct, and the district office checks the address, dates and scope."
    ),
    DocType.ADMINISTRATIVE_WARRANT: (
        "It is not a judicial warrant: it gives no consent to enter non-public areas and "
        "no access to student information, and the district office reviews it."
    ),
    DocType.JUDICIAL_SUBPOENA: (
        "It asks for records or testimony by a date; records are never released at the "
        "desk, and district counsel responds by that date."
    ),
    DocType.DHS_SUBPOENA: (
        "It is not self-enforcing, so nothing is released at the desk, and district "
        "counsel reviews it."
    ),
    DocType.DETAINER: (
        "It is a request about a person already in custody; it gives no authority at a "
        "school, and the district office handles it."
    ),
    DocType.NOTICE_TO_APPEAR: (
        "It is a charging document for immigration court; it gives no authority to enter "
        "or to obtain information, and the district office handles it."
    ),
    DocType.GRAND_JURY_SUBPOENA: (
        "It asks for records only, handled through district counsel; it may come with an "
        "order not to disclose it, which only counsel records."
    ),
    DocType.I9_NOTICE: (
        "It concerns the district's employment records, not students; it goes to human "
        "resources and district counsel, usually within three business days."
    ),
    DocType.OTHER: (
        "It fits none of the listed kinds; the district office reviews it, and until then "
        "there is no access beyond the public areas and no information."
    ),
    DocType.NONE: (
        "There is nothing to review: no access and no information, and the district office "
        "verifies any claimed parental consent directly with the guardian."
    ),
    DocType.UNSURE: (
        "It is treated as not a judge-signed warrant until the district office decides: "
        "no access beyond the public areas and no information."
    ),
}


# Who issues a document. Court-side and Homeland-Security-side answers on the same
# paper contradict each other, and a contradiction is never read as a warrant.
_COURT = "court"
_GRAND_JURY = "grand_jury"
_DHS = "dhs"
_IMMIGRATION_COURT = "immigration_court"
_COURT_SIDE = frozenset({_COURT, _GRAND_JURY})
_DHS_SIDE = frozenset({_DHS, _IMMIGRATION_COURT})
# Most specific first: "grand jury" narrows "court", a DHS heading outranks a mention
# of an immigration judge (a Form I-205 can mention one).
_ISSUER_ORDER = (_GRAND_JURY, _COURT, _DHS, _IMMIGRATION_COURT)


@dataclass(frozen=True)
class _Form:
    doc: DocType
    issuer: str
    asks: str


_FORMS: Mapping[str, _Form] = {
    "AO 93": _Form(DocType.JUDICIAL_WARRANT, _COURT, "enter_or_arrest"),
    "AO 442": _Form(DocType.JUDICIAL_WARRANT, _COURT, "enter_or_arrest"),
    "AO 88B": _Form(DocType.JUDICIAL_SUBPOENA, _COURT, "records"),
    "AO 110": _Form(DocType.GRAND_JURY_SUBPOENA, _GRAND_JURY, "records"),
    "I-200": _Form(DocType.ADMINISTRATIVE_WARRANT, _DHS, "enter_or_arrest"),
    "I-205": _Form(DocType.ADMINISTRATIVE_WARRANT, _DHS, "enter_or_arrest"),
    "I-138": _Form(DocType.DHS_SUBPOENA, _DHS, "records"),
    "I-247A": _Form(DocType.DETAINER, _DHS, "hold"),
    "I-862": _Form(DocType.NOTICE_TO_APPEAR, _DHS, "appear"),
    "I-9 notice": _Form(DocType.I9_NOTICE, _DHS, "employment"),
}

# The documents table as (who issues it, what it asks for). A pair not listed, such
# as a court paper asking to hold someone, is a mix-up and reads as UNSURE.
_BY_ISSUER_AND_ASK: Mapping[tuple[str | None, str | None], DocType] = {
    (_COURT, "enter_or_arrest"): DocType.JUDICIAL_WARRANT,
    (_COURT, "records"): DocType.JUDICIAL_SUBPOENA,
    (_GRAND_JURY, "records"): DocType.GRAND_JURY_SUBPOENA,
    (_GRAND_JURY, None): DocType.GRAND_JURY_SUBPOENA,
    (_DHS, "enter_or_arrest"): DocType.ADMINISTRATIVE_WARRANT,
    (_DHS, "records"): DocType.DHS_SUBPOENA,
    (_DHS, "hold"): DocType.DETAINER,
    (_DHS, "appear"): DocType.NOTICE_TO_APPEAR,
    (_DHS, "employment"): DocType.I9_NOTICE,
    # An immigration judge is not a judge in the warrant sense.
    (_IMMIGRATION_COURT, "enter_or_arrest"): DocType.ADMINISTRATIVE_WARRANT,
    (_IMMIGRATION_COURT, "appear"): DocType.NOTICE_TO_APPEAR,
    # These asks fit one kind only, whoever the desk thinks issued the paper.
    (None, "hold"): DocType.DETAINER,
    (None, "appear"): DocType.NOTICE_TO_APPEAR,
    (None, "employment"): DocType.I9_NOTICE,
}

_DETAIL_KEYS = tuple(q.key for q in TRIAGE_QUESTIONS if q.key != "shown")


def triage(answers: TriageAnswers) -> DocType | None:
    """Return the desk's first impression of a document, or None if nothing is answered."""
    # A hand-built TriageAnswers with a stray value must behave exactly like the same
    # answers coming from a form or from storage: the stray value reads as unanswered.
    a = answers
    if not all(q.allows(v) for q in TRIAGE_QUESTIONS if (v := getattr(a, q.key)) is not None):
        a = TriageAnswers.from_mapping(a.to_dict())
    if a.shown == "no":
        return DocType.NONE
    if all(getattr(a, key) is None for key in _DETAIL_KEYS):
        # "Not sure whether anything was shown" is already an impression; a plain
        # "yes" is only the start of the questions.
        return DocType.UNSURE if a.shown == "unsure" else None

    form = _FORMS.get(a.form or "")
    if form is not None and _contradicts_form(a, form):
        return DocType.UNSURE

    issuers = _issuers(a, form)
    if issuers & _COURT_SIDE and issuers & _DHS_SIDE:
        return DocType.UNSURE
    issuer = next((i for i in _ISSUER_ORDER if i in issuers), None)

    asks = {ask for ask in (form.asks if form else None, a.asks) if ask not in (None, "unsure")}
    if len(asks) > 1:
        return DocType.UNSURE
    ask = next(iter(asks), None)

    if issuer is None and a.court_named == "no" and a.dhs_form == "no":
        return DocType.OTHER
    doc = _BY_ISSUER_AND_ASK.get((issuer, ask), DocType.UNSURE)
    if form is not None and doc is not form.doc:
        return DocType.UNSURE
    if doc is DocType.JUDICIAL_WARRANT and not _is_clearly_judicial_warrant(a):
        return DocType.UNSURE
    return doc


def _issuers(a: TriageAnswers, form: _Form | None) -> set[str]:
    """Return every issuer the answers point to."""
    issuers = {form.issuer} if form is not None else set()
    if a.grand_jury == "yes":
        issuers.add(_GRAND_JURY)
    if a.dhs_form == "yes":
        issuers.add(_DHS)
    if a.immigration_court == "yes":
        # Staff may call an immigration court "a court" and its judge "a judge"; those
        # answers then describe the immigration court, not a court in the warrant sense.
        issuers.add(_IMMIGRATION_COURT)
    elif a.court_named == "yes" or a.judge_signed == "yes":
        issuers.add(_COURT)
    return issuers


def _contradicts_form(a: TriageAnswers, form: _Form) -> bool:
    """Return whether a "no" answer denies what the printed form always carries."""
    if form.issuer in _DHS_SIDE and a.dhs_form == "no":
        return True
    if form.issuer in _COURT_SIDE and a.court_named == "no":
        return True
    return form.issuer == _GRAND_JURY and a.grand_jury == "no"


def _is_clearly_judicial_warrant(a: TriageAnswers) -> bool:
    """Return whether every answer that could rule out a judicial warrant was answered."""
    # "Not sure" or a skipped question on any of these keeps the impression at
    # UNSURE, which the desk handles as "not a judge-signed warrant".
    return (
        a.shown in ("yes", None)
        and a.court_named == "yes"
        and a.judge_signed == "yes"
        and a.dhs_form == "no"
        and a.immigration_court == "no"
        and a.grand_jury == "no"
    )
