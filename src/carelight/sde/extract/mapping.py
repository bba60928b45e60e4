"""From FHIR resources to staging rows: what each research table takes from which resource.

Each mapper takes a parsed resource and the person's pseudonym and yields ``(staging table,
row)``; nothing else of the resource goes anywhere. Dates are cut to the day (to the month for
birth and death), codes are taken only from the expected code system, and no free text, name,
identifier or source id is copied. An encounter and its diagnoses are joined through a *link*,
a hash of the encounter's reference under a key made for one extract and then forgotten, so
the staging data holds no source ids either. docs/research-data-model.md lists each column's
FHIR origin; keep the two in step.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
DMD = "https://dmd.nhs.uk"
CVX = "http://hl7.org/fhir/sid/cvx"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"

# Staging tables: name -> columns (name, DuckDB type). Final tables are built from these.
STAGING: dict[str, tuple[tuple[str, str], ...]] = {
    "st_patient": (
        ("patient_id", "VARCHAR"), ("sex", "VARCHAR"), ("date_of_birth", "DATE"),
        ("date_of_death", "DATE"), ("area_code", "VARCHAR"), ("weight", "BIGINT"),
    ),
    "st_registration": (
        ("patient_id", "VARCHAR"), ("practice_code", "VARCHAR"), ("start_date", "DATE"),
        ("end_date", "DATE"),
    ),
    "st_clinical": (
        ("patient_id", "VARCHAR"), ("date", "DATE"), ("snomedct_code", "VARCHAR"),
        ("numeric_value", "DOUBLE"),
    ),
    "st_medication": (("patient_id", "VARCHAR"), ("date", "DATE"), ("dmd_code", "VARCHAR")),
    "st_lab": (
        ("patient_id", "VARCHAR"), ("date", "DATE"), ("code", "VARCHAR"), ("value", "DOUBLE"),
        ("unit", "VARCHAR"),
    ),
    "st_vaccination": (("patient_id", "VARCHAR"), ("date", "DATE"), ("vaccine_code", "VARCHAR")),
    "st_encounter": (
        ("patient_id", "VARCHAR"), ("link", "VARCHAR"), ("admission_date", "DATE"),
        ("discharge_date", "DATE"), ("admission_class", "VARCHAR"),
    ),
    "st_diagnosis": (("link", "VARCHAR"), ("seq", "BIGINT"), ("code", "VARCHAR")),
    "st_procedure": (("patient_id", "VARCHAR"), ("date", "DATE"), ("snomedct_code", "VARCHAR")),
    "st_assessment": (
        ("patient_id", "VARCHAR"), ("date", "DATE"), ("assessment_type", "VARCHAR"),
        ("eligible", "BOOLEAN"),
    ),
    "st_package": (
        ("patient_id", "VARCHAR"), ("start_date", "DATE"), ("end_date", "DATE"),
        ("package_type", "VARCHAR"), ("hours_per_week", "DOUBLE"),
    ),
    "st_care_home": (
        ("patient_id", "VARCHAR"), ("start_date", "DATE"), ("end_date", "DATE"),
        ("care_home_code", "VARCHAR"), ("nursing", "BOOLEAN"), ("kind", "VARCHAR"),
    ),
}  # fmt: skip

# Research table -> the staging tables it is built from and the FHIR types those come from.
SOURCES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "patients": (("st_patient",), ("Patient",)),
    "practice_registrations": (("st_registration",), ("EpisodeOfCare",)),
    "clinical_events": (("st_clinical",), ("Condition", "AllergyIntolerance")),
    "medications": (("st_medication",), ("MedicationRequest",)),
    "lab_results": (("st_lab",), ("Observation",)),
    "vaccinations": (("st_vaccination",), ("Immunization",)),
    "admissions": (("st_encounter", "st_diagnosis"), ("Encounter", "Condition")),
    "procedures": (("st_procedure",), ("Procedure",)),
    "social_care_assessments": (("st_assessment",), ("QuestionnaireResponse",)),
    "care_packages": (("st_package",), ("EpisodeOfCare",)),
    "care_home_stays": (("st_care_home",), ("EpisodeOfCare",)),
}

Row = tuple
Emit = Iterator[tuple[str, Row]]


def day(value: object) -> dt.date | None:
    """A FHIR date or dateTime as a date (a partial date as its first day); None if unusable."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        if len(value) == 4:
            return dt.date(int(value), 1, 1)
        if len(value) == 7:
            return dt.date(int(value[:4]), int(value[5:7]), 1)
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def month(value: object) -> dt.date | None:
    d = day(value)
    return d.replace(day=1) if d else None


def code_in(concept: object, system: str) -> str | None:
    if not isinstance(concept, dict):
        return None
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict) and coding.get("system") == system and coding.get("code"):
            return str(coding["code"])
    return None


