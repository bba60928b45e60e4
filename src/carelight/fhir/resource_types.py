"""The resource types the data layer accepts (R4, compatible with UK Core)."""

from __future__ import annotations

SUPPORTED_TYPES: tuple[str, ...] = (
    "Patient",
    "RelatedPerson",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Encounter",
    "EpisodeOfCare",
    "Condition",
    "Observation",
    "DiagnosticReport",
    "MedicationRequest",
    "MedicationStatement",
    "Procedure",
    "Immunization",
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Goal",
    "Questionnaire",
    "QuestionnaireResponse",
    "ServiceRequest",
    "Flag",
    "DocumentReference",
    "Consent",
    "Provenance",
    "Task",
    "Group",  # cohorts: Group-level bulk export ($export) reads Group.member
)

SUPPORTED = frozenset(SUPPORTED_TYPES)

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"


def is_supported(resource_type: str) -> bool:
    return resource_type in SUPPORTED
