"""The common documents, as the desk sees them: one tap on one gives a first impression.

Each pick stands for the answers the desk asserts by tapping it, and triage() still decides,
so a pick can never reach a judicial warrant that the questions could not."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kiosk.protocol.documents import TriageAnswers


@dataclass(frozen=True)
class Pick:
    """A common document as the desk sees it: one tap gives a first impression.

    The answers are what the desk asserts by tapping it, and triage() still decides, so a
    pick can never reach a judicial warrant that the questions could not.
    """

    key: str
    title: str
    top: str
    form: str
    signed: str
    answers: TriageAnswers
    names_person: str | None = None


def _answers(**values: str) -> TriageAnswers:
    return TriageAnswers(**values)


_COURT_WARRANT = {
    "shown": "yes",
    "court_named": "yes",
    "judge_signed": "yes",
    "dhs_form": "no",
    "immigration_court": "no",
    "grand_jury": "no",
    "asks": "enter_or_arrest",
}


# In the order the desk sees them: the ones that matter most at a school first.
PICKS: tuple[Pick, ...] = (
    Pick(
        key="court_arrest",
        title="Court warrant to arrest a person",
        top='A court\'s name, such as "United States District Court for ..."',
        form="AO 442, or a state court's warrant",
        signed="A judge or magistrate judge",
        answers=_answers(**_COURT_WARRANT),
        names_person="yes",
    ),
    Pick(
        key="court_search",
        title="Court warrant to search a place",
        top='A court\'s name, such as "United States District Court for ..."',
        form="AO 93, or a state court's warrant",
        signed="A judge or magistrate judge",
        answers=_answers(**_COURT_WARRANT),
    ),
    Pick(
        key="dhs_warrant",
        title="Homeland Security warrant",
        top="Department of Homeland Security; may say WARRANT in large letters",
        form="I-200 or I-205",
        signed="An immigration officer, not a judge",
        answers=_answers(
            shown="yes", court_named="no", judge_signed="no", dhs_form="yes", asks="enter_or_arrest"
        ),
    ),
    Pick(
        key="court_records",
        title="Court subpoena or court order for records",
        top="A court's name and a case caption",
        form="AO 88B, or a state court's subpoena",
        signed="Often a court clerk or an attorney",
        answers=_answers(
            shown="yes",
            court_named="yes",
            dhs_form="no",
            immigration_court="no",
            grand_jury="no",
            asks="records",
        ),
    ),
    Pick(
        key="grand_jury",
        title="Grand jury subpoena",
        top='A court\'s name and the words "grand jury"',
        form="AO 110",
        signed="A court clerk or a prosecutor",
        answers=_answers(
            shown="yes", court_named="yes", dhs_form="no", grand_jury="yes", asks="records"
        ),
    ),
    Pick(
        key="dhs_subpoena",
        title="Homeland Security subpoena for records",
        top="Department of Homeland Security",
        form="I-138",
        signed="A Homeland Security official",
        answers=_answers(shown="yes", court_named="no", dhs_form="yes", asks="records"),
    ),
    Pick(
        key="detainer",
        title="Detainer: a request to hold a person in custody",
        top="Department of Homeland Security",
        form="I-247A",
        signed="An immigration officer",
        answers=_answers(shown="yes", dhs_form="yes", asks="hold"),
    ),
    Pick(
        key="notice_to_appear",
        title="Notice to appear in immigration court",
        top="Department of Homeland Security",
        form="I-862",
        signed="An immigration officer",
        answers=_answers(shown="yes", dhs_form="yes", asks="appear"),
    ),
    Pick(
        key="i9_notice",
        title="Notice of inspection of employment records",
        top="Homeland Security, addressed to the district as an employer",
        form="I-9 Notice of Inspection",
        signed="A Homeland Security official",
        answers=_answers(shown="yes", dhs_form="yes", asks="employment"),
    ),
    Pick(
        key="immigration_court",
        title='Paper from an "Immigration Court" or "Immigration Judge"',
        top='"Immigration Court" or "Executive Office for Immigration Review"',
        form="Varies",
        signed="An immigration judge, who is not a judge in the warrant sense",
        answers=_answers(shown="yes", immigration_court="yes"),
    ),
    Pick(
        key="other",
        title="Another document",
        top="Neither a court nor Homeland Security",
        form="Any other, or none",
        signed="Anyone else",
        answers=_answers(shown="yes", court_named="no", dhs_form="no"),
    ),
    Pick(
        key="none",
        title="No document: a spoken request only",
        top="Nothing shown, such as a welfare check or a claim that a parent agreed",
        form="None",
        signed="Nobody",
        answers=_answers(shown="no"),
    ),
    Pick(
        key="unsure",
        title="Not sure",
        top="Anything you cannot place",
        form="Any",
        signed="Not sure",
        answers=_answers(shown="unsure"),
    ),
)


PICKS_BY_KEY: Mapping[str, Pick] = {pick.key: pick for pick in PICKS}
