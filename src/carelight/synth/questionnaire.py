"""The council's Care Act 2014 needs assessment form, as a FHIR Questionnaire.

The ten outcomes are those of the Care and Support (Eligibility Criteria) Regulations 2014; an
adult has eligible needs when they are unable to achieve two or more of them and there is, or
is likely to be, a significant impact on their wellbeing.
"""

from __future__ import annotations

from functools import cache

from carelight.synth.fhir import meta
from carelight.synth.sources import COUNCIL

URL = f"{COUNCIL.base}/Questionnaire/care-act-needs-assessment"
ABILITY_SYSTEM = f"{URL}/ability"
ABILITIES = (
    ("independent", "Can achieve without help"),
    ("some-help", "Needs some help"),
    ("unable", "Unable to achieve without help"),
)
OUTCOMES = (
    ("nutrition", "Managing and maintaining nutrition"),
    ("hygiene", "Maintaining personal hygiene"),
    ("toilet", "Managing toilet needs"),
    ("clothing", "Being appropriately clothed"),
    ("home-safety", "Being able to make use of the home safely"),
    ("habitable-home", "Maintaining a habitable home environment"),
    ("relationships", "Developing and maintaining family or other personal relationships"),
    ("work-education", "Accessing and engaging in work, training, education or volunteering"),
    ("community", "Making use of necessary facilities or services in the local community"),
    ("caring", "Carrying out any caring responsibilities the adult has for a child"),
)
ABILITY_CODINGS = tuple(
    {"system": ABILITY_SYSTEM, "code": code, "display": display} for code, display in ABILITIES
)


@cache
def questionnaire() -> dict:
    return {
        "resourceType": "Questionnaire",
        "id": f"{COUNCIL.code}-q-care-act-needs-assessment",
        "meta": meta(COUNCIL, "Questionnaire"),
        "url": URL,
        "version": "1.0.0",
        "name": "CareActNeedsAssessment",
        "title": "Adult social care needs assessment (Care Act 2014 eligibility outcomes)",
        "status": "active",
        "subjectType": ["Patient"],
        "date": "2015-04-01",
        "publisher": f"{COUNCIL.name} (fictional)",
        "item": [
            {
                "linkId": "outcomes",
                "text": "Eligibility outcomes",
                "type": "group",
                "item": [
                    {
                        "linkId": link_id,
                        "text": text,
                        "type": "choice",
                        "required": True,
                        "answerOption": [{"valueCoding": c} for c in ABILITY_CODINGS],
                    }
                    for link_id, text in OUTCOMES
                ],
            },
            {
                "linkId": "wellbeing-impact",
                "text": "Is there, or is there likely to be, a significant impact on wellbeing?",
                "type": "boolean",
                "required": True,
            },
            {"linkId": "carer", "text": "Does the person have an unpaid carer?", "type": "boolean"},
            {"linkId": "eligible", "text": "Eligible needs (Care Act 2014)", "type": "boolean"},
            {"linkId": "summary", "text": "Summary of needs", "type": "text"},
        ],
    }


def answers(needs: tuple[int, ...], has_carer: bool, summary: str) -> tuple[list, bool]:
    """QuestionnaireResponse items for a needs profile, and whether the needs are eligible."""
    unable = sum(1 for n in needs if n == 2)
    eligible = unable >= 2 or sum(1 for n in needs if n >= 1) >= 4
    outcomes = [
        {"linkId": link_id, "text": text, "answer": [{"valueCoding": ABILITY_CODINGS[n]}]}
        for (link_id, text), n in zip(OUTCOMES, needs, strict=True)
    ]
    items = [
        {"linkId": "outcomes", "text": "Eligibility outcomes", "item": outcomes},
        {"linkId": "wellbeing-impact", "text": OUTCOME_QUESTION, "answer": [{"valueBoolean": eligible}]},
        {"linkId": "carer", "text": "Does the person have an unpaid carer?",
         "answer": [{"valueBoolean": has_carer}]},
        {"linkId": "eligible", "text": "Eligible needs (Care Act 2014)",
         "answer": [{"valueBoolean": eligible}]},
        {"linkId": "summary", "text": "Summary of needs", "answer": [{"valueString": summary}]},
    ]  # fmt: skip
    return items, eligible


OUTCOME_QUESTION = "Is there, or is there likely to be, a significant impact on wellbeing?"
