"""First-impression triage: the documents table, its traps, and doubt away from warrants."""

from __future__ import annotations

import itertools

import pytest

from kiosk.protocol.documents import (
    ANSWERS,
    DOC_LABELS,
    DOC_MEANING,
    TRIAGE_QUESTIONS,
    DocType,
    TriageAnswers,
    triage,
)
from kiosk.protocol.picks import PICKS, PICKS_BY_KEY, Pick

W = DocType

# Answers a careful staff member gives for a clean example of each kind, with every
# question answered. Rows below override only what differs.
CLEAN_NO = {
    "shown": "yes",
    "court_named": "no",
    "judge_signed": "no",
    "dhs_form": "no",
    "immigration_court": "no",
    "grand_jury": "no",
}


def answers(**given: str) -> TriageAnswers:
    """Return clean "no" answers overridden by the given ones."""
    return TriageAnswers(**{**CLEAN_NO, **given})


# One or more rows for every row of the documents table in PROTOCOL.md.
TABLE = [
    # Judicial search warrant (AO 93), arrest warrant (AO 442), state court warrant.
    (
        "AO 93 search warrant",
        answers(court_named="yes", judge_signed="yes", asks="enter_or_arrest", form="AO 93"),
        W.JUDICIAL_WARRANT,
    ),
    (
        "AO 442 arrest warrant",
        answers(court_named="yes", judge_signed="yes", asks="enter_or_arrest", form="AO 442"),
        W.JUDICIAL_WARRANT,
    ),
    (
        "state court warrant, no form number",
        answers(court_named="yes", judge_signed="yes", asks="enter_or_arrest", form="none_seen"),
        W.JUDICIAL_WARRANT,
    ),
    (
        "AO 442 with the ask left unsure",
        answers(court_named="yes", judge_signed="yes", asks="unsure", form="AO 442"),
        W.JUDICIAL_WARRANT,
    ),
    # Administrative arrest warrant (I-200) or warrant of removal (I-205).
    (
        "I-200 administrative arrest warrant",
        answers(dhs_form="yes", asks="enter_or_arrest", form="I-200"),
        W.ADMINISTRATIVE_WARRANT,
    ),
    (
        "I-205 warrant of removal",
        answers(dhs_form="yes", asks="enter_or_arrest", form="I-205"),
        W.ADMINISTRATIVE_WARRANT,
    ),
    (
        "DHS heading asking to arrest, no form number seen",
        answers(dhs_form="yes", asks="enter_or_arrest", form="none_seen"),
        W.ADMINISTRATIVE_WARRANT,
    ),
    # Judicial subpoena or court order for records (AO 88B).
    (
        "AO 88B subpoena for records",
        answers(court_named="yes", asks="records", form="AO 88B"),
        W.JUDICIAL_SUBPOENA,
    ),
    (
        "court order for records signed by a judge",
        answers(court_named="yes", judge_signed="yes", asks="records", form="none_seen"),
        W.JUDICIAL_SUBPOENA,
    ),
    # DHS administrative subpoena (I-138).
    (
        "I-138 subpoena",
        answers(dhs_form="yes", asks="records", form="I-138"),
        W.DHS_SUBPOENA,
    ),
    # Detainer (I-247A).
    (
        "I-247A detainer",
        answers(dhs_form="yes", asks="hold", form="I-247A"),
        W.DETAINER,
    ),
    (
        "request to hold, form and heading not sure",
        TriageAnswers(shown="yes", dhs_form="unsure", asks="hold"),
        W.DETAINER,
    ),
    # Notice to Appear (I-862).
    (
        "I-862 notice to appear",
        answers(dhs_form="yes", immigration_court="yes", asks="appear", form="I-862"),
        W.NOTICE_TO_APPEAR,
    ),
    (
        "asks someone to appear in immigration court, nothing else known",
        TriageAnswers(shown="yes", asks="appear"),
        W.NOTICE_TO_APPEAR,
    ),
    # Grand jury subpoena (AO 110).
    (
        "AO 110 grand jury subpoena",
        answers(court_named="yes", grand_jury="yes", asks="records", form="AO 110"),
        W.GRAND_JURY_SUBPOENA,
    ),
    (
        "says grand jury, nothing else known",
        TriageAnswers(shown="yes", grand_jury="yes"),
        W.GRAND_JURY_SUBPOENA,
    ),
    # Form I-9 Notice of Inspection.
    (
        "I-9 notice of inspection",
        answers(dhs_form="yes", asks="employment", form="I-9 notice"),
        W.I9_NOTICE,
    ),
    (
        "asks for employment records, nothing else known",
        TriageAnswers(shown="yes", asks="employment"),
        W.I9_NOTICE,
    ),
    # No document, a verbal request, a welfare check, a claimed parental consent.
    ("no document shown", TriageAnswers(shown="no"), W.NONE),
    (
        "no document, stale answers left from an earlier tap",
        TriageAnswers(shown="no", court_named="yes", judge_signed="yes", asks="enter_or_arrest"),
        W.NONE,
    ),
    # A document that fits none of the kinds.
    (
        "paper with no court and no DHS heading asking for records",
        answers(asks="records", form="none_seen"),
        W.OTHER,
    ),
]

