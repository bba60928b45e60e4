"""The Patient compartment (R4 CompartmentDefinition "patient"), for the supported types.

https://hl7.org/fhir/R4/compartmentdefinition-patient.html lists, per resource type, the search
parameters whose Patient references put a resource in that Patient's compartment. Extraction
fills ``IndexEntries.compartments`` with the ids of the local ``Patient/<id>`` references found
under those parameters.

Deviation from R4: ``Task`` is not in the R4 Patient compartment, but Carelight needs a
patient's tasks (tasks *for* the patient, tasks assigned to or requested by the patient) to be
reachable through patient-level access; we use ``patient`` (``Task.for`` when it is a Patient),
``owner`` and ``requester``.

Deviation from R4: ``Group`` is in the R4 Patient compartment through ``member``, but a Group
names many patients (a cohort, often chosen by diagnosis), so placing it in every member's
compartment would show the whole membership to anyone allowed to see one member's record. A
Group is in no Patient compartment here; Group-level ``$export`` reads its members directly.

Types with an empty tuple (Practitioner, PractitionerRole, Organization, Location,
Questionnaire) are never in a Patient compartment. A Patient is in its own compartment, and in
the compartment of the Patients it links to (``link``).
"""

from __future__ import annotations

PATIENT_COMPARTMENT: dict[str, tuple[str, ...]] = {
    "Patient": ("link",),
    "RelatedPerson": ("patient",),
    "Practitioner": (),
    "PractitionerRole": (),
    "Organization": (),
    "Location": (),
    "Encounter": ("patient",),
    "EpisodeOfCare": ("patient",),
    "Condition": ("patient", "asserter"),
    "Observation": ("subject", "performer"),
    "DiagnosticReport": ("subject",),
    "MedicationRequest": ("subject",),
    "MedicationStatement": ("subject",),
    "Procedure": ("patient", "performer"),
    "Immunization": ("patient",),
    "AllergyIntolerance": ("patient", "recorder", "asserter"),
    "CarePlan": ("patient", "performer"),
    "CareTeam": ("patient", "participant"),
    "Goal": ("patient",),
    "Questionnaire": (),
    "QuestionnaireResponse": ("subject", "author"),
    "ServiceRequest": ("subject", "performer"),
    "Flag": ("patient",),
    "DocumentReference": ("subject", "author"),
    "Consent": ("patient",),
    "Provenance": ("patient",),
    "Task": ("patient", "owner", "requester"),  # Carelight deviation: not in R4
    "Group": (),  # Carelight deviation: R4 has "member"; see the module docstring
}


def compartment_params(resource_type: str) -> tuple[str, ...]:
    """The parameters that place a resource of this type in a Patient compartment."""
    return PATIENT_COMPARTMENT.get(resource_type, ())
