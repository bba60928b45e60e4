"""FHIR resources as the lines a professional reads: what, when, status, and which system
recorded it. One small function per resource type; nothing here reads the store."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace

# category slug -> (heading, resource types), in the order the pages list them
CATEGORIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "alerts": ("Alerts and flags", ("Flag",)),
    "problems": ("Problems and diagnoses", ("Condition",)),
    "medicines": ("Medicines", ("MedicationRequest", "MedicationStatement")),
    "allergies": ("Allergies and adverse reactions", ("AllergyIntolerance",)),
    "results": ("Results and observations", ("Observation", "DiagnosticReport")),
    "encounters": ("Encounters and admissions", ("Encounter",)),
    "care-plans": ("Care plans and goals", ("CarePlan", "Goal")),
    "care": ("Care packages and care home stays", ("EpisodeOfCare",)),
    "assessments": ("Assessments", ("QuestionnaireResponse",)),
    "notes": ("Letters and notes", ("DocumentReference",)),
    "contacts": ("Carers and next of kin", ("RelatedPerson",)),
    "care-teams": ("Care teams", ("CareTeam",)),
    "referrals": ("Referrals", ("ServiceRequest",)),
    "procedures": ("Procedures", ("Procedure",)),
    "immunisations": ("Immunisations", ("Immunization",)),
}
CATEGORY_OF = {t: slug for slug, (_, types) in CATEGORIES.items() for t in types}


@dataclass(frozen=True, slots=True)
class Entry:
    category: str  # a CATEGORIES slug
    ref: str  # "Type/id"
    title: str
    detail: str
    when: str  # the clinical date, ISO (may be partial); "" when unknown
    source: str  # the name of the system (organisation) that recorded it
    status: str = ""
    active: bool = True
    text: str = ""  # a note's own words
    also: tuple[str, ...] = ()  # other systems that recorded the same (see ``once_each``)

    @property
    def when_text(self) -> str:
        return human_date(self.when)


def text(concept: dict | None) -> str:
    """The words of a CodeableConcept: its text, else the first display, else the code."""
    if not concept:
        return ""
    if concept.get("text"):
        return concept["text"]
    for coding in concept.get("coding") or ():
        if coding.get("display"):
            return coding["display"]
    codes = [c.get("code") for c in concept.get("coding") or () if c.get("code")]
    return codes[0] if codes else ""


def code_of(concept: dict | None) -> str:
    for coding in (concept or {}).get("coding") or ():
        if coding.get("code"):
            return coding["code"]
    return text(concept)


def human_date(value: str | None) -> str:
    """'2024-09-27' -> '27 Sep 2024'; a partial date stays partial; '' for nothing."""
    if not value:
        return ""
    try:
        if len(value) == 4:
            return value
        if len(value) == 7:
            return dt.date.fromisoformat(value + "-01").strftime("%b %Y")
        day = dt.date.fromisoformat(value[:10])
    except ValueError:
        return value
    return f"{day.day} {day.strftime('%b %Y')}"


def period_start(period: dict | None) -> str:
    return (period or {}).get("start") or ""


def quantity(q: dict | None) -> str:
    if not q or q.get("value") is None:
        return ""
    value = q["value"]
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    unit = q.get("unit") or q.get("code") or ""
    return f"{shown} {unit}".strip()


def observation_value(obs: dict) -> str:
    if "valueQuantity" in obs:
        return quantity(obs["valueQuantity"])
    if "valueCodeableConcept" in obs:
        return text(obs["valueCodeableConcept"])
    for key in ("valueString", "valueBoolean", "valueInteger"):
        if key in obs:
            return str(obs[key])
    parts = obs.get("component") or []
    values = [(c.get("valueQuantity") or {}) for c in parts]
    if values and all(v.get("value") is not None for v in values):
        unit = values[0].get("unit") or ""
        return "/".join(f"{v['value']:g}" for v in values) + (f" {unit}" if unit else "")
    return ""


def _note_text(doc: dict) -> str:
    for content in doc.get("content") or ():
        att = content.get("attachment") or {}
        if att.get("data") and str(att.get("contentType", "")).startswith("text/plain"):
            try:
                return base64.b64decode(att["data"]).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return ""
    return ""


def _status(resource: dict, key: str = "clinicalStatus") -> str:
    value = resource.get(key)
    return text(value) if isinstance(value, dict) else (value or "")


# -- one function per type: (title, detail, when, status, active, text) ----------------------
def _condition(r: dict):
    status = _status(r)
    active = code_of(r.get("clinicalStatus")) in ("active", "recurrence", "relapse")
    when = r.get("onsetDateTime") or r.get("recordedDate") or ""
    ended = r.get("abatementDateTime")
    detail = f"Resolved {human_date(ended)}" if ended else ""
    return text(r.get("code")), detail, when, status, active, ""


def _medication(r: dict):
    status = r.get("status", "")
    when = (
        r.get("authoredOn")
        or r.get("effectiveDateTime")
        or period_start(r.get("effectivePeriod"))
        or r.get("dateAsserted")
        or ""
    )
    dosage = (r.get("dosageInstruction") or r.get("dosage") or [{}])[0].get("text", "")
    kind = "Prescribed" if r["resourceType"] == "MedicationRequest" else "Taking (reported)"
    detail = " · ".join(p for p in (kind, dosage) if p)
    return text(r.get("medicationCodeableConcept")), detail, when, status, status == "active", ""


def _allergy(r: dict):
    reactions = [text(m) for x in r.get("reaction") or () for m in x.get("manifestation") or ()]
    crit = r.get("criticality")
    detail = " · ".join(
        p for p in (", ".join(reactions), f"criticality {crit}" if crit else "") if p
    )
    status = _status(r)
    active = code_of(r.get("clinicalStatus")) in ("active", "")
    return (
        text(r.get("code")),
        detail,
        r.get("recordedDate") or r.get("onsetDateTime") or "",
        status,
        active,
        "",
    )


def _observation(r: dict):
    when = (
        r.get("effectiveDateTime")
        or period_start(r.get("effectivePeriod"))
        or r.get("issued")
        or ""
    )
    flag = text((r.get("interpretation") or [None])[0])
    detail = " · ".join(
        p for p in (observation_value(r), flag if flag not in ("", "Normal") else "") if p
    )
    return text(r.get("code")), detail, when, r.get("status", ""), True, ""


def _report(r: dict):
    when = (
        r.get("effectiveDateTime")
        or period_start(r.get("effectivePeriod"))
        or r.get("issued")
        or ""
    )
    return text(r.get("code")), r.get("conclusion", "Report"), when, r.get("status", ""), True, ""


def _encounter(r: dict):
    kind = text((r.get("type") or [None])[0]) or (r.get("class") or {}).get("display", "Encounter")
    period = r.get("period") or {}
    ends = period.get("end", "")
    detail = ""
    if ends and ends[:10] != period.get("start", "")[:10]:
        detail = f"Until {human_date(ends)}"
    reason = text((r.get("reasonCode") or [None])[0])
    detail = " · ".join(p for p in (reason, detail) if p)
    status = r.get("status", "")
    return kind, detail, period.get("start", ""), status, status in ("in-progress", "arrived"), ""


def _care_plan(r: dict):
    title = r.get("title") or text((r.get("category") or [None])[0]) or "Care plan"
    status = r.get("status", "")
    when = period_start(r.get("period")) or r.get("created", "")
    return title, r.get("description", ""), when, status, status == "active", ""


def _goal(r: dict):
    status = r.get("lifecycleStatus", "")
    active = status in ("proposed", "planned", "accepted", "active")
    return f"Goal: {text(r.get('description'))}", "", r.get("startDate", ""), status, active, ""


def _episode(r: dict):
    status = r.get("status", "")
    period = r.get("period") or {}
    detail = f"Since {human_date(period.get('start'))}" if period.get("start") else ""
    if period.get("end"):
        detail = f"{human_date(period.get('start'))} to {human_date(period['end'])}"
    managing = (r.get("managingOrganization") or {}).get("display", "")
    detail = " · ".join(p for p in (managing, detail) if p)
    title = text((r.get("type") or [None])[0]) or "Episode of care"
    return title, detail, period.get("start", ""), status, status == "active", ""


def _assessment(r: dict):
    title = "Needs assessment"
    answers = {i.get("linkId"): i for i in r.get("item") or ()}
    summary = ((answers.get("summary") or {}).get("answer") or [{}])[0].get("valueString", "")
    eligible = ((answers.get("eligible") or {}).get("answer") or [{}])[0].get("valueBoolean")
    detail = " · ".join(
        p
        for p in (
            "" if eligible is None else ("Eligible needs" if eligible else "No eligible needs"),
            summary,
        )
        if p
    )
    return title, detail, r.get("authored", ""), r.get("status", ""), True, ""


def _document(r: dict):
    title = r.get("description") or text(r.get("type")) or "Document"
    author = ", ".join(a.get("display", "") for a in r.get("author") or () if a.get("display"))
    return (
        title,
        author,
        r.get("date", ""),
        r.get("docStatus") or r.get("status", ""),
        True,
        _note_text(r),
    )


def _related(r: dict):
    names = r.get("name") or [{}]
    name = " ".join([*names[0].get("given", ()), names[0].get("family", "")]).strip()
    roles = ", ".join(text(c) for c in r.get("relationship") or ())
    phone = next((t.get("value") for t in r.get("telecom") or () if t.get("system") == "phone"), "")
    detail = " · ".join(p for p in (roles, phone) if p)
    active = r.get("active", True)
    return (
        name or "Contact",
        detail,
        period_start(r.get("period")),
        "active" if active else "inactive",
        active,
        "",
    )


def _care_team(r: dict):
    members = ", ".join(
        (p.get("member") or {}).get("display", "") for p in r.get("participant") or ()
    )
    status = r.get("status", "")
    return (
        r.get("name") or "Care team",
        members,
        period_start(r.get("period")),
        status,
        status == "active",
        "",
    )


def _referral(r: dict):
    title = text(r.get("code")) or "Referral"
    performer = ", ".join(
        p.get("display", "") for p in r.get("performer") or () if p.get("display")
    )
    status = r.get("status", "")
    return title, performer, r.get("authoredOn", ""), status, status == "active", ""


def _procedure(r: dict):
    when = r.get("performedDateTime") or period_start(r.get("performedPeriod"))
    return text(r.get("code")), "", when or "", r.get("status", ""), True, ""


def _immunization(r: dict):
    return (
        text(r.get("vaccineCode")),
        "",
        r.get("occurrenceDateTime", ""),
        r.get("status", ""),
        True,
        "",
    )


def _flag(r: dict):
    status = r.get("status", "")
    period = r.get("period") or {}
    return (
        text(r.get("code")),
        text((r.get("category") or [None])[0]),
        period.get("start", ""),
        status,
        status == "active",
        "",
    )


PRESENTERS: dict[str, Callable[[dict], tuple]] = {
    "Flag": _flag,
    "Condition": _condition,
    "MedicationRequest": _medication,
    "MedicationStatement": _medication,
    "AllergyIntolerance": _allergy,
    "Observation": _observation,
    "DiagnosticReport": _report,
    "Encounter": _encounter,
    "CarePlan": _care_plan,
    "Goal": _goal,
    "EpisodeOfCare": _episode,
    "QuestionnaireResponse": _assessment,
    "DocumentReference": _document,
    "RelatedPerson": _related,
    "CareTeam": _care_team,
    "ServiceRequest": _referral,
    "Procedure": _procedure,
    "Immunization": _immunization,
}


def entry(resource: dict, source_name: Callable[[str | None], str]) -> Entry | None:
    res_type = resource.get("resourceType", "")
    present = PRESENTERS.get(res_type)
    if present is None:
        return None
    title, detail, when, status, active, words = present(resource)
    return Entry(
        category=CATEGORY_OF[res_type],
        ref=f"{res_type}/{resource.get('id')}",
        title=title or res_type,
        detail=detail,
        when=when or "",
        source=source_name((resource.get("meta") or {}).get("source")),
        status=status,
        active=active,
        text=words,
    )


def newest_first(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: e.when or "", reverse=True)


def once_each(entries: list[Entry]) -> list[Entry]:
    """The newest entry for each thing (by its words), naming the other systems that recorded
    it too: a hospital records a long-term condition at every admission."""
    kept: dict[str, Entry] = {}
    others: dict[str, dict[str, None]] = {}
    for e in newest_first(entries):
        key = e.title.casefold()
        if key not in kept:
            kept[key], others[key] = e, {}
        elif e.source != kept[key].source:
            others[key][e.source] = None
    return [replace(e, also=tuple(others[k])) for k, e in kept.items()]