# Every trap listed under the documents table.
TRAPS = [
    (
        "Immigration Judge order read as a court and a judge",
        answers(
            court_named="yes",
            judge_signed="yes",
            immigration_court="yes",
            asks="enter_or_arrest",
            form="none_seen",
        ),
        W.ADMINISTRATIVE_WARRANT,
    ),
    (
        "Immigration Court order to appear read as a court and a judge",
        answers(court_named="yes", judge_signed="yes", immigration_court="yes", asks="appear"),
        W.NOTICE_TO_APPEAR,
    ),
    (
        'I-205 with "WARRANT" in large letters, signed by an officer',
        answers(dhs_form="yes", judge_signed="no", asks="enter_or_arrest", form="I-205"),
        W.ADMINISTRATIVE_WARRANT,
    ),
    (
        "I-205 mentioning an immigration judge",
        answers(
            dhs_form="yes",
            immigration_court="yes",
            judge_signed="unsure",
            asks="enter_or_arrest",
            form="I-205",
        ),
        W.ADMINISTRATIVE_WARRANT,
    ),
    (
        "DHS heading asking to arrest, signer unclear",
        answers(dhs_form="yes", judge_signed="unsure", asks="enter_or_arrest"),
        W.ADMINISTRATIVE_WARRANT,
    ),
    (
        "subpoena signed by a court clerk",
        answers(court_named="yes", judge_signed="no", asks="records", form="AO 88B"),
        W.JUDICIAL_SUBPOENA,
    ),
    (
        "subpoena signed by an attorney, signer unsure",
        answers(court_named="yes", judge_signed="unsure", asks="records"),
        W.JUDICIAL_SUBPOENA,
    ),
    (
        "DHS I-138 subpoena is a DHS subpoena, not a court subpoena",
        answers(dhs_form="yes", judge_signed="no", asks="records", form="I-138"),
        W.DHS_SUBPOENA,
    ),
]