def reference_id(ref: object, res_type: str) -> str | None:
    if isinstance(ref, dict):
        value = ref.get("reference") or ""
        if value.startswith(f"{res_type}/"):
            return value[len(res_type) + 1 :]
    return None


def area_code(address: object) -> str | None:
    """The postcode *sector* (outward code and the inward code's digit, e.g. ``LS1 4``): a
    small statistical area of a few thousand addresses, never the full postcode."""
    if not isinstance(address, dict):
        return None
    postcode = str(address.get("postalCode") or "").upper().split()
    if len(postcode) == 2 and postcode[1][:1].isdigit():
        return f"{postcode[0]} {postcode[1][0]}"
    compact = "".join(postcode)
    if 5 <= len(compact) <= 7 and compact[-3].isdigit():
        return f"{compact[:-3]} {compact[-3]}"
    return None


def latest_address(patient: dict) -> dict | None:
    current = [
        a
        for a in patient.get("address") or ()
        if isinstance(a, dict) and a.get("use") != "old" and not (a.get("period") or {}).get("end")
    ]
    return current[-1] if current else None


class Mapper:
    """Maps resources to staging rows for one extract. ``directory`` holds what is needed
    about organisations and forms (ODS codes, names), ``link_key`` the extract's one-off key
    for encounter links, and ``tables`` the staging tables this project needs."""

    def __init__(self, directory: Directory, link_key: bytes, tables: set[str]) -> None:
        self.directory = directory
        self.link_key = link_key
        self.tables = tables
        self.by_type: dict[str, Callable[[dict, str, float, int], Emit]] = {
            "Patient": self.patient,
            "EpisodeOfCare": self.episode,
            "Condition": self.condition,
            "AllergyIntolerance": self.allergy,
            "MedicationRequest": self.medication,
            "Observation": self.observation,
            "Immunization": self.immunization,
            "Encounter": self.encounter,
            "Procedure": self.procedure,
            "QuestionnaireResponse": self.assessment,
        }

    def rows(self, resource: dict, pid: str, updated: float, pk: int) -> Emit:
        mapper = self.by_type.get(resource.get("resourceType", ""))
        if mapper is None:
            return iter(())
        return (item for item in mapper(resource, pid, updated, pk) if item[0] in self.tables)

    def link(self, encounter_id: str) -> str:
        return hashlib.blake2b(encounter_id.encode(), key=self.link_key, digest_size=16).hexdigest()

    # -- one method per resource type ------------------------------------------------------
    def patient(self, r: dict, pid: str, updated: float, pk: int) -> Emit:
        sex = r.get("gender") if r.get("gender") in ("female", "male", "other", "unknown") else None
        death = month(r.get("deceasedDateTime"))
        # The registered practice's own record: managed by the practice it names as GP.
        managing = (r.get("managingOrganization") or {}).get("reference")
        from_gp = managing is not None and managing in {
            g.get("reference") for g in r.get("generalPractitioner") or () if isinstance(g, dict)
        }
        # The GP record, then the most recently written, then the last stored, is the best
        # guess of who they are: one whole number, so every engine breaks ties alike.
        weight = (int(from_gp) << 62) | (int(updated) << 30) | (pk & (1 << 30) - 1)
        yield "st_patient", (pid, sex, month(r.get("birthDate")), death,
                             area_code(latest_address(r)), weight)  # fmt: skip

    def episode(self, r: dict, pid: str, updated: float, pk: int) -> Emit:
        text = " ".join(t.get("text") or "" for t in r.get("type") or () if isinstance(t, dict))
        period = r.get("period") or {}
        start, end = day(period.get("start")), day(period.get("end"))
        org = reference_id(r.get("managingOrganization"), "Organization")
        if r.get("status") == "entered-in-error":
            return
        if text.startswith("GP registration"):
            yield "st_registration", (pid, self.directory.ods(org), start, end)
        elif text.startswith("Home care package"):
            yield "st_package", (pid, start, end, "home care", None)
        elif text.startswith("Care home residency"):
            name = self.directory.name(org) or ""
            nursing = True if "nursing" in name.lower() else None
            yield "st_care_home", (pid, start, end, self.directory.ods(org), nursing, "residency")
        elif text.startswith("Care home placement"):
            yield "st_care_home", (pid, start, end, None, None, "placement")

    def condition(self, r: dict, pid: str, updated: float, pk: int) -> Emit:
        if _refuted(r):
            return
        snomed = code_in(r.get("code"), SNOMED)
        when = day(r.get("onsetDateTime")) or day(r.get("recordedDate"))
        if snomed:
            yield "st_clinical", (pid, when, snomed, None)
        icd = code_in(r.get("code"), ICD10)
        encounter = reference_id(r.get("encounter"), "Encounter")
        if icd and encounter:
            yield "st_diagnosis", (self.link(encounter), pk, icd)

    def allergy(self, r: dict, pid: str, updated: float, pk: int) -> Emit:
        if _refuted(r):
            return
        snomed = code_in(r.get("code"), SNOMED)
        if snomed:
            when = day(r.get("onsetDateTime")) or day(r.get("recordedDate"))
            yield "st_clinical", (pid, when, snomed, None)

    def medication(self, r: dict, pid: str, updated: float, pk: int) -> Emit:
        if r.get("status") in ("entered-in-error", "draft"):
            return
        code = code_in(r.get("medicationCodeableConcept"), DMD)
        if code:
            yield "st_medication", (pid, day(r.get("authoredOn")), code)

    def observation(self, r: dict, pid: str, updated: float, pk: int) -> Emit:
        if r.get("status") in ("entered-in-error", "cancelled"):
            return
        when = day(r.get("effectiveDateTime")) or day((r.get("effectivePeriod") or {}).get("start"))
        parts = [r, *(c for c in r.get("component") or () if isinstance(c, dict))]
        for part in parts:
            code = code_in(part.get("code"), LOINC)
            q = part.get("valueQuantity")
            if code and isinstance(q, dict) and isinstance(q.get("value"), int | float):
                unit = q.get("code") if q.get("system") == "http://unitsofmeasure.org" else None
                yield "st_lab", (pid, when, code, float(q["value"]), unit or q.get("unit"))

    def immunization(self, r: dict, pid: str, updated: float, pk: int) -> Emit:
        if r.get("status") != "completed":
            return
        code = code_in(r.get("vaccineCode"), CVX)
        if code:
            yield "st_vaccination", (pid, day(r.get("occurrenceDateTime")), code)

    def encounter(self, r: dict, pid: str, updated: float, pk: int) -> Emit:
        klass = (r.get("class") or {}).get("code")
        kind = {"IMP": "inpatient", "EMER": "emergency", "ACUTE": "inpatient"}.get(klass)
        if kind is None or r.get("status") in ("cancelled", "entered-in-error", "planned"):
            return
        period = r.get("period") or {}
        yield "st_encounter", (pid, self.link(r.get("id", "")), day(period.get("start")),
                               day(period.get("end")), kind)  # fmt: skip

    def procedure(self, r: dict, pid: str, updated: float, pk: int) -> Emit:
        if r.get("status") in ("entered-in-error", "not-done"):
            return
        code = code_in(r.get("code"), SNOMED)
        when = day(r.get("performedDateTime")) or day((r.get("performedPeriod") or {}).get("start"))
        if code:
            yield "st_procedure", (pid, when, code)

    def assessment(self, r: dict, pid: str, updated: float, pk: int) -> Emit:
        if r.get("status") not in ("completed", "amended"):
            return
        form = self.directory.form_name(r.get("questionnaire"))
        eligible = None
        for item in _items(r.get("item") or ()):
            if item.get("linkId") == "eligible":
                answers = item.get("answer") or [{}]
                value = answers[0].get("valueBoolean")
                eligible = value if isinstance(value, bool) else None
        yield "st_assessment", (pid, day(r.get("authored")), form, eligible)


