"""The curated code lists in ``codelists/`` and the code systems the synthetic data uses.

Every coded value the generator writes comes from a CSV here (``key,system,code,display``), so
the codes can be reviewed in one place; docs/synth.md says where each list came from. The
Coding and CodeableConcept dicts are built once and shared between resources: treat them as
read-only.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
DMD = "https://dmd.nhs.uk"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
CVX = "http://hl7.org/fhir/sid/cvx"
NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
SDS_USER = "https://fhir.nhs.uk/Id/sds-user-id"
UKCORE = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-"
NHS_VERIFICATION_EXT = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
)
NHS_VERIFICATION = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"

LISTS = (
    "conditions",
    "icd10",
    "medicines",
    "observations",
    "vaccines",
    "allergies",
    "procedures",
    "care",
)


@dataclass(frozen=True, slots=True)
class Code:
    key: str
    system: str
    code: str
    display: str
    coding: dict = field(compare=False, repr=False)
    concept: dict = field(compare=False, repr=False)  # {"coding": [coding], "text": display}


def code(system: str, value: str, display: str, key: str = "") -> Code:
    coding = {"system": system, "code": value, "display": display}
    return Code(key, system, value, display, coding, {"coding": [coding], "text": display})


def hl7(system: str, value: str, display: str) -> Code:
    """A code from an HL7 terminology.hl7.org code system, e.g. hl7("v3-ActCode", "AMB", ...)."""
    return code(TERMINOLOGY + system, value, display)


@cache
def codelist(name: str) -> dict[str, Code]:
    """One code list, keyed by its ``key`` column."""
    text = resources.files(__package__).joinpath(f"codelists/{name}.csv").read_text("utf-8")
    rows = csv.DictReader(text.splitlines())
    return {
        row["key"]: code(row["system"], row["code"], row["display"], row["key"]) for row in rows
    }


def text_concept(text: str) -> dict:
    """A CodeableConcept with text only: for local categories that have no standard code."""
    return {"text": text}