@pytest.mark.parametrize(
    ("given", "expected"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_documents_table(given: TriageAnswers, expected: DocType) -> None:
    assert triage(given) is expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [row[1:] for row in TRAPS],
    ids=[row[0] for row in TRAPS],
)
def test_traps(given: TriageAnswers, expected: DocType) -> None:
    assert triage(given) is expected


# Papers that look like warrants but are not, or answers that contradict each other:
# none may read as a judicial warrant, and each must stay in the safe kinds given.
NEVER_A_WARRANT = [
    (
        "I-205 read as having a court at the top",
        answers(court_named="yes", dhs_form="yes", asks="enter_or_arrest", form="I-205"),
        {W.UNSURE},
    ),
    (
        "DHS heading but read as signed by a judge",
        answers(court_named="yes", judge_signed="yes", dhs_form="yes", asks="enter_or_arrest"),
        {W.UNSURE},
    ),
    (
        "court subpoena read as asking to enter",
        answers(court_named="yes", judge_signed="no", asks="enter_or_arrest", form="AO 88B"),
        {W.UNSURE},
    ),
    (
        "court paper asking to arrest, signed by a clerk",
        answers(court_named="yes", judge_signed="no", asks="enter_or_arrest"),
        {W.UNSURE},
    ),
    (
        "court paper asking to arrest, signer unsure",
        answers(court_named="yes", judge_signed="unsure", asks="enter_or_arrest"),
        {W.UNSURE},
    ),
    (
        "judge-signed warrant, but Immigration Court not ruled out",
        answers(
            court_named="yes",
            judge_signed="yes",
            immigration_court="unsure",
            asks="enter_or_arrest",
        ),
        {W.UNSURE},
    ),
    (
        "judge-signed warrant, DHS heading not ruled out",
        answers(court_named="yes", judge_signed="yes", dhs_form="unsure", asks="enter_or_arrest"),
        {W.UNSURE},
    ),
    (
        "judge-signed warrant, DHS heading question skipped",
        TriageAnswers(
            shown="yes",
            court_named="yes",
            judge_signed="yes",
            immigration_court="no",
            grand_jury="no",
            asks="enter_or_arrest",
        ),
        {W.UNSURE},
    ),
    (
        "not sure anything was shown",
        answers(shown="unsure", court_named="yes", judge_signed="yes", asks="enter_or_arrest"),
        {W.UNSURE},
    ),
    (
        "AO 93 with no court named",
        answers(court_named="no", judge_signed="yes", asks="enter_or_arrest", form="AO 93"),
        {W.UNSURE},
    ),
    (
        "grand jury paper read as asking to arrest",
        answers(court_named="yes", judge_signed="yes", grand_jury="yes", asks="enter_or_arrest"),
        {W.UNSURE},
    ),
    (
        "asks to arrest, nothing else known",
        TriageAnswers(shown="yes", asks="enter_or_arrest"),
        {W.UNSURE},
    ),
    (
        "I-205 number but answered as having no DHS heading",
        answers(dhs_form="no", asks="enter_or_arrest", form="I-205"),
        {W.UNSURE},
    ),
    (
        "form number and ask disagree",
        answers(dhs_form="yes", asks="records", form="I-200"),
        {W.UNSURE},
    ),
]


@pytest.mark.parametrize(
    ("given", "allowed"),
    [row[1:] for row in NEVER_A_WARRANT],
    ids=[row[0] for row in NEVER_A_WARRANT],
)
def test_doubt_and_contradiction_stay_away_from_a_warrant(
    given: TriageAnswers, allowed: set[DocType]
) -> None:
    assert triage(given) in allowed


# Answers pointing to both a court and Homeland Security, or to two different asks,
# are a mix-up: the district office sorts it out from the photo.
CONTRADICTIONS = [
    (
        "court named and DHS heading, asking for records",
        answers(court_named="yes", dhs_form="yes", asks="records"),
    ),
    (
        "signed by a judge under a DHS heading, asking to hold",
        answers(judge_signed="yes", dhs_form="yes", asks="hold"),
    ),
    ("grand jury and Immigration Court", answers(grand_jury="yes", immigration_court="yes")),
    ("court paper asking someone to be held", answers(court_named="yes", asks="hold")),
    ("AO 88B with grand jury", answers(court_named="yes", grand_jury="yes", form="AO 88B")),
    ("AO 110 but no grand jury", answers(court_named="yes", grand_jury="no", form="AO 110")),
    ("I-9 notice asking for records", answers(dhs_form="yes", asks="records", form="I-9 notice")),
]


@pytest.mark.parametrize(
    "given", [row[1] for row in CONTRADICTIONS], ids=[row[0] for row in CONTRADICTIONS]
)
def test_contradictions_are_unsure(given: TriageAnswers) -> None:
    assert triage(given) is W.UNSURE


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (TriageAnswers(), None),
        (TriageAnswers(shown="yes"), None),
        (TriageAnswers(shown="unsure"), W.UNSURE),
        (TriageAnswers(shown="yes", form="none_seen"), W.UNSURE),
        (TriageAnswers(shown="yes", court_named="unsure"), W.UNSURE),
        (TriageAnswers(shown="yes", dhs_form="yes"), W.UNSURE),
    ],
    ids=[
        "nothing answered",
        "only that a document was shown",
        "not sure anything was shown",
        "no form number, nothing else",
        "court unsure, nothing else",
        "DHS heading, ask not known",
    ],
)
def test_partial_answers(given: TriageAnswers, expected: DocType | None) -> None:
    assert triage(given) is expected


def _choices(key: str) -> tuple[str | None, ...]:
    question = next(q for q in TRIAGE_QUESTIONS if q.key == key)
    return (None, *(value for value, _ in question.choices))


