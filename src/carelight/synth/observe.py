"""Observations, lab reports and vital signs as FHIR resources (shared by every source)."""

from __future__ import annotations

import random

from carelight.synth import measures
from carelight.synth.codes import codelist, hl7
from carelight.synth.fhir import Record, category, instant, meta, ref
from carelight.synth.measures import Measure
from carelight.synth.population import Person

LABORATORY = category(hl7("observation-category", "laboratory", "Laboratory"))
VITAL_SIGNS = category(hl7("observation-category", "vital-signs", "Vital Signs"))
SOCIAL_HISTORY = category(hl7("observation-category", "social-history", "Social History"))
LAB_REPORT = category(hl7("v2-0074", "LAB", "Laboratory"))
OBS = codelist("observations")
BP_CONCEPT = {"coding": [OBS["bp_panel"].coding], "text": "Blood pressure"}
SMOKING_CONCEPT = {"coding": [OBS["smoking_status"].coding], "text": "Smoking status"}


def quantity_observation(
    record: Record,
    measure: Measure,
    raw: float,
    day: int,
    minute: int,
    encounter_id: str | None,
    performer: dict,
    lab: bool = False,
) -> dict:
    value = measure.value(raw)
    resource = {
        "resourceType": "Observation",
        "id": record.new_id("obs"),
        "meta": meta(record.source, "Observation"),
        "status": "final",
        "category": LABORATORY if lab else VITAL_SIGNS,
        "code": measure.concept,
        "subject": record.subject,
    }
    if encounter_id:
        resource["encounter"] = ref("Encounter", encounter_id)
    resource["effectiveDateTime"] = instant(day, minute)
    if lab:
        resource["issued"] = instant(day, minute + 240)
    resource["performer"] = [performer]
    resource["valueQuantity"] = measure.quantity(value)
    interpretation = measure.interpretation(value)
    if interpretation:
        resource["interpretation"] = interpretation
    if measure.reference_range:
        resource["referenceRange"] = measure.reference_range
    return record.add(resource)


def blood_pressure(
    record: Record,
    rng: random.Random,
    person: Person,
    day: int,
    minute: int,
    encounter_id: str | None,
    performer: dict,
    shift: tuple[float, float] = (0, 0),
) -> dict:
    systolic, diastolic = measures.blood_pressure(rng, person, day)
    components = []
    for measure, raw in (
        (measures.SYSTOLIC, systolic + shift[0]),
        (measures.DIASTOLIC, diastolic + shift[1]),
    ):
        value = measure.value(raw)
        component = {"code": measure.concept, "valueQuantity": measure.quantity(value)}
        component["interpretation"] = measure.interpretation(value)
        component["referenceRange"] = measure.reference_range
        components.append(component)
    resource = {
        "resourceType": "Observation",
        "id": record.new_id("obs"),
        "meta": meta(record.source, "Observation"),
        "status": "final",
        "category": VITAL_SIGNS,
        "code": BP_CONCEPT,
        "subject": record.subject,
    }
    if encounter_id:
        resource["encounter"] = ref("Encounter", encounter_id)
    resource["effectiveDateTime"] = instant(day, minute)
    resource["performer"] = [performer]
    resource["component"] = components
    return record.add(resource)


def smoking_status(
    record: Record, person: Person, day: int, minute: int, encounter_id: str, performer: dict
) -> dict:
    return record.add(
        {
            "resourceType": "Observation",
            "id": record.new_id("obs"),
            "meta": meta(record.source, "Observation"),
            "status": "final",
            "category": SOCIAL_HISTORY,
            "code": SMOKING_CONCEPT,
            "subject": record.subject,
            "encounter": ref("Encounter", encounter_id),
            "effectiveDateTime": instant(day, minute),
            "performer": [performer],
            "valueCodeableConcept": OBS[person.health.smoking].concept,
        }
    )


PANELS = {
    "hba1c": (OBS["hba1c"], "HbA1c"),
    "renal": (OBS["renal_panel"], "Urea and electrolytes"),
    "lipids": (OBS["lipid_panel"], "Lipid profile"),
    "fbc": (OBS["fbc_panel"], "Full blood count"),
}


def lab_report(
    record: Record,
    rng: random.Random,
    person: Person,
    panel: str,
    day: int,
    minute: int,
    encounter_id: str | None,
    laboratory: dict,
    on_statin: bool = False,
    acute: float = 0.0,
) -> None:
    """A DiagnosticReport and its result Observations (``acute`` lowers eGFR, e.g. in AKI)."""
    results: list[tuple[Measure, float]]
    if panel == "hba1c":
        results = [(measures.HBA1C, measures.hba1c(rng, person, day))]
    elif panel == "renal":
        egfr = measures.egfr(rng, person, day) * (1 - acute)
        results = [
            (measures.CREATININE, measures.creatinine_for(person, egfr)),
            (measures.EGFR, egfr),
        ]
    elif panel == "lipids":
        results = [
            (measures.CHOLESTEROL, measures.cholesterol(rng, person, day, on_statin)),
            (measures.HDL, measures.hdl(rng, person)),
        ]
    else:
        mean = 138 if person.sex == "male" else 128
        results = [(measures.HAEMOGLOBIN, rng.gauss(mean - 30 * acute, 11))]
    observations = [
        quantity_observation(record, m, raw, day, minute, encounter_id, laboratory, lab=True)
        for m, raw in results
    ]
    code, title = PANELS[panel]
    abnormal = [
        o["code"]["text"]
        for o in observations
        if o.get("interpretation", [{}])[0] is not measures.NORMAL.concept
    ]
    report = {
        "resourceType": "DiagnosticReport",
        "id": record.new_id("dr"),
        "meta": meta(record.source, "DiagnosticReport"),
        "status": "final",
        "category": LAB_REPORT,
        "code": {"coding": [code.coding], "text": title},
        "subject": record.subject,
    }
    if encounter_id:
        report["encounter"] = ref("Encounter", encounter_id)
    report["effectiveDateTime"] = instant(day, minute)
    report["issued"] = instant(day, minute + 240)
    report["performer"] = [laboratory]
    report["result"] = [ref("Observation", o["id"], o["code"]["text"]) for o in observations]
    report["conclusion"] = (
        f"Outside the reference range: {', '.join(abnormal)}."
        if abnormal
        else "Within reference ranges."
    )
    record.add(report)
