"""The search-parameter registry: coverage of the R4 parameters Carelight needs, and sanity."""

from __future__ import annotations

import pytest

from carelight.fhir import searchparams
from carelight.fhir.compartment import PATIENT_COMPARTMENT
from carelight.fhir.fhirpath import compile_path, evaluate, paths_from_expression
from carelight.fhir.resource_types import SUPPORTED_TYPES
from carelight.fhir.searchparams import STORE_HANDLED, TABLES, SearchParam, get, params_for

COMMON = {"_id", "_lastUpdated", "_tag", "_security", "_profile", "_source"}
ADDRESS = {"address", "address-city", "address-country", "address-postalcode", "address-state"}
TELECOM = {"phone", "email", "telecom"}

# What each type must offer (R4 names, where R4 defines them).
REQUIRED: dict[str, set[str]] = {
    "Patient": {
        "identifier",
        "name",
        "family",
        "given",
        "birthdate",
        "gender",
        "death-date",
        "deceased",
        "active",
        "general-practitioner",
        "organization",
        "link",
    }
    | ADDRESS
    | TELECOM,
    "RelatedPerson": {"identifier", "patient", "name", "relationship", "birthdate", "gender"}
    | ADDRESS
    | TELECOM,
    "Practitioner": {"identifier", "name", "family", "given", "active", "gender"}
    | ADDRESS
    | TELECOM,
    "PractitionerRole": {
        "practitioner",
        "organization",
        "role",
        "specialty",
        "location",
        "service",
        "active",
        "date",
        "identifier",
    }
    | TELECOM,
    "Organization": {"name", "identifier", "type", "partof", "active"} | ADDRESS,
    "Location": {
        "name",
        "identifier",
        "organization",
        "type",
        "status",
        "operational-status",
        "partof",
    }
    | ADDRESS,
    "Encounter": {
        "identifier",
        "patient",
        "subject",
        "class",
        "type",
        "date",
        "status",
        "participant",
        "practitioner",
        "reason-code",
        "service-provider",
        "episode-of-care",
        "location",
    },
    "EpisodeOfCare": {
        "type",
        "status",
        "date",
        "organization",
        "care-manager",
        "condition",
        "incoming-referral",
        "patient",
        "identifier",
    },
    "Condition": {
        "patient",
        "subject",
        "code",
        "category",
        "clinical-status",
        "verification-status",
        "onset-date",
        "abatement-date",
        "recorded-date",
        "severity",
        "body-site",
        "asserter",
        "evidence",
        "encounter",
        "identifier",
    },
    "Observation": {
        "patient",
        "subject",
        "code",
        "category",
        "date",
        "status",
        "encounter",
        "performer",
        "value-quantity",
        "value-concept",
        "value-string",
        "value-date",
        "combo-code",
        "based-on",
        "derived-from",
        "has-member",
        "part-of",
        "specimen",
        "device",
        "focus",
        "method",
        "data-absent-reason",
        "identifier",
    },
    "DiagnosticReport": {
        "patient",
        "subject",
        "code",
        "category",
        "date",
        "issued",
        "result",
        "performer",
        "results-interpreter",
        "conclusion",
        "based-on",
        "status",
        "encounter",
        "media",
        "specimen",
        "identifier",
    },
    "MedicationRequest": {
        "patient",
        "subject",
        "medication",
        "code",
        "authoredon",
        "intent",
        "requester",
        "status",
        "encounter",
        "category",
        "identifier",
    },
    "MedicationStatement": {
        "patient",
        "subject",
        "medication",
        "code",
        "effective",
        "status",
        "category",
        "identifier",
    },
    "Procedure": {
        "patient",
        "subject",
        "code",
        "date",
        "performer",
        "location",
        "reason-code",
        "reason-reference",
        "based-on",
        "part-of",
        "category",
        "status",
        "encounter",
        "identifier",
    },
    "Immunization": {
        "patient",
        "vaccine-code",
        "date",
        "status",
        "lot-number",
        "location",
        "performer",
        "identifier",
    },
    "AllergyIntolerance": {
        "patient",
        "clinical-status",
        "verification-status",
        "code",
        "criticality",
        "type",
        "category",
        "recorder",
        "asserter",
        "onset",
        "date",
        "identifier",
    },
    "CarePlan": {
        "patient",
        "subject",
        "activity-code",
        "care-team",
        "goal",
        "intent",
        "date",
        "based-on",
        "instantiates-canonical",
        "category",
        "status",
        "encounter",
        "identifier",
    },
    "CareTeam": {"patient", "subject", "participant", "category", "status", "date", "identifier"},
    "Goal": {
        "patient",
        "subject",
        "lifecycle-status",
        "achievement-status",
        "target-date",
        "start-date",
        "category",
        "identifier",
    },
    "Questionnaire": {
        "url",
        "name",
        "title",
        "status",
        "version",
        "code",
        "context",
        "date",
        "identifier",
    },
    "QuestionnaireResponse": {
        "patient",
        "subject",
        "questionnaire",
        "author",
        "authored",
        "source",
        "based-on",
        "part-of",
        "status",
        "encounter",
        "identifier",
    },
    "ServiceRequest": {
        "patient",
        "subject",
        "requester",
        "performer",
        "authored",
        "occurrence",
        "code",
        "category",
        "intent",
        "priority",
        "status",
        "based-on",
        "replaces",
        "requisition",
        "specimen",
        "encounter",
        "identifier",
    },
    "Flag": {"patient", "subject", "author", "date", "encounter", "identifier", "status"},
    "Group": {
        "actual",
        "characteristic",
        "code",
        "exclude",
        "identifier",
        "managing-entity",
        "member",
        "type",
        "value",
    },
    "DocumentReference": {
        "patient",
        "subject",
        "type",
        "category",
        "date",
        "author",
        "custodian",
        "relatesto",
        "period",
        "contenttype",
        "description",
        "status",
        "encounter",
        "identifier",
    },
    "Consent": {
        "patient",
        "scope",
        "category",
        "action",
        "actor",
        "period",
        "status",
        "data",
        "source-reference",
        "consentor",
        "date",
        "identifier",
    },
    "Provenance": {
        "patient",
        "target",
        "agent",
        "recorded",
        "entity",
        "signature-type",
        "location",
        "when",
    },
    "Task": {
        "patient",
        "subject",
        "owner",
        "requester",
        "business-status",
        "focus",
        "authored-on",
        "modified",
        "based-on",
        "part-of",
        "intent",
        "priority",
        "code",
        "period",
        "status",
        "identifier",
    },
}