def test_every_combination_keeps_warrants_strict() -> None:
    keys = [q.key for q in TRIAGE_QUESTIONS]
    seen: set[DocType | None] = set()
    for combo in itertools.product(*(_choices(key) for key in keys)):
        given = TriageAnswers(**dict(zip(keys, combo, strict=True)))
        result = triage(given)
        seen.add(result)
        assert result is None or isinstance(result, DocType)
        if result is W.JUDICIAL_WARRANT:
            assert given.court_named == "yes", given
            assert given.judge_signed == "yes", given
            assert given.immigration_court != "yes", given
            assert given.dhs_form != "yes", given
            assert given.grand_jury != "yes", given
            assert given.shown != "unsure", given
            assert given.form in (None, "none_seen", "AO 93", "AO 442"), given
            assert given.asks == "enter_or_arrest" or given.form in ("AO 93", "AO 442"), given
        if given.shown == "no":
            assert result is W.NONE, given
        if result is None:
            assert given.shown in (None, "yes"), given
            assert all(getattr(given, key) is None for key in keys[1:]), given
    # The loop reaches every kind, so the checks above were exercised.
    assert seen == {*DocType, None}


def test_questions_in_asking_order() -> None:
    assert [q.key for q in TRIAGE_QUESTIONS] == [
        "shown",
        "court_named",
        "judge_signed",
        "dhs_form",
        "immigration_court",
        "grand_jury",
        "asks",
        "form",
    ]


@pytest.mark.parametrize("question", TRIAGE_QUESTIONS, ids=lambda q: q.key)
def test_question_choices(question) -> None:
    values = [value for value, _ in question.choices]
    if question.key == "asks":
        assert values == ["enter_or_arrest", "records", "hold", "appear", "employment", "unsure"]
    elif question.key == "form":
        assert values == [
            "AO 93",
            "AO 442",
            "AO 88B",
            "AO 110",
            "I-200",
            "I-205",
            "I-138",
            "I-247A",
            "I-862",
            "I-9 notice",
            "none_seen",
        ]
    else:
        assert question.choices == (("yes", "Yes"), ("no", "No"), ("unsure", "Not sure"))
        assert tuple(values) == ANSWERS
    assert question.text.strip()
    assert all(label.strip() for _, label in question.choices)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, TriageAnswers()),
        (
            {"shown": "yes", "court_named": "no", "asks": "records", "form": "AO 88B"},
            TriageAnswers(shown="yes", court_named="no", asks="records", form="AO 88B"),
        ),
        ({"shown": "yes", "colour": "red", "student": "A. Name"}, TriageAnswers(shown="yes")),
        ({"shown": "maybe"}, TriageAnswers()),
        ({"shown": "YES"}, TriageAnswers()),
        ({"shown": True, "court_named": 1, "judge_signed": ["yes"]}, TriageAnswers()),
        ({"asks": "yes", "form": "I-999"}, TriageAnswers()),
        ({"grand_jury": "records", "judge_signed": "unsure"}, TriageAnswers(judge_signed="unsure")),
        ({"form": None, "shown": ""}, TriageAnswers()),
    ],
    ids=[
        "empty",
        "valid values kept",
        "unknown keys dropped",
        "unknown answer",
        "wrong case",
        "not text",
        "answer from another question",
        "mixed valid and invalid",
        "empty and null",
    ],
)
def test_from_mapping_ignores_junk(data: dict, expected: TriageAnswers) -> None:
    assert TriageAnswers.from_mapping(data) == expected


def test_from_mapping_of_non_mapping_is_unanswered() -> None:
    assert TriageAnswers.from_mapping(["shown", "yes"]) == TriageAnswers()  # type: ignore[arg-type]


def test_to_dict_round_trips() -> None:
    given = TriageAnswers(shown="yes", judge_signed="unsure", asks="hold", form="I-247A")
    data = given.to_dict()
    assert list(data) == [q.key for q in TRIAGE_QUESTIONS]
    assert data["court_named"] is None
    assert TriageAnswers.from_mapping(data) == given


def test_hand_built_stray_value_reads_as_unanswered() -> None:
    # A stray value must not count as an answer, so it cannot tip the result.
    stray = TriageAnswers(
        shown="yes",
        court_named="yes",
        judge_signed="yes",
        dhs_form="nope",
        immigration_court="no",
        grand_jury="no",
        asks="enter_or_arrest",
    )
    assert triage(stray) is W.UNSURE
    assert triage(TriageAnswers(shown="yes", court_named="definitely")) is None


