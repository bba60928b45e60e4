"""A patient's own record in plain English: the parts of it they look for, and their test
results with the normal range, a flag and who did the test. Nothing here reads the store;
the lines come from the shared care record's presentation (``apps.care.present``)."""

from __future__ import annotations

from dataclasses import dataclass

from carelight.apps.care.present import (
    Entry,
    code_of,
    entry,
    human_date,
    observation_value,
    quantity,
    text,
)

# slug -> (heading, what it holds in a few words, resource types), in the order listed
PARTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "results": (
        "Test results",
        "blood tests, blood pressure and other measurements, with the normal range",
        ("Observation", "DiagnosticReport"),
    ),
    "medicines": (
        "Medicines",
        "medicines you take now and ones you took before",
        ("MedicationRequest", "MedicationStatement"),
    ),
    "conditions": ("Health conditions", "illnesses and diagnoses", ("Condition",)),
    "allergies": (
        "Allergies",
        "allergies and bad reactions to medicines or other things",
        ("AllergyIntolerance",),
    ),
    "procedures": ("Procedures", "operations and other procedures", ("Procedure",)),
    "care-plans": (
        "Care plans",
        "care and support plans from health and social care, with their goals and assessments",
        ("CarePlan", "Goal", "EpisodeOfCare", "QuestionnaireResponse"),
    ),
    "immunisations": ("Vaccinations", "vaccinations and immunisations", ("Immunization",)),
    "appointments": (
        "Appointments and stays",
        "appointments, visits, hospital stays and referrals",
        ("Encounter", "Appointment", "ServiceRequest"),
    ),
    "documents": ("Letters and documents", "letters, notes and reports", ("DocumentReference",)),
    "people": (
        "People in your care",
        "your care teams, carers and next of kin",
        ("CareTeam", "RelatedPerson"),
    ),
}
PART_OF = {t: slug for slug, (_, _, types) in PARTS.items() for t in types}

FLAGS = {
    "H": "Higher than the normal range",
    "HH": "Much higher than the normal range",
    "L": "Lower than the normal range",
    "LL": "Much lower than the normal range",
    "A": "Outside the normal range",
    "AA": "Far outside the normal range",
}


@dataclass(frozen=True, slots=True)
class Result:
    """One test result as a patient reads it."""

    name: str
    value: str  # "48 mmol/mol", "138/86 mmHg"
    normal: str  # the normal (reference) range in words; "" if none was given
    flag: str  # "" when normal or not judged; otherwise words such as FLAGS
    when: str
    source: str

    @property
    def when_text(self) -> str:
        return human_date(self.when)


@dataclass(frozen=True, slots=True)
class Item:
    """A line of the record: the shared presentation, put in a patient's part."""

    part: str
    line: Entry


def items(resources: list[dict], source_name) -> list[Item]:
    """Every resource a patient has a part for, newest first."""
    out = []
    for resource in resources:
        part = PART_OF.get(resource.get("resourceType", ""))
        if part is None:
            continue
        line = entry(resource, source_name) or _appointment(resource, source_name)
        if line is not None:
            out.append(Item(part, line))
    return sorted(out, key=lambda i: i.line.when or "", reverse=True)


def _appointment(resource: dict, source_name) -> Entry | None:
    if resource.get("resourceType") != "Appointment":
        return None
    kind = text((resource.get("serviceType") or [None])[0]) or resource.get(
        "description", "Appointment"
    )
    status = resource.get("status", "")
    return Entry(
        category="encounters",
        ref=f"Appointment/{resource.get('id')}",
        title=kind,
        detail="",
        when=resource.get("start", ""),
        source=source_name((resource.get("meta") or {}).get("source")),
        status=status,
        active=status in ("booked", "pending", "proposed", "arrived"),
    )


def normal_range(ranges: list[dict] | None) -> str:
    """A reference range in words: '45 to 104 umol/L', 'below 42 mmol/mol', its own text."""
    if not ranges:
        return ""
    first = ranges[0]
    low, high = quantity(first.get("low")), quantity(first.get("high"))
    if first.get("text"):
        return first["text"]
    if low and high:
        low_value = low.split(" ")[0]
        return f"{low_value} to {high}"
    if high:
        return f"{high} or below"
    if low:
        return f"{low} or above"
    return ""


def flag_of(interpretations: list[dict] | None) -> str:
    code = code_of((interpretations or [None])[0]) if interpretations else ""
    if code in FLAGS:
        return FLAGS[code]
    return ""


def result_of(obs: dict, source_name) -> Result:
    when = (
        obs.get("effectiveDateTime")
        or (obs.get("effectivePeriod") or {}).get("start")
        or obs.get("issued")
        or ""
    )
    flag = flag_of(obs.get("interpretation"))
    normal = normal_range(obs.get("referenceRange"))
    if not obs.get("valueQuantity") and obs.get("component"):
        # Blood pressure: a flag and a range for each part.
        parts = obs["component"]
        flags = [flag_of(c.get("interpretation")) for c in parts]
        names = [text(c.get("code")) for c in parts]
        flag = "; ".join(f"{n}: {f.lower()}" for n, f in zip(names, flags, strict=True) if f)
        normal = "; ".join(
            f"{n} {r}"
            for n, r in zip(
                names, (normal_range(c.get("referenceRange")) for c in parts), strict=True
            )
            if r
        )
    return Result(
        name=text(obs.get("code")) or "Result",
        value=observation_value(obs) or "See the report",
        normal=normal,
        flag=flag,
        when=when,
        source=source_name((obs.get("meta") or {}).get("source")),
    )


def results(observations: list[dict], source_name) -> list[Result]:
    """Every result, newest first (entered in error left out)."""
    found = [
        result_of(o, source_name)
        for o in observations
        if o.get("status") not in ("entered-in-error", "cancelled")
    ]
    return sorted(found, key=lambda r: r.when, reverse=True)
