"""Deterministic synthetic FHIR R4 data for the data-layer benchmarks.

The data set is a plan (how many directory resources, how many patients, how many resources each
patient has) plus one seeded random stream per patient, so any patient can be regenerated on its
own: the benchmark runner uses that to pick ids, NHS numbers and compartment sizes without keeping
a copy of the data. The same ``(resources, seed, GENERATOR_VERSION)`` always gives the same
resources, byte for byte.

Everything is fictional. NHS numbers are in the 999 range, which is reserved for test data;
ODS-style codes start with "X" or "Y" and are made up; dm+d codes are illustrative.

Use it as a library::

    from bench.generate import generate
    store.bulk_load(generate(1_000_000))

or from the command line, to write one NDJSON file per resource type::

    .venv/bin/python -m bench.generate --resources 20000 --out /tmp/bench-ndjson
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson

# Bump whenever the output changes, so stores built by an older generator are rebuilt.
GENERATOR_VERSION = 1
DEFAULT_SEED = 20250101
DEFAULT_RESOURCES = 1_000_000
RESOURCES_PER_PATIENT = 300
MIN_RESOURCES = 100

# Events are placed relative to this day, never to "now", so output does not change over time.
REFERENCE_DAY = date(2025, 1, 1)
REFERENCE_TIME = datetime(2025, 1, 1, tzinfo=UTC)

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
SDS_USER_SYSTEM = "https://fhir.nhs.uk/Id/sds-user-id"
GMC_SYSTEM = "https://fhir.hl7.org.uk/Id/gmc-number"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
DMD = "https://dmd.nhs.uk"
CVX = "http://hl7.org/fhir/sid/cvx"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
NHS_VERIFICATION_EXT = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
)
NHS_VERIFICATION_SYSTEM = (
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
)
UKCORE = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-"

SOURCE_GP = "https://gp.bench.carelight.example/fhir"
SOURCE_TRUST = "https://trust.bench.carelight.example/fhir"
SOURCE_DIRECTORY = "https://directory.bench.carelight.example/fhir"
ID_SYSTEM = "https://bench.carelight.example/Id/"


# --------------------------------------------------------------------------------------------
# Reference data (codes are real LOINC/SNOMED CT/CVX codes; dm+d codes are illustrative)
# --------------------------------------------------------------------------------------------

# fmt: off
GIVEN_FEMALE = (
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Grace", "Sophia", "Lily", "Emily", "Ella", "Freya",
    "Evie", "Poppy", "Charlotte", "Ruby", "Margaret", "Patricia", "Susan", "Jean", "Sarah", "Helen",
    "Amira", "Priya", "Aisha", "Zara", "Chloe", "Hannah", "Jessica",
)
GIVEN_MALE = (
    "Oliver", "George", "Noah", "Arthur", "Muhammad", "Leo", "Harry", "Oscar", "Archie", "Henry",
    "Jack", "Charlie", "Thomas", "James", "William", "David", "John", "Michael", "Peter", "Robert",
    "Daniel", "Samuel", "Joseph", "Arjun", "Ravi", "Kwame", "Tomasz",
)
FAMILY = (
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas",
    "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes",
    "Green", "Hall", "Lewis", "Harris", "Clarke", "Patel", "Jackson", "Wood", "Turner", "Martin",
    "Cooper", "Hill", "Ward", "Morris", "Moore", "Clark", "Lee", "King", "Baker", "Harrison",
    "Morgan", "Allen", "Khan", "Ali", "Begum", "Hussain", "Kaur", "Singh", "Nowak", "Okafor",
    "Mensah", "Murphy", "Kelly", "Campbell", "Stewart",
)
STREETS = (
    "High Street", "Station Road", "Church Lane", "Victoria Road", "Green Lane", "Manor Road",
    "Park Road", "Queens Road", "The Crescent", "Mill Lane", "Kings Road", "New Road",
    "School Lane", "Albert Road", "London Road", "Chestnut Close", "Willow Way",
    "Orchard Drive", "Meadow View", "Castle Street",
)
# (town, county, outward codes) — places are real, streets and inward codes are made up.
TOWNS = (
    ("Leeds", "West Yorkshire", ("LS1", "LS6", "LS8", "LS11", "LS17")),
    ("Bradford", "West Yorkshire", ("BD1", "BD3", "BD7", "BD9")),
    ("Wakefield", "West Yorkshire", ("WF1", "WF2", "WF4")),
    ("Harrogate", "North Yorkshire", ("HG1", "HG2", "HG3")),
    ("York", "North Yorkshire", ("YO1", "YO10", "YO24", "YO31")),
    ("Sheffield", "South Yorkshire", ("S1", "S6", "S10", "S11")),
)
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


@dataclass(frozen=True, slots=True)
class Coded:
    system: str
    code: str
    display: str

    def coding(self) -> dict:
        return {"system": self.system, "code": self.code, "display": self.display}


@dataclass(frozen=True, slots=True)
class Measure:
    """A quantitative observation kind: code, UCUM unit, a plausible distribution and range."""

    loinc: Coded
    text: str
    unit: str
    ucum: str
    mean: float
    sd: float
    low: float | None
    high: float | None
    decimals: int = 0
    snomed: Coded | None = None
    category: str = "laboratory"


def _loinc(code: str, display: str) -> Coded:
    return Coded(LOINC, code, display)


def _sct(code: str, display: str) -> Coded:
    return Coded(SNOMED, code, display)


VITALS = (
    Measure(_loinc("8867-4", "Heart rate"), "Heart rate", "beats/minute", "/min", 74, 11, 60, 100,
            snomed=_sct("364075005", "Heart rate"), category="vital-signs"),
    Measure(_loinc("9279-1", "Respiratory rate"), "Respiratory rate", "breaths/minute", "/min", 16, 2.5, 12, 20,
            snomed=_sct("86290005", "Respiratory rate"), category="vital-signs"),
    Measure(_loinc("8310-5", "Body temperature"), "Body temperature", "degC", "Cel", 36.8, 0.4, 36.1, 37.8, 1,
            snomed=_sct("386725007", "Body temperature"), category="vital-signs"),
    Measure(_loinc("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"), "SpO2", "%", "%",
            96.5, 1.8, 94, 100, snomed=_sct("431314004", "Peripheral oxygen saturation"), category="vital-signs"),
    Measure(_loinc("29463-7", "Body weight"), "Body weight", "kg", "kg", 78, 16, None, None, 1,
            snomed=_sct("27113001", "Body weight"), category="vital-signs"),
    Measure(_loinc("8302-2", "Body height"), "Body height", "cm", "cm", 169, 9, None, None, 1,
            snomed=_sct("50373000", "Body height"), category="vital-signs"),
    Measure(_loinc("39156-5", "Body mass index (BMI) [Ratio]"), "Body mass index", "kg/m2", "kg/m2",
            27.4, 5.1, 18.5, 24.9, 1, snomed=_sct("60621009", "Body mass index"), category="vital-signs"),
)
SYSTOLIC = Measure(_loinc("8480-6", "Systolic blood pressure"), "Systolic blood pressure", "mmHg", "mm[Hg]",
                   132, 17, 90, 140, snomed=_sct("271649006", "Systolic blood pressure"))
DIASTOLIC = Measure(_loinc("8462-4", "Diastolic blood pressure"), "Diastolic blood pressure", "mmHg", "mm[Hg]",
                    81, 10, 60, 90, snomed=_sct("271650006", "Diastolic blood pressure"))
BP_PANEL = _loinc("85354-9", "Blood pressure panel with all children optional")
BP_SNOMED = _sct("75367002", "Blood pressure")

LAB_PANELS = (
    (_loinc("24362-6", "Renal function 2000 panel - Serum or Plasma"), "Urea and electrolytes", (
        Measure(_loinc("2951-2", "Sodium [Moles/volume] in Serum or Plasma"), "Sodium", "mmol/L", "mmol/L", 139, 2.5, 133, 146),
        Measure(_loinc("2823-3", "Potassium [Moles/volume] in Serum or Plasma"), "Potassium", "mmol/L", "mmol/L", 4.4, 0.4, 3.5, 5.3, 1),
        Measure(_loinc("14682-9", "Creatinine [Moles/volume] in Serum or Plasma"), "Creatinine", "umol/L", "umol/L", 84, 22, 59, 104),
        Measure(_loinc("62238-1", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula (CKD-EPI)"),
                "eGFR", "mL/min/1.73m2", "mL/min/{1.73_m2}", 78, 18, 90, None),
    )),
    (_loinc("57698-3", "Lipid panel with direct LDL - Serum or Plasma"), "Lipid profile", (
        Measure(_loinc("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma"), "Total cholesterol", "mmol/L", "mmol/L", 5.1, 1.0, None, 5.0, 1),
        Measure(_loinc("14646-4", "Cholesterol in HDL [Moles/volume] in Serum or Plasma"), "HDL cholesterol", "mmol/L", "mmol/L", 1.4, 0.35, 1.0, None, 1),
        Measure(_loinc("14927-8", "Triglyceride [Moles/volume] in Serum or Plasma"), "Triglycerides", "mmol/L", "mmol/L", 1.6, 0.7, None, 1.7, 1),
    )),
    (_loinc("58410-2", "CBC panel - Blood by Automated count"), "Full blood count", (
        Measure(_loinc("718-7", "Hemoglobin [Mass/volume] in Blood"), "Haemoglobin", "g/L", "g/L", 138, 14, 120, 170),
        Measure(_loinc("6690-2", "Leukocytes [#/volume] in Blood by Automated count"), "White cell count", "10*9/L", "10*9/L", 7.2, 1.9, 4.0, 11.0, 1),
        Measure(_loinc("777-3", "Platelets [#/volume] in Blood by Automated count"), "Platelets", "10*9/L", "10*9/L", 260, 60, 150, 400),
    )),
    (_loinc("59261-8", "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol"), "HbA1c", (
        Measure(_loinc("59261-8", "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol"), "HbA1c", "mmol/mol", "mmol/mol", 46, 11, None, 42),
    )),
)

SMOKING = _loinc("72166-2", "Tobacco smoking status")
SMOKING_VALUES = (_sct("266919005", "Never smoked tobacco"), _sct("8517006", "Ex-smoker"), _sct("77176002", "Smoker"))

CONDITIONS = (
    _sct("38341003", "Hypertensive disorder, systemic arterial"), _sct("44054006", "Diabetes mellitus type 2"),
    _sct("195967001", "Asthma"), _sct("13645005", "Chronic obstructive lung disease"),
    _sct("49436004", "Atrial fibrillation"), _sct("709044004", "Chronic kidney disease"),
    _sct("35489007", "Depressive disorder"), _sct("52448006", "Dementia"), _sct("84114007", "Heart failure"),
    _sct("414545008", "Ischemic heart disease"), _sct("396275006", "Osteoarthritis"),
    _sct("55822004", "Hyperlipidemia"), _sct("40930008", "Hypothyroidism"),
    _sct("230690007", "Cerebrovascular accident"), _sct("233604007", "Pneumonia"),
    _sct("68566005", "Urinary tract infectious disease"), _sct("69896004", "Rheumatoid arthritis"),
)
# Illustrative dm+d-style codes: the displays are real dm+d VMP names, the codes are not checked.
MEDICATIONS = (
    (Coded(DMD, "10000011000001101", "Metformin 500mg tablets"), "One tablet twice a day with food", 112),
    (Coded(DMD, "10000111000001102", "Amlodipine 5mg tablets"), "One tablet once a day", 28),
    (Coded(DMD, "10000211000001103", "Ramipril 5mg capsules"), "One capsule once a day", 28),
    (Coded(DMD, "10000311000001104", "Atorvastatin 20mg tablets"), "One tablet at night", 28),
    (Coded(DMD, "10000411000001105", "Salbutamol 100micrograms/dose inhaler CFC free"), "Two puffs when required", 1),
    (Coded(DMD, "10000511000001106", "Levothyroxine sodium 100microgram tablets"), "One tablet each morning", 28),
    (Coded(DMD, "10000611000001107", "Sertraline 50mg tablets"), "One tablet once a day", 28),
    (Coded(DMD, "10000711000001108", "Apixaban 5mg tablets"), "One tablet twice a day", 56),
    (Coded(DMD, "10000811000001109", "Paracetamol 500mg tablets"), "One or two tablets up to four times a day", 100),
    (Coded(DMD, "10000911000001100", "Omeprazole 20mg gastro-resistant capsules"), "One capsule once a day", 28),
    (Coded(DMD, "10001011000001109", "Amoxicillin 500mg capsules"), "One capsule three times a day for 5 days", 15),
    (Coded(DMD, "10001111000001108", "Bisoprolol 2.5mg tablets"), "One tablet once a day", 28),
)
PROCEDURES = (
    _sct("29303009", "Electrocardiographic procedure"), _sct("168537006", "Plain chest X-ray"),
    _sct("73761001", "Colonoscopy"), _sct("80146002", "Appendectomy"),
    _sct("52734007", "Total replacement of hip"), _sct("609588000", "Total knee replacement"),
)
VACCINES = (
    Coded(CVX, "140", "Influenza, seasonal, injectable, preservative free"),
    Coded(CVX, "33", "pneumococcal polysaccharide vaccine, 23 valent"),
    Coded(CVX, "187", "zoster vaccine recombinant"),
    Coded(CVX, "208", "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose"),
)
ALLERGIES = (
    (_sct("91936005", "Allergy to penicillin"), "medication", _sct("271807003", "Eruption of skin")),
    (_sct("91935009", "Allergy to peanuts"), "food", _sct("39579001", "Anaphylaxis")),
    (_sct("300916003", "Latex allergy"), "environment", _sct("271807003", "Eruption of skin")),
)
ENCOUNTER_KINDS = (
    # (class code, class display, type, service provider is the trust, share)
    ("AMB", "ambulatory", _sct("185349003", "Encounter for check up"), False, 70),
    ("AMB", "ambulatory", _sct("390906007", "Follow-up encounter"), False, 15),
    ("EMER", "emergency", _sct("4525004", "Emergency department patient visit"), True, 10),
    ("IMP", "inpatient encounter", _sct("183452005", "Emergency hospital admission"), True, 5),
)
# fmt: on


# --------------------------------------------------------------------------------------------
# NHS numbers
# --------------------------------------------------------------------------------------------


def nhs_check_digit(first_nine: str) -> int | None:
    """Modulus 11 check digit for the first nine digits, or None when no valid digit exists."""
    total = sum(int(d) * w for d, w in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def nhs_number_for(index: int, seed: int) -> str:
    """A valid NHS number in the 999 test range, different for each index below 100,000.

    Digits 4-8 are a permutation of the index (7919 is coprime with 10^5); the ninth digit is the
    first of ten candidates that has a check digit. Exactly one of the ten ever lacks one, because
    the ninth digit has weight 2, which is invertible modulo 11.
    """
    if not 0 <= index < 100_000:
        raise ValueError("the generator supports at most 100,000 patients")
    middle = (index * 7919 + seed) % 100_000
    start = (index + seed) % 10
    for step in range(10):
        first_nine = f"999{middle:05d}{(start + step) % 10}"
        check = nhs_check_digit(first_nine)
        if check is not None:
            return f"{first_nine}{check}"
    raise AssertionError("unreachable: nine of ten ninth digits give a valid number")


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How ``resources`` resources are split between the directory and the patients."""

    resources: int
    seed: int
    practices: int
    trusts: int
    practitioners: int
    roles: int
    patients: int

    @property
    def directory_size(self) -> int:
        return self.practices + self.trusts + self.practitioners + self.roles

    def patient_size(self, index: int) -> int:
        """Resources in patient ``index``'s compartment (the Patient included)."""
        base, extra = divmod(self.resources - self.directory_size, self.patients)
        return base + (1 if index < extra else 0)