def test_every_supported_type_has_a_table() -> None:
    assert set(TABLES) == set(SUPPORTED_TYPES)
    assert set(REQUIRED) == set(SUPPORTED_TYPES)


@pytest.mark.parametrize("resource_type", SUPPORTED_TYPES)
def test_required_params_present(resource_type: str) -> None:
    params = params_for(resource_type)
    missing = (REQUIRED[resource_type] | COMMON) - set(params)
    assert not missing, f"{resource_type} lacks {sorted(missing)}"


@pytest.mark.parametrize("resource_type", SUPPORTED_TYPES)
def test_names_unique_and_rows_well_formed(resource_type: str) -> None:
    names = [row[0] for row in TABLES[resource_type]]
    assert len(names) == len(set(names)), "duplicate parameter names"
    assert not set(names) & COMMON, "a type table redeclares a common parameter"
    for name, param in params_for(resource_type).items():
        assert isinstance(param, SearchParam)
        assert param.name == name
        assert param.type in searchparams.PARAM_TYPES
        assert param.base in (resource_type, "Resource")
        assert param.expression
        if param.type == "reference":
            assert all(t[0].isupper() for t in param.targets)
        else:
            assert param.targets == ()
        if param.type == "composite" or name in STORE_HANDLED:
            assert param.paths == ()
        else:
            assert param.paths, f"{resource_type}.{name} has nothing to extract"


@pytest.mark.parametrize("resource_type", SUPPORTED_TYPES)
def test_every_path_evaluates_on_an_empty_resource(resource_type: str) -> None:
    empty = {"resourceType": resource_type}
    for param in params_for(resource_type).values():
        for path in param.paths:
            root = path.split(".", 1)[0]
            assert root in (resource_type, "Resource"), path
            compiled = compile_path(path, param.type)
            result = evaluate(empty, compiled)
            if compiled.always:
                assert result == [False]
            else:
                assert result == []


