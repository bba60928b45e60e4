"""Plausible results for observations that drift with disease and age.

Each function returns a value for a person on a day; the disease terms make results move the
way they do in real records: HbA1c climbs before a type 2 diabetes diagnosis and settles with
treatment, eGFR falls with age and faster with chronic kidney disease, blood pressure is high
until hypertension is treated, cholesterol drops on a statin.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from carelight.synth.codes import codelist, hl7
from carelight.synth.fhir import quantity
from carelight.synth.population import YEAR, Person

HIGH = hl7("v3-ObservationInterpretation", "H", "High")
LOW = hl7("v3-ObservationInterpretation", "L", "Low")
NORMAL = hl7("v3-ObservationInterpretation", "N", "Normal")


@dataclass(frozen=True)
class Measure:
    key: str  # key into the observations code list
    text: str
    unit: str
    ucum: str
    low: float | None
    high: float | None
    decimals: int
    range_text: str | None = None

    def __post_init__(self) -> None:
        limits: dict = {}
        if self.low is not None:
            limits["low"] = quantity(self.low, self.unit, self.ucum)
        if self.high is not None:
            limits["high"] = quantity(self.high, self.unit, self.ucum)
        if self.range_text:
            limits["text"] = self.range_text
        object.__setattr__(self, "reference_range", [limits] if limits else None)
        item = codelist("observations")[self.key]
        object.__setattr__(self, "concept", {"coding": [item.coding], "text": self.text})

    def value(self, raw: float) -> float | int:
        return round(raw, self.decimals) if self.decimals else round(raw)

    def interpretation(self, value: float) -> list | None:
        if self.high is not None and value > self.high:
            return [HIGH.concept]
        if self.low is not None and value < self.low:
            return [LOW.concept]
        if self.low is None and self.high is None:
            return None
        return [NORMAL.concept]

    def quantity(self, value: float) -> dict:
        return quantity(value, self.unit, self.ucum)


HBA1C = Measure("hba1c", "HbA1c", "mmol/mol", "mmol/mol", None, 41, 0,
                "Non-diabetic: below 42 mmol/mol; 48 or above indicates diabetes")  # fmt: skip
EGFR = Measure("egfr", "eGFR", "mL/min/1.73m2", "mL/min/{1.73_m2}", 60, None, 0,
               "60 or above; below 60 for 3 months indicates chronic kidney disease")  # fmt: skip
CREATININE = Measure("creatinine", "Creatinine", "umol/L", "umol/L", 45, 104, 0)
CHOLESTEROL = Measure("cholesterol", "Total cholesterol", "mmol/L", "mmol/L", None, 5.0, 1)
HDL = Measure("hdl", "HDL cholesterol", "mmol/L", "mmol/L", 1.0, None, 1)
SYSTOLIC = Measure("systolic", "Systolic", "mmHg", "mm[Hg]", None, 140, 0)
DIASTOLIC = Measure("diastolic", "Diastolic", "mmHg", "mm[Hg]", None, 90, 0)
BMI = Measure("bmi", "Body mass index", "kg/m2", "kg/m2", 18.5, 24.9, 1)
WEIGHT = Measure("weight", "Body weight", "kg", "kg", None, None, 1)
HEART_RATE = Measure("heart_rate", "Heart rate", "beats/minute", "/min", 60, 100, 0)
RESPIRATORY_RATE = Measure(
    "respiratory_rate", "Respiratory rate", "breaths/minute", "/min", 12, 20, 0
)
TEMPERATURE = Measure("temperature", "Body temperature", "degC", "Cel", 36.1, 37.8, 1)
SPO2 = Measure("spo2", "Oxygen saturation", "%", "%", 94, None, 0)
HAEMOGLOBIN = Measure("haemoglobin", "Haemoglobin", "g/L", "g/L", 115, 165, 0)


def _years_since(day: int, onset: int | None) -> float | None:
    return None if onset is None or day < onset else (day - onset) / YEAR


def hba1c(rng: random.Random, person: Person, day: int) -> float:
    onset = person.health.conditions.get("type2_diabetes")
    age = person.age_at(day)
    base = 34 + 0.06 * max(0, age - 30)
    if onset is not None:
        years = (day - onset) / YEAR
        if years < 0:  # the years before diagnosis: climbing through the pre-diabetes range
            base += max(0.0, 14 + 4 * years)
        else:  # high at diagnosis, lower on treatment, then creeping up
            base = 62 - min(years, 1.0) * 9 + 0.6 * years
    return max(25.0, rng.gauss(base, 4.5 if onset is not None else 2.5))


def egfr(rng: random.Random, person: Person, day: int) -> float:
    age = person.age_at(day)
    value = 115 - 0.9 * max(0, age - 25)
    years = _years_since(day, person.health.conditions.get("ckd"))
    if years is not None:
        value = min(value, 52) - 1.8 * years
    return min(120.0, max(6.0, rng.gauss(value, 6)))


def creatinine_for(person: Person, egfr_value: float) -> float:
    base = 80.0 if person.sex == "male" else 64.0
    return base * (90 / max(egfr_value, 5)) ** 0.9


def cholesterol(rng: random.Random, person: Person, day: int, on_statin: bool) -> float:
    value = 4.6 + 0.015 * max(0, person.age_at(day) - 20)
    if on_statin:
        value -= 1.3
    return max(2.0, rng.gauss(value, 0.8))


def hdl(rng: random.Random, person: Person) -> float:
    return max(0.5, rng.gauss(1.55 if person.sex == "female" else 1.25, 0.3))


def blood_pressure(rng: random.Random, person: Person, day: int) -> tuple[float, float]:
    age = person.age_at(day)
    systolic = 112 + 0.45 * max(0, age - 20)
    diastolic = 72 + 0.1 * max(0, age - 20)
    years = _years_since(day, person.health.conditions.get("hypertension"))
    onset = person.health.conditions.get("hypertension")
    if onset is not None and day < onset and (onset - day) < 2 * YEAR:
        systolic += 14
        diastolic += 7
    elif years is not None:
        systolic = max(systolic, 150 - min(years, 1.0) * 14)  # treated towards target
        diastolic += 6
    return rng.gauss(systolic, 11), rng.gauss(diastolic, 7)


def bmi(rng: random.Random, person: Person, day: int) -> float:
    years = (day - person.data_start) / YEAR
    value = person.health.bmi + 0.08 * years
    for condition in ("dementia", "cancer"):
        since = _years_since(day, person.health.conditions.get(condition))
        if since is not None:
            value -= min(since, 4) * 0.6
    return max(14.0, rng.gauss(value, 0.6))