def make_plan(resources: int = DEFAULT_RESOURCES, seed: int = DEFAULT_SEED) -> Plan:
    if resources < MIN_RESOURCES:
        raise ValueError(f"need at least {MIN_RESOURCES} resources, got {resources}")
    directory = min(400, max(12, resources // 2500))
    practices = max(2, directory * 15 // 100)
    trusts = max(1, directory // 40)
    practitioners = (directory - practices - trusts) // 2
    roles = directory - practices - trusts - practitioners
    patients = max(1, (resources - directory) // RESOURCES_PER_PATIENT)
    return Plan(resources, seed, practices, trusts, practitioners, roles, patients)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ref(resource: dict, display: str | None = None) -> dict:
    ref = {"reference": f"{resource['resourceType']}/{resource['id']}"}
    if display:
        ref["display"] = display
    return ref


def _meta(source: str, profile: str) -> dict:
    return {"source": source, "profile": [UKCORE + profile]}


def _concept(*codings: Coded, text: str | None = None) -> dict:
    concept: dict = {"coding": [c.coding() for c in codings]}
    if text:
        concept["text"] = text
    return concept


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _quantity(value: float, measure: Measure) -> dict:
    return {"value": value, "unit": measure.unit, "system": UCUM, "code": measure.ucum}


def _narrative(text: str) -> dict:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{escaped}</p></div>',
    }


def _postcode(rng: random.Random, outward: tuple[str, ...]) -> str:
    letters = rng.choice(POSTCODE_LETTERS) + rng.choice(POSTCODE_LETTERS)
    return f"{rng.choice(outward)} {rng.randint(1, 9)}{letters}"


def _address(rng: random.Random) -> dict:
    town, county, outward = rng.choice(TOWNS)
    return {
        "use": "home",
        "type": "both",
        "line": [f"{rng.randint(1, 240)} {rng.choice(STREETS)}"],
        "city": town,
        "district": county,
        "postalCode": _postcode(rng, outward),
        "country": "GB",
    }


# --------------------------------------------------------------------------------------------
# Directory: organisations, practitioners and their roles
# --------------------------------------------------------------------------------------------


@dataclass
class Directory:
    practices: list[dict] = field(default_factory=list)
    trusts: list[dict] = field(default_factory=list)
    practitioners: list[dict] = field(default_factory=list)
    roles: list[dict] = field(default_factory=list)
    # practice index -> practitioners with a role there
    gps_by_practice: dict[int, list[dict]] = field(default_factory=dict)
    clinicians_by_trust: dict[int, list[dict]] = field(default_factory=dict)

    def resources(self) -> Iterator[dict]:
        yield from self.practices
        yield from self.trusts
        yield from self.practitioners
        yield from self.roles


def _organization(rng: random.Random, code: str, name: str, kind: Coded, town: str) -> dict:
    _town, county, outward = next(t for t in TOWNS if t[0] == town)
    return {
        "resourceType": "Organization",
        "id": _uuid(rng),
        "meta": _meta(SOURCE_DIRECTORY, "Organization"),
        "identifier": [{"system": ODS_SYSTEM, "value": code}],
        "active": True,
        "type": [_concept(kind)],
        "name": name,
        "telecom": [
            {
                "system": "phone",
                "value": f"0113 {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                "use": "work",
            }
        ],
        "address": [
            {
                "use": "work",
                "line": [f"{rng.randint(1, 90)} {rng.choice(STREETS)}"],
                "city": town,
                "district": county,
                "postalCode": _postcode(rng, outward),
                "country": "GB",
            }
        ],
    }


def make_directory(plan: Plan) -> Directory:
    rng = random.Random(f"{plan.seed}/directory")
    directory = Directory()
    for i in range(plan.practices):
        town = TOWNS[i % len(TOWNS)][0]
        name = f"{rng.choice(STREETS).split()[0]} {rng.choice(('Medical Practice', 'Surgery', 'Health Centre'))}, {town}"
        directory.practices.append(
            _organization(
                rng, f"Y{90000 + i:05d}", name, Coded(ORG_TYPE, "prov", "Healthcare Provider"), town
            )
        )
    for i in range(plan.trusts):
        town = TOWNS[i % len(TOWNS)][0]
        name = (
            f"{town} Teaching Hospitals NHS Foundation Trust"
            if i < len(TOWNS)
            else f"Bench Hospitals NHS Trust {i}"
        )
        directory.trusts.append(
            _organization(
                rng, f"X{i + 1:02d}", name, Coded(ORG_TYPE, "prov", "Healthcare Provider"), town
            )
        )
    for i in range(plan.practitioners):
        female = rng.random() < 0.55
        given = rng.choice(GIVEN_FEMALE if female else GIVEN_MALE)
        family = rng.choice(FAMILY)
        practitioner = {
            "resourceType": "Practitioner",
            "id": _uuid(rng),
            "meta": _meta(SOURCE_DIRECTORY, "Practitioner"),
            "identifier": [
                {"system": SDS_USER_SYSTEM, "value": f"{rng.randint(10**11, 10**12 - 1)}"},
                {"system": GMC_SYSTEM, "value": f"{7000000 + i}"},
            ],
            "active": True,
            "name": [{"use": "official", "family": family, "given": [given], "prefix": ["Dr"]}],
            "gender": "female" if female else "male",
            "telecom": [
                {
                    "system": "email",
                    "value": f"{given}.{family}{i}@bench.nhs.example".lower(),
                    "use": "work",
                }
            ],
        }
        directory.practitioners.append(practitioner)
    for i in range(plan.roles):
        practitioner = directory.practitioners[i % len(directory.practitioners)]
        at_practice = i % 3 != 2 or not directory.trusts
        if at_practice:
            org_index = i % plan.practices
            organization = directory.practices[org_index]
            directory.gps_by_practice.setdefault(org_index, []).append(practitioner)
            role = _sct("62247001", "General practitioner")
        else:
            org_index = i % plan.trusts
            organization = directory.trusts[org_index]
            directory.clinicians_by_trust.setdefault(org_index, []).append(practitioner)
            role = _sct("158965000", "Medical practitioner")
        directory.roles.append(
            {
                "resourceType": "PractitionerRole",
                "id": _uuid(rng),
                "meta": _meta(SOURCE_DIRECTORY, "PractitionerRole"),
                "active": True,
                "period": {"start": f"{2000 + rng.randint(0, 22)}-{rng.randint(1, 12):02d}-01"},
                "practitioner": _ref(practitioner),
                "organization": _ref(organization, organization["name"]),
                "code": [_concept(role)],
            }
        )
    # Every organisation needs someone to do the work, even in tiny data sets.
    for i in range(plan.practices):
        directory.gps_by_practice.setdefault(
            i, [directory.practitioners[i % len(directory.practitioners)]]
        )
    for i in range(plan.trusts):
        directory.clinicians_by_trust.setdefault(
            i, [directory.practitioners[-1 - i % len(directory.practitioners)]]
        )
    return directory


# --------------------------------------------------------------------------------------------
# One patient's record
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Composition:
    encounters: int
    conditions: int
    allergies: int
    medications: int
    procedures: int
    immunizations: int
    care_plans: int
    reports: tuple[int, ...]  # panel index of each DiagnosticReport
    vitals: int  # standalone vital-sign and smoking Observations

    @property
    def lab_observations(self) -> int:
        return sum(len(LAB_PANELS[p][2]) for p in self.reports)


def _composition(rng: random.Random, size: int) -> Composition:
    """Split ``size - 1`` resources (one is the Patient) between the resource types."""
    scale = size / RESOURCES_PER_PATIENT

    def some(low: int, high: int) -> int:
        return max(0, round(rng.randint(low, high) * scale))

    encounters = max(1, some(10, 16))
    conditions = some(4, 10)
    allergies = rng.choice((0, 0, 1, 1, 2)) if scale >= 0.5 else 0
    medications = some(6, 14)
    procedures = some(2, 6)
    immunizations = some(3, 8)
    care_plans = 1 if conditions else 0
    reports = tuple(rng.randrange(len(LAB_PANELS)) for _ in range(some(6, 10)))
    fixed = (
        encounters + conditions + allergies + medications + procedures + immunizations + care_plans
    )
    while True:
        labs = sum(len(LAB_PANELS[p][2]) for p in reports)
        vitals = size - 1 - fixed - labs - len(reports)
        if vitals >= 0 or not reports:
            break
        reports = reports[:-1]
    if vitals < 0:
        raise ValueError(f"patient size {size} is too small")
    return Composition(
        encounters,
        conditions,
        allergies,
        medications,
        procedures,
        immunizations,
        care_plans,
        reports,
        vitals,
    )


@dataclass
class _PatientContext:
    rng: random.Random
    patient: dict
    subject: dict
    birth: date
    practice: dict
    trust: dict
    gps: list[dict]
    clinicians: list[dict]
    encounters: list[tuple[dict, datetime, bool]] = field(default_factory=list)

    def when(self) -> datetime:
        """A moment in the last ten years, after birth."""
        earliest = max(
            REFERENCE_TIME - timedelta(days=3650),
            datetime(self.birth.year, self.birth.month, self.birth.day, tzinfo=UTC),
        )
        span = max(1, int((REFERENCE_TIME - earliest).total_seconds()))
        moment = earliest + timedelta(seconds=self.rng.randrange(span))
        return moment.replace(second=0)

    def encounter(self) -> tuple[dict, datetime, bool]:
        return self.rng.choice(self.encounters)

    def performer(self, at_trust: bool) -> dict:
        return _ref(self.rng.choice(self.clinicians if at_trust else self.gps))


def _patient(
    rng: random.Random, plan: Plan, index: int, practice: dict, gp: dict
) -> tuple[dict, date]:
    female = rng.random() < 0.51
    given = [rng.choice(GIVEN_FEMALE if female else GIVEN_MALE)]
    if rng.random() < 0.4:
        given.append(rng.choice(GIVEN_FEMALE if female else GIVEN_MALE))
    family = rng.choice(FAMILY)
    age_days = rng.randint(365, 98 * 365) if rng.random() < 0.9 else rng.randint(30, 365)
    birth = REFERENCE_DAY - timedelta(days=age_days)
    patient = {
        "resourceType": "Patient",
        "id": _uuid(rng),
        "meta": _meta(SOURCE_GP, "Patient"),
        "identifier": [
            {
                "extension": [
                    {
                        "url": NHS_VERIFICATION_EXT,
                        "valueCodeableConcept": _concept(
                            Coded(NHS_VERIFICATION_SYSTEM, "01", "Number present and verified")
                        ),
                    }
                ],
                "system": NHS_NUMBER_SYSTEM,
                "value": nhs_number_for(index, plan.seed),
            }
        ],
        "active": True,
        "name": [
            {
                "use": "official",
                "family": family,
                "given": given,
                "prefix": ["Ms" if female else "Mr"],
            }
        ],
        "telecom": [
            {"system": "phone", "value": f"07700 9{rng.randint(0, 99999):05d}", "use": "mobile"}
        ],
        "gender": "female" if female else "male",
        "birthDate": birth.isoformat(),
        "address": [_address(rng)],
        "generalPractitioner": [_ref(practice, practice["name"]), _ref(gp)],
        "managingOrganization": _ref(practice),
    }
    return patient, birth


def _encounter_kind(rng: random.Random) -> tuple:
    roll = rng.randrange(sum(kind[-1] for kind in ENCOUNTER_KINDS))
    for kind in ENCOUNTER_KINDS:
        if roll < kind[-1]:
            return kind
        roll -= kind[-1]
    raise AssertionError("unreachable")


def _encounter(ctx: _PatientContext) -> dict:
    rng = ctx.rng
    class_code, class_display, kind, at_trust, _share = _encounter_kind(rng)
    start = ctx.when()
    if class_code == "IMP":
        end = start + timedelta(days=rng.randint(1, 12), hours=rng.randint(0, 20))
    elif class_code == "EMER":
        end = start + timedelta(minutes=rng.randint(60, 600))
    else:
        end = start + timedelta(minutes=rng.choice((10, 10, 15, 20, 30)))
    provider = ctx.trust if at_trust else ctx.practice
    encounter = {
        "resourceType": "Encounter",
        "id": _uuid(rng),
        "meta": _meta(SOURCE_TRUST if at_trust else SOURCE_GP, "Encounter"),
        "identifier": [
            {"system": ID_SYSTEM + "encounter", "value": f"ENC{rng.randint(10**8, 10**9 - 1)}"}
        ],
        "status": "finished",
        "class": {"system": ACT_CODE, "code": class_code, "display": class_display},
        "type": [_concept(kind)],
        "subject": ctx.subject,
        "participant": [{"individual": ctx.performer(at_trust)}],
        "period": {"start": _instant(start), "end": _instant(end)},
        "serviceProvider": _ref(provider, provider["name"]),
    }
    if class_code == "IMP":
        encounter["hospitalization"] = {
            "admitSource": {"text": "Emergency department"},
            "dischargeDisposition": {
                "text": rng.choice(("Home", "Home with care package", "Care home"))
            },
        }
    ctx.encounters.append((encounter, start, at_trust))
    return encounter


def _condition(ctx: _PatientContext, code: Coded) -> dict:
    rng = ctx.rng
    encounter, start, at_trust = ctx.encounter()
    active = rng.random() < 0.8
    condition = {
        "resourceType": "Condition",
        "id": _uuid(rng),
        "meta": _meta(SOURCE_TRUST if at_trust else SOURCE_GP, "Condition"),
        "clinicalStatus": _concept(
            Coded(
                CONDITION_CLINICAL, *(("active", "Active") if active else ("resolved", "Resolved"))
            )
        ),
        "verificationStatus": _concept(Coded(CONDITION_VERIFICATION, "confirmed", "Confirmed")),
        "category": [
            _concept(
                Coded(CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis")
                if at_trust
                else Coded(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")
            )
        ],
        "code": _concept(code, text=code.display),
        "subject": ctx.subject,
        "encounter": _ref(encounter),
        "onsetDateTime": _instant(start),
        "recordedDate": _instant(start + timedelta(minutes=5)),
        "recorder": ctx.performer(at_trust),
    }
    if not active:
        condition["abatementDateTime"] = _instant(start + timedelta(days=rng.randint(7, 200)))
    return condition


def _allergy(ctx: _PatientContext, allergy: tuple) -> dict:
    rng = ctx.rng
    code, category, manifestation = allergy
    encounter, start, at_trust = ctx.encounter()
    return {
        "resourceType": "AllergyIntolerance",
        "id": _uuid(rng),
        "meta": _meta(SOURCE_GP, "AllergyIntolerance"),
        "clinicalStatus": _concept(Coded(ALLERGY_CLINICAL, "active", "Active")),
        "verificationStatus": _concept(Coded(ALLERGY_VERIFICATION, "confirmed", "Confirmed")),
        "type": "allergy",
        "category": [category],
        "criticality": "high" if manifestation.code == "39579001" else "low",
        "code": _concept(code, text=code.display),
        "patient": ctx.subject,
        "encounter": _ref(encounter),
        "recordedDate": _instant(start),
        "recorder": ctx.performer(at_trust),
        "reaction": [
            {
                "manifestation": [_concept(manifestation)],
                "severity": "severe" if manifestation.code == "39579001" else "mild",
            }
        ],
    }


def _medication_request(ctx: _PatientContext) -> dict:
    rng = ctx.rng
    medication, instructions, quantity = rng.choice(MEDICATIONS)
    encounter, start, at_trust = ctx.encounter()
    return {
        "resourceType": "MedicationRequest",
        "id": _uuid(rng),
        "meta": _meta(SOURCE_TRUST if at_trust else SOURCE_GP, "MedicationRequest"),
        "identifier": [{"system": ID_SYSTEM + "prescription", "value": _uuid(rng)}],
        "status": "active" if start > REFERENCE_TIME - timedelta(days=365) else "completed",
        "intent": "order",
        "category": [
            _concept(
                Coded(
                    "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                    *(("inpatient", "Inpatient") if at_trust else ("community", "Community")),
                )
            )
        ],
        "medicationCodeableConcept": _concept(medication, text=medication.display),
        "subject": ctx.subject,
        "encounter": _ref(encounter),
        "authoredOn": _instant(start),
        "requester": ctx.performer(at_trust),
        "courseOfTherapyType": _concept(
            Coded(
                "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
                "continuous",
                "Continuous long term therapy",
            )
        ),
        "dosageInstruction": [
            {
                "sequence": 1,
                "text": instructions,
                "route": _concept(_sct("26643006", "Oral route")),
            }
        ],
        "dispenseRequest": {
            "quantity": {"value": quantity, "unit": "dose", "system": UCUM, "code": "{dose}"},
            "expectedSupplyDuration": {"value": 28, "unit": "days", "system": UCUM, "code": "d"},
        },
    }


def _procedure(ctx: _PatientContext) -> dict:
    rng = ctx.rng
    code = rng.choice(PROCEDURES)
    encounter, start, at_trust = ctx.encounter()
    return {
        "resourceType": "Procedure",
        "id": _uuid(rng),
        "meta": _meta(SOURCE_TRUST if at_trust else SOURCE_GP, "Procedure"),
        "status": "completed",
        "code": _concept(code, text=code.display),
        "subject": ctx.subject,
        "encounter": _ref(encounter),
        "performedDateTime": _instant(start + timedelta(minutes=rng.randint(5, 120))),
        "performer": [{"actor": ctx.performer(at_trust)}],
        "note": [{"text": "Procedure completed without complication."}],
    }


def _immunization(ctx: _PatientContext) -> dict:
    rng = ctx.rng
    vaccine = rng.choice(VACCINES)
    encounter, start, _ = ctx.encounter()
    return {
        "resourceType": "Immunization",
        "id": _uuid(rng),
        "meta": _meta(SOURCE_GP, "Immunization"),
        "status": "completed",
        "vaccineCode": _concept(vaccine, text=vaccine.display),
        "patient": ctx.subject,
        "encounter": _ref(encounter),
        "occurrenceDateTime": _instant(start),
        "primarySource": True,
        "lotNumber": f"{rng.choice('ABCDEFGH')}{rng.randint(1000, 9999)}",
        "site": _concept(_sct("368208006", "Left upper arm structure")),
        "route": _concept(_sct("78421000", "Intramuscular route")),
        "doseQuantity": {"value": 0.5, "unit": "mL", "system": UCUM, "code": "mL"},
        "performer": [{"actor": ctx.performer(False)}],
    }


def _care_plan(ctx: _PatientContext, conditions: list[dict]) -> dict:
    rng = ctx.rng
    _, start, _ = ctx.encounter()
    return {
        "resourceType": "CarePlan",
        "id": _uuid(rng),
        "meta": _meta(SOURCE_GP, "CarePlan"),
        "text": _narrative(
            "Long-term conditions care plan: annual review, medication review and self-management."
        ),
        "status": "active",
        "intent": "plan",
        "category": [_concept(_sct("734163000", "Care plan"))],
        "title": "Long-term conditions care plan",
        "subject": ctx.subject,
        "period": {"start": start.date().isoformat()},
        "author": ctx.performer(False),
        "addresses": [_ref(c) for c in conditions[:3]],
        "activity": [
            {
                "detail": {
                    "status": "scheduled",
                    "description": "Annual long-term conditions review with the practice nurse",
                }
            },
            {"detail": {"status": "in-progress", "description": "Structured medication review"}},
        ],
    }


def _interpretation(value: float, measure: Measure) -> dict | None:
    if measure.low is not None and value < measure.low:
        return _concept(Coded(INTERPRETATION, "L", "Low"))
    if measure.high is not None and value > measure.high:
        return _concept(Coded(INTERPRETATION, "H", "High"))
    if measure.low is None and measure.high is None:
        return None
    return _concept(Coded(INTERPRETATION, "N", "Normal"))


def _reference_range(measure: Measure) -> list[dict]:
    if measure.low is None and measure.high is None:
        return []
    limits: dict = {}
    if measure.low is not None:
        limits["low"] = _quantity(measure.low, measure)
    if measure.high is not None:
        limits["high"] = _quantity(measure.high, measure)
    return [limits]


def _measurement(rng: random.Random, measure: Measure) -> float:
    value = max(measure.mean * 0.2, rng.gauss(measure.mean, measure.sd))
    return round(value, measure.decimals) if measure.decimals else round(value)


def _observation_base(
    ctx: _PatientContext, category: str, encounter: dict, at_trust: bool, moment: datetime
) -> dict:
    rng = ctx.rng
    return {
        "resourceType": "Observation",
        "id": _uuid(rng),
        "meta": _meta(SOURCE_TRUST if at_trust else SOURCE_GP, "Observation"),
        "identifier": [{"system": ID_SYSTEM + "observation", "value": _uuid(rng)}],
        "status": "final",
        "category": [
            _concept(
                Coded(
                    OBS_CATEGORY,
                    category,
                    {
                        "laboratory": "Laboratory",
                        "vital-signs": "Vital Signs",
                        "social-history": "Social History",
                    }[category],
                )
            )
        ],
        "code": {},
        "subject": ctx.subject,
        "encounter": _ref(encounter),
        "effectiveDateTime": _instant(moment),
        "issued": _instant(
            moment + timedelta(hours=4 if category == "laboratory" else 0, minutes=2)
        ),
        "performer": [ctx.performer(at_trust)],
    }


def _quantity_observation(
    ctx: _PatientContext, measure: Measure, encounter: dict, at_trust: bool, moment: datetime
) -> dict:
    observation = _observation_base(ctx, measure.category, encounter, at_trust, moment)
    codings = (measure.loinc, measure.snomed) if measure.snomed else (measure.loinc,)
    observation["code"] = _concept(*codings, text=measure.text)
    value = _measurement(ctx.rng, measure)
    observation["valueQuantity"] = _quantity(value, measure)
    interpretation = _interpretation(value, measure)
    if interpretation:
        observation["interpretation"] = [interpretation]
    reference_range = _reference_range(measure)
    if reference_range:
        observation["referenceRange"] = reference_range
    return observation


def _blood_pressure(
    ctx: _PatientContext, encounter: dict, at_trust: bool, moment: datetime
) -> dict:
    observation = _observation_base(ctx, "vital-signs", encounter, at_trust, moment)
    observation["code"] = _concept(BP_PANEL, BP_SNOMED, text="Blood pressure")
    components = []
    for measure in (SYSTOLIC, DIASTOLIC):
        value = _measurement(ctx.rng, measure)
        component = {
            "code": _concept(measure.loinc, measure.snomed, text=measure.text),
            "valueQuantity": _quantity(value, measure),
            "referenceRange": _reference_range(measure),
        }
        interpretation = _interpretation(value, measure)
        if interpretation:
            component["interpretation"] = [interpretation]
        components.append(component)
    observation["component"] = components
    return observation


def _smoking(ctx: _PatientContext, encounter: dict, moment: datetime) -> dict:
    observation = _observation_base(ctx, "social-history", encounter, False, moment)
    observation["code"] = _concept(SMOKING, text="Smoking status")
    observation["valueCodeableConcept"] = _concept(ctx.rng.choice(SMOKING_VALUES))
    return observation


def _vital(ctx: _PatientContext, slot: int) -> dict:
    encounter, start, at_trust = ctx.encounter()
    moment = start + timedelta(minutes=ctx.rng.randint(1, 9))
    kind = slot % (len(VITALS) + 3)
    if kind < len(VITALS):
        return _quantity_observation(ctx, VITALS[kind], encounter, at_trust, moment)
    if kind < len(VITALS) + 2:
        return _blood_pressure(ctx, encounter, at_trust, moment)
    return _smoking(ctx, encounter, moment)


def _lab_report(ctx: _PatientContext, panel_index: int) -> list[dict]:
    """A DiagnosticReport and its result Observations (the Observations first)."""
    panel, title, measures = LAB_PANELS[panel_index]
    encounter, start, at_trust = ctx.encounter()
    moment = start + timedelta(minutes=ctx.rng.randint(10, 60))
    results = [_quantity_observation(ctx, m, encounter, at_trust, moment) for m in measures]
    abnormal = [
        r["code"]["text"]
        for r in results
        if r.get("interpretation", [{}])[0].get("coding", [{}])[0].get("code") in ("H", "L")
    ]
    report = {
        "resourceType": "DiagnosticReport",
        "id": _uuid(ctx.rng),
        "meta": _meta(SOURCE_TRUST, "DiagnosticReport"),
        "identifier": [
            {"system": ID_SYSTEM + "lab-report", "value": f"LAB{ctx.rng.randint(10**8, 10**9 - 1)}"}
        ],
        "status": "final",
        "category": [_concept(Coded(V2_0074, "LAB", "Laboratory"))],
        "code": _concept(panel, text=title),
        "subject": ctx.subject,
        "encounter": _ref(encounter),
        "effectiveDateTime": _instant(moment),
        "issued": _instant(moment + timedelta(hours=4)),
        "performer": [_ref(ctx.trust, ctx.trust["name"])],
        "result": [_ref(r, r["code"]["text"]) for r in results],
        "conclusion": f"Outside reference range: {', '.join(abnormal)}."
        if abnormal
        else "All results within reference range.",
    }
    return [*results, report]


def patient_record(plan: Plan, directory: Directory, index: int) -> list[dict]:
    """Every resource in patient ``index``'s compartment, dependencies first."""
    if not 0 <= index < plan.patients:
        raise IndexError(index)
    rng = random.Random(f"{plan.seed}/patient/{index}")
    practice_index = index % plan.practices
    trust_index = rng.randrange(plan.trusts)
    practice = directory.practices[practice_index]
    gps = directory.gps_by_practice[practice_index]
    patient, birth = _patient(rng, plan, index, practice, rng.choice(gps))
    ctx = _PatientContext(
        rng=rng,
        patient=patient,
        subject=_ref(patient),
        birth=birth,
        practice=practice,
        trust=directory.trusts[trust_index],
        gps=gps,
        clinicians=directory.clinicians_by_trust[trust_index],
    )
    comp = _composition(rng, plan.patient_size(index))
    record = [patient]
    record.extend(_encounter(ctx) for _ in range(comp.encounters))
    conditions = [
        _condition(ctx, c) for c in rng.sample(CONDITIONS, min(comp.conditions, len(CONDITIONS)))
    ]
    conditions.extend(
        _condition(ctx, rng.choice(CONDITIONS)) for _ in range(comp.conditions - len(conditions))
    )
    record.extend(conditions)
    record.extend(_allergy(ctx, a) for a in rng.sample(ALLERGIES, comp.allergies))
    record.extend(_medication_request(ctx) for _ in range(comp.medications))
    record.extend(_procedure(ctx) for _ in range(comp.procedures))
    record.extend(_immunization(ctx) for _ in range(comp.immunizations))
    record.extend(_care_plan(ctx, conditions) for _ in range(comp.care_plans))
    record.extend(_vital(ctx, slot) for slot in range(comp.vitals))
    for panel_index in comp.reports:
        record.extend(_lab_report(ctx, panel_index))
    return record


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def generate(resources: int = DEFAULT_RESOURCES, seed: int = DEFAULT_SEED) -> Iterator[dict]:
    """Yield exactly ``resources`` resources: the directory first, then one patient at a time."""
    plan = make_plan(resources, seed)
    directory = make_directory(plan)
    yield from directory.resources()
    for index in range(plan.patients):
        yield from patient_record(plan, directory, index)


@dataclass(frozen=True)
class PatientSample:
    index: int
    id: str
    nhs_number: str
    size: int  # resources in the compartment, the Patient included
    resources: tuple[tuple[str, str], ...]  # (type, id) of every resource in the compartment


def sample_patients(
    plan: Plan, count: int, rng: random.Random, practice: int | None = None
) -> list[PatientSample]:
    """Regenerate ``count`` distinct random patients of the plan (of one practice, if given),
    without the rest of the data."""
    directory = make_directory(plan)
    population = (
        range(plan.patients)
        if practice is None
        else range(practice % plan.practices, plan.patients, plan.practices)
    )
    indexes = rng.sample(population, min(count, len(population)))
    samples = []
    for index in indexes:
        record = patient_record(plan, directory, index)
        patient = record[0]
        samples.append(
            PatientSample(
                index=index,
                id=patient["id"],
                nhs_number=patient["identifier"][0]["value"],
                size=len(record),
                resources=tuple((r["resourceType"], r["id"]) for r in record),
            )
        )
    return samples


def write_ndjson(resources: Iterable[dict], out_dir: Path) -> Counter[str]:
    """Write one ``<Type>.ndjson`` file per resource type; returns the count per type."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    counts: Counter[str] = Counter()
    try:
        for resource in resources:
            kind = resource["resourceType"]
            handle = files.get(kind)
            if handle is None:
                handle = files[kind] = open(out_dir / f"{kind}.ndjson", "wb")  # noqa: SIM115
            handle.write(orjson.dumps(resource))
            handle.write(b"\n")
            counts[kind] += 1
    finally:
        for handle in files.values():
            handle.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the synthetic benchmark data set as NDJSON."
    )
    parser.add_argument(
        "--resources", type=int, default=DEFAULT_RESOURCES, help="how many (default %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)"
    )
    parser.add_argument("--out", type=Path, required=True, help="directory for the NDJSON files")
    args = parser.parse_args(argv)
    plan = make_plan(args.resources, args.seed)
    counts = write_ndjson(generate(args.resources, args.seed), args.out)
    width = max(map(len, counts))
    for kind, count in sorted(counts.items()):
        print(f"{kind:<{width}} {count:>9,}")
    print(f"{'total':<{width}} {sum(counts.values()):>9,} ({plan.patients:,} patients)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