@pytest.mark.parametrize("doc", list(DocType), ids=str)
def test_every_kind_has_a_neutral_label_and_one_calm_sentence(doc: DocType) -> None:
    label, meaning = DOC_LABELS[doc], DOC_MEANING[doc]
    assert label.strip() and meaning.strip()
    # Labels may be read by the agent across the counter: no agency names.
    for agency in ("ICE", "DHS", "HSI", "CBP", "FBI", "Homeland", "Immigration and Customs"):
        assert agency not in label
    assert meaning.endswith(".") and meaning.count(". ") == 0
    assert "comply" not in meaning.lower() and "compli" not in meaning.lower()


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        (W.JUDICIAL_WARRANT, ("obstruct", "scope")),
        (W.ADMINISTRATIVE_WARRANT, ("not a judicial warrant", "non-public", "student")),
        (W.JUDICIAL_SUBPOENA, ("never released at the desk", "counsel")),
        (W.DHS_SUBPOENA, ("not self-enforcing", "counsel")),
        (W.DETAINER, ("custody", "no authority")),
        (W.NOTICE_TO_APPEAR, ("no authority",)),
        (W.GRAND_JURY_SUBPOENA, ("records only", "counsel")),
        (W.I9_NOTICE, ("human resources", "counsel", "not students")),
        (W.NONE, ("no access", "no information", "guardian")),
        (W.UNSURE, ("not a judge-signed warrant", "district office decides")),
        (W.OTHER, ("district office",)),
    ],
    ids=str,
)
def test_meanings_follow_the_table(doc: DocType, words: tuple[str, ...]) -> None:
    for word in words:
        assert word in DOC_MEANING[doc]


def test_labels_and_meanings_cover_exactly_the_kinds() -> None:
    assert set(DOC_LABELS) == set(DocType) == set(DOC_MEANING)
    assert len(set(DOC_LABELS.values())) == len(DocType)


# ---- common documents, one tap each

PICK_EXPECTED = {
    "court_arrest": DocType.JUDICIAL_WARRANT,
    "court_search": DocType.JUDICIAL_WARRANT,
    "dhs_warrant": DocType.ADMINISTRATIVE_WARRANT,
    "court_records": DocType.JUDICIAL_SUBPOENA,
    "grand_jury": DocType.GRAND_JURY_SUBPOENA,
    "dhs_subpoena": DocType.DHS_SUBPOENA,
    "detainer": DocType.DETAINER,
    "notice_to_appear": DocType.NOTICE_TO_APPEAR,
    "i9_notice": DocType.I9_NOTICE,
    # An immigration judge is not a judge in the warrant sense: never a warrant.
    "immigration_court": DocType.UNSURE,
    "other": DocType.OTHER,
    "none": DocType.NONE,
    "unsure": DocType.UNSURE,
}


@pytest.mark.parametrize("pick", PICKS, ids=lambda p: p.key)
def test_each_common_document_gives_its_first_impression(pick: Pick) -> None:
    assert triage(pick.answers) is PICK_EXPECTED[pick.key]
    assert PICKS_BY_KEY[pick.key] is pick


def test_every_row_of_the_documents_table_is_one_tap_away() -> None:
    reached = {triage(pick.answers) for pick in PICKS}
    # The table's rows: both warrants, both subpoenas and the grand jury's, the detainer,
    # the notice to appear, the I-9 notice, and no document at all; and the safe "unsure".
    assert reached == set(DocType)
    assert {p.key for p in PICKS} == set(PICK_EXPECTED)


def test_only_the_court_warrants_read_as_a_judicial_warrant() -> None:
    warrants = [p.key for p in PICKS if triage(p.answers) is DocType.JUDICIAL_WARRANT]
    assert warrants == ["court_arrest", "court_search"]
    assert PICKS_BY_KEY["court_arrest"].names_person == "yes"
    for pick in PICKS:
        if pick.key not in warrants:
            assert "judge or magistrate judge" not in pick.signed


@pytest.mark.parametrize("pick", PICKS, ids=lambda p: p.key)
def test_each_common_document_says_what_the_desk_can_see(pick: Pick) -> None:
    # Heading or agency, form number and who signed it: each on the button, short.
    for text in (pick.title, pick.top, pick.form, pick.signed):
        assert text and len(text) <= 80, text
    assert "comply" not in " ".join((pick.title, pick.top, pick.form, pick.signed)).lower()


def test_a_pick_stays_strict_when_the_desk_refines_one_answer() -> None:
    # Starting from the court warrant and then saying "not sure" about the judge's
    # signature must fall back to the safe impression, never stay a warrant.
    answers = PICKS_BY_KEY["court_search"].answers.to_dict()
    answers["judge_signed"] = "unsure"
    assert triage(TriageAnswers.from_mapping(answers)) is DocType.UNSURE
