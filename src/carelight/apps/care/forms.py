"""Social care at the point of care: the needs assessment (an HTML form rendered from the
Questionnaire the council publishes), a care plan with goals, and a visit note, each turned
into FHIR resources that are written through the store's validated path with the gate.

Only what the form defines is read back: an answer the Questionnaire does not offer is an
error shown beside its question, never stored.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from dataclasses import dataclass, field

from carelight.access.principal import Principal

MAX_TEXT = 4000
MAX_GOALS = 5


@dataclass
class Question:
    link_id: str
    text: str
    kind: str  # choice, boolean, text, string
    required: bool
    options: list[dict] = field(default_factory=list)  # valueCoding dicts, for a choice
    group: str = ""  # the linkId of the group it is in


@dataclass
class FormErrors:
    fields: dict[str, str] = field(default_factory=dict)  # field name -> message

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, message)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def summary(self) -> list[dict]:
        return [{"field": k, "text": v} for k, v in self.fields.items()]


def questions(questionnaire: dict) -> list[tuple[dict | None, list[Question]]]:
    """The form's sections: (group item or None, its questions), in the Questionnaire's order."""
    sections: list[tuple[dict | None, list[Question]]] = []
    loose: list[Question] = []
    for item in questionnaire.get("item") or ():
        if item.get("type") == "group":
            if loose:
                sections.append((None, loose))
                loose = []
            sections.append((item, [_question(i, item["linkId"]) for i in item.get("item") or ()]))
        elif item.get("type") != "display":
            loose.append(_question(item, ""))
    if loose:
        sections.append((None, loose))
    return sections


def _question(item: dict, group: str) -> Question:
    options = [o["valueCoding"] for o in item.get("answerOption") or () if "valueCoding" in o]
    return Question(
        item["linkId"], item.get("text", item["linkId"]), item.get("type", "string"),
        bool(item.get("required")), options, group,
    )  # fmt: skip


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _author(principal: Principal) -> dict:
    ref = {"display": principal.organization_name or principal.display or principal.username}
    if principal.organization_ref:
        ref["reference"] = principal.organization_ref
    return ref


def assessment_response(
    questionnaire: dict, form: dict[str, str], patient_id: str, principal: Principal
) -> tuple[dict | None, FormErrors]:
    """A QuestionnaireResponse from the posted form, or the errors to show."""
    errors = FormErrors()
    items: list[dict] = []
    for group, qs in questions(questionnaire):
        answered = []
        for q in qs:
            answer = _answer(q, form.get(q.link_id, "").strip(), errors)
            if answer is None:
                continue
            answered.append({"linkId": q.link_id, "text": q.text, "answer": [answer]})
        if group is None:
            items += answered
        elif answered:
            items.append(
                {"linkId": group["linkId"], "text": group.get("text", ""), "item": answered}
            )
    if errors:
        return None, errors
    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": questionnaire["url"],
        "status": "completed",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": _now(),
        "author": _author(principal),
        "item": items,
    }
    return response, errors


def _answer(q: Question, value: str, errors: FormErrors) -> dict | None:
    if not value:
        if q.required:
            errors.add(q.link_id, f"Answer: {q.text}")
        return None
    if q.kind == "choice":
        chosen = next((o for o in q.options if o.get("code") == value), None)
        if chosen is None:
            errors.add(q.link_id, f"Choose one of the answers offered for: {q.text}")
            return None
        return {"valueCoding": chosen}
    if q.kind == "boolean":
        if value not in ("yes", "no"):
            errors.add(q.link_id, f"Answer yes or no: {q.text}")
            return None
        return {"valueBoolean": value == "yes"}
    if len(value) > MAX_TEXT:
        errors.add(q.link_id, f"Keep the answer under {MAX_TEXT} characters: {q.text}")
        return None
    return {"valueString": value}


def care_plan(
    form: dict[str, str], patient_id: str, principal: Principal
) -> tuple[dict | None, FormErrors]:
    """A transaction Bundle with the CarePlan and its Goals (referenced by ``urn:uuid``), or
    the errors to show."""
    errors = FormErrors()
    title = form.get("title", "").strip()
    description = form.get("description", "").strip()
    goals = [form.get(f"goal{i}", "").strip() for i in range(1, MAX_GOALS + 1)]
    goals = [g for g in goals if g]
    if not title:
        errors.add("title", "Enter a title for the care plan")
    if not description:
        errors.add("description", "Describe the care and support in the plan")
    if not goals:
        errors.add("goal1", "Enter at least one goal, in the person's own words if you can")
    for name, value in (("title", title), ("description", description)):
        if len(value) > MAX_TEXT:
            errors.add(name, f"Keep this under {MAX_TEXT} characters")
    if errors:
        return None, errors
    today = dt.date.today().isoformat()
    subject = {"reference": f"Patient/{patient_id}"}
    urns = [f"urn:uuid:{uuid.uuid4()}" for _ in goals]
    goal_resources = [
        {
            "resourceType": "Goal",
            "lifecycleStatus": "active",
            "description": {"text": g},
            "subject": subject,
            "startDate": today,
        }
        for g in goals
    ]
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "category": [
            {"coding": [{"system": "http://snomed.info/sct", "code": "734163000", "display": "Care plan"}],
             "text": "Care plan"}
        ],
        "title": title,
        "description": description,
        "subject": subject,
        "period": {"start": today},
        "created": _now(),
        "author": _author(principal),
        "goal": [{"reference": u} for u in urns],
    }  # fmt: skip
    entries = [
        {"fullUrl": u, "resource": g, "request": {"method": "POST", "url": "Goal"}}
        for u, g in zip(urns, goal_resources, strict=True)
    ]
    entries.append({"resource": plan, "request": {"method": "POST", "url": "CarePlan"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}, errors


def visit_note(
    form: dict[str, str], patient_id: str, principal: Principal
) -> tuple[dict | None, FormErrors]:
    errors = FormErrors()
    title = form.get("title", "").strip() or "Visit note"
    words = form.get("note", "").strip()
    if not words:
        errors.add("note", "Write the note")
    elif len(words) > MAX_TEXT:
        errors.add("note", f"Keep the note under {MAX_TEXT} characters")
    if len(title) > 200:
        errors.add("title", "Keep the title under 200 characters")
    if errors:
        return None, errors
    now = _now()
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}],
                 "text": "Progress note"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": now,
        "author": [_author(principal)],
        "description": title,
        "content": [{"attachment": {
            "contentType": "text/plain; charset=utf-8", "language": "en-GB",
            "data": base64.b64encode(words.encode()).decode(), "title": title, "creation": now,
        }}],
    }, errors  # fmt: skip