def _refuted(r: dict) -> bool:
    status = r.get("verificationStatus") or {}
    codes = {c.get("code") for c in status.get("coding") or () if isinstance(c, dict)}
    return bool(codes & {"refuted", "entered-in-error"})


def _items(items) -> Iterator[dict]:
    for item in items:
        if isinstance(item, dict):
            yield item
            yield from _items(item.get("item") or ())


class Directory:
    """Organisations (ODS code, name) and forms (a Questionnaire's name), read
    through the gate before the people's records."""

    def __init__(self) -> None:
        self.orgs: dict[str, tuple[str | None, str | None]] = {}  # id -> (ODS code, name)
        self.forms: dict[str, str] = {}  # canonical URL -> name

    def add(self, resource: dict) -> None:
        if resource.get("resourceType") == "Organization":
            ods = next(
                (
                    i.get("value")
                    for i in resource.get("identifier") or ()
                    if isinstance(i, dict) and i.get("system") == ODS
                ),
                None,
            )
            self.orgs[resource.get("id", "")] = (ods, resource.get("name"))
        elif resource.get("resourceType") == "Questionnaire":
            url = resource.get("url")
            if url:
                self.forms[url] = resource.get("name") or resource.get("title") or url

    def ods(self, org_id: str | None) -> str | None:
        return self.orgs.get(org_id or "", (None, None))[0]

    def name(self, org_id: str | None) -> str | None:
        return self.orgs.get(org_id or "", (None, None))[1]

    def form_name(self, url: object) -> str | None:
        if not isinstance(url, str):
            return None
        base = url.split("|")[0]
        return self.forms.get(base) or base.rstrip("/").rsplit("/", 1)[-1]