@pytest.mark.parametrize(
    ("resource_type", "name", "type_", "targets"),
    [
        ("Patient", "birthdate", "date", ()),
        ("Patient", "gender", "token", ()),
        ("Patient", "family", "string", ()),
        ("Patient", "address-postalcode", "string", ()),
        ("Patient", "phone", "token", ()),
        ("Patient", "deceased", "token", ()),
        (
            "Patient",
            "general-practitioner",
            "reference",
            ("Organization", "Practitioner", "PractitionerRole"),
        ),
        ("Patient", "link", "reference", ("Patient", "RelatedPerson")),
        ("Observation", "value-quantity", "quantity", ()),
        ("Observation", "subject", "reference", ("Group", "Device", "Patient", "Location")),
        ("Observation", "patient", "reference", ("Patient",)),
        ("Observation", "code-value-quantity", "composite", ()),
        ("Condition", "onset-date", "date", ()),
        ("MedicationRequest", "medication", "reference", ("Medication",)),
        ("MedicationRequest", "code", "token", ()),
        ("QuestionnaireResponse", "questionnaire", "reference", ("Questionnaire",)),
        ("Questionnaire", "url", "uri", ()),
        ("Immunization", "lot-number", "string", ()),
        ("Encounter", "length", "quantity", ()),
        ("Task", "subject", "reference", ()),
        ("Organization", "partof", "reference", ("Organization",)),
        ("Consent", "source-reference", "reference", None),
        ("_any_", "_lastUpdated", "date", ()),
        ("_any_", "_profile", "uri", ()),
        ("_any_", "_tag", "token", ()),
    ],
)
def test_types_and_targets(
    resource_type: str, name: str, type_: str, targets: tuple[str, ...] | None
) -> None:
    rt = "Patient" if resource_type == "_any_" else resource_type
    p = get(rt, name)
    assert p is not None
    assert p.type == type_
    if targets is not None:
        assert p.targets == targets


def test_expressions_and_paths_sample() -> None:
    assert get("Patient", "birthdate").expression == "Patient.birthDate"  # type: ignore[union-attr]
    assert get("Observation", "date").paths == ("Observation.effective[x]",)  # type: ignore[union-attr]
    assert get("Observation", "value-concept").paths == (  # type: ignore[union-attr]
        "Observation.valueCodeableConcept",
    )
    assert get("Organization", "name").paths == (  # type: ignore[union-attr]
        "Organization.name",
        "Organization.alias",
    )
    assert get("Patient", "phone").paths == (  # type: ignore[union-attr]
        "Patient.telecom.where(system='phone')",
    )
    assert get("Encounter", "patient").paths == (  # type: ignore[union-attr]
        "Encounter.subject.where(resolve() is Patient)",
    )


def test_get_and_params_for() -> None:
    assert get("Patient", "nope") is None
    assert get("Nope", "name") is None
    assert get("Nope", "_id") is not None  # common parameters are known for any type
    assert set(params_for("Nope")) == COMMON
    p = params_for("Patient")
    p.clear()  # a fresh dict: callers may not corrupt the registry
    assert params_for("Patient")
    assert get("Patient", "_id").store_handled  # type: ignore[union-attr]
    assert get("Patient", "_lastUpdated").store_handled  # type: ignore[union-attr]
    assert not get("Patient", "_tag").store_handled  # type: ignore[union-attr]


@pytest.mark.parametrize("resource_type", SUPPORTED_TYPES)
def test_compartment_params_are_patient_references(resource_type: str) -> None:
    for name in PATIENT_COMPARTMENT[resource_type]:
        p = get(resource_type, name)
        assert p is not None, f"{resource_type}.{name}"
        assert p.type == "reference"
        assert not p.targets or "Patient" in p.targets


def test_paths_from_expression() -> None:
    assert paths_from_expression("(Observation.value as Quantity)") == (
        "Observation.valueQuantity",
    )
    assert paths_from_expression("Condition.onset.as(dateTime) | Condition.onset.as(Period)") == (
        "Condition.onsetDateTime",
        "Condition.onsetPeriod",
    )
    assert paths_from_expression("Patient.telecom.where(system='email')") == (
        "Patient.telecom.where(system='email')",
    )
    with pytest.raises(ValueError):
        paths_from_expression("Patient.deceased.exists() and Patient.deceased != false")


def test_compile_path_rejects_unknown_syntax() -> None:
    for bad in ("patient.name", "Patient", "Patient.name.first()", "Patient.name | x"):
        with pytest.raises(ValueError):
            compile_path(bad, "string")
