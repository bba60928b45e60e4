"""The research data model: the tables of the secure data environment's research store.

This is the contract between the extract (which fills the tables from the data layer), the
query language (whose frames are these tables), the dummy-data generator and researchers' code.
It holds no direct identifiers: a person is a per-project pseudonym (``patient_id``), dates of
birth and death are kept to the month (the first of the month), and where a person lives is a
small-area code, never an address or postcode.

Each table is either *patient-level* (one row per person: ``patients``) or *event-level* (any
number of rows per person). Every table has ``patient_id``. Column types are the five the query
language knows: ``str``, ``int``, ``float``, ``date``, ``bool``; any value may be missing (NULL).

The documentation for researchers is ``docs/research-data-model.md``; keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ColumnType = Literal["str", "int", "float", "date", "bool"]
TableKind = Literal["patient", "event"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    description: str


@dataclass(frozen=True)
class Table:
    name: str
    kind: TableKind
    description: str
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


PATIENT_ID = Column("patient_id", "str", "The person's pseudonym for this project (a keyed hash)")


def _table(name: str, kind: TableKind, description: str, *columns: Column) -> Table:
    return Table(name, kind, description, (PATIENT_ID, *columns))


TABLES: tuple[Table, ...] = (
    _table(
        "patients",
        "patient",
        "One row per person who has not opted out of research.",
        Column("sex", "str", "female, male, other or unknown (FHIR administrative gender)"),
        Column("date_of_birth", "date", "Year and month of birth: always the first of the month"),
        Column(
            "date_of_death",
            "date",
            "Year and month of death, the first of the month; NULL if alive",
        ),
        Column("area_code", "str", "Small-area code of the latest address (never the postcode)"),
    ),
    _table(
        "practice_registrations",
        "event",
        "Registrations with a GP practice, one row per period.",
        Column("practice_code", "str", "The practice's ODS-style code"),
        Column("start_date", "date", "First day of the registration"),
        Column("end_date", "date", "Last day of the registration; NULL if current"),
    ),
    _table(
        "clinical_events",
        "event",
        "Coded clinical events: diagnoses, problems, allergies and findings (SNOMED CT).",
        Column("date", "date", "When it was recorded (onset where known)"),
        Column("snomedct_code", "str", "SNOMED CT concept id"),
        Column("numeric_value", "float", "A value recorded with the code, if any"),
    ),
    _table(
        "medications",
        "event",
        "Medicines prescribed or issued (dm+d).",
        Column("date", "date", "When it was prescribed"),
        Column("dmd_code", "str", "dm+d code of the product"),
    ),
    _table(
        "lab_results",
        "event",
        "Laboratory results and measurements (LOINC), e.g. HbA1c, eGFR, cholesterol, BMI.",
        Column("date", "date", "When the sample was taken or the measurement made"),
        Column("code", "str", "LOINC code"),
        Column("value", "float", "The numeric result"),
        Column("unit", "str", "UCUM unit of the value"),
    ),
    _table(
        "vaccinations",
        "event",
        "Immunisations given.",
        Column("date", "date", "When it was given"),
        Column("vaccine_code", "str", "Vaccine code (CVX)"),
    ),
    _table(
        "admissions",
        "event",
        "Hospital admissions and A&E attendances, with ICD-10 diagnoses.",
        Column("admission_date", "date", "Start of the stay or attendance"),
        Column("discharge_date", "date", "End of the stay; NULL if not yet discharged"),
        Column("admission_class", "str", "inpatient or emergency (A&E attendance)"),
        Column("primary_diagnosis", "str", "ICD-10 code of the primary diagnosis"),
        Column("all_diagnoses", "str", "ICD-10 codes of every diagnosis, separated by '||'"),
    ),
    _table(
        "procedures",
        "event",
        "Procedures performed (SNOMED CT).",
        Column("date", "date", "When it was performed"),
        Column("snomedct_code", "str", "SNOMED CT concept id"),
    ),
    _table(
        "social_care_assessments",
        "event",
        "Adult social care needs assessments.",
        Column("date", "date", "When the assessment was completed"),
        Column("assessment_type", "str", "Which assessment (the Questionnaire's name)"),
        Column("eligible", "bool", "Whether eligible needs were found, if recorded"),
    ),
    _table(
        "care_packages",
        "event",
        "Home care packages arranged by adult social care.",
        Column("start_date", "date", "First day of the package"),
        Column("end_date", "date", "Last day; NULL if current"),
        Column("package_type", "str", "Kind of package, e.g. home care"),
        Column("hours_per_week", "float", "Planned hours of care per week, if recorded"),
    ),
    _table(
        "care_home_stays",
        "event",
        "Stays in a care home.",
        Column("start_date", "date", "First day of the stay"),
        Column("end_date", "date", "Last day; NULL if current"),
        Column("care_home_code", "str", "The care home's ODS-style code"),
        Column("nursing", "bool", "Whether it is a nursing home placement, if recorded"),
    ),
)

BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}


def table(name: str) -> Table:
    try:
        return BY_NAME[name]
    except KeyError:
        known = ", ".join(BY_NAME)
        raise KeyError(f"no research table {name!r}; the tables are: {known}") from None
