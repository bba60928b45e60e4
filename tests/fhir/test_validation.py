"""Write-time validation: valid resources pass untouched, each kind of fault is a 422 naming its path.

Every test runs twice: with both passes (``thorough=True``, REST writes) and with the walk alone
(``thorough=False``, the bulk loader), which must give the same issues.
"""

from __future__ import annotations

import copy
import functools

import orjson
import pytest

from carelight.fhir import validation
from carelight.fhir.bindings import R4_RESOURCE_TYPES, REQUIRED_BINDINGS
from carelight.fhir.errors import FhirError
from carelight.fhir.resource_types import NHS_NUMBER_SYSTEM, SUPPORTED_TYPES
from carelight.fhir.validation import MAX_ISSUES, validate_resource

NHS_OK = "9434765919"  # check digit verified by hand: 299 % 11 = 2, 11 - 2 = 9


@pytest.fixture(autouse=True, params=[True, False], ids=["thorough", "walk-only"])
def thorough(request, monkeypatch) -> bool:
    """Run the test with validate_resource(thorough=True), then with thorough=False."""
    mode = functools.partial(validation.validate_resource, thorough=request.param)
    monkeypatch.setitem(globals(), "validate_resource", mode)
    return request.param


def patient(**extra) -> dict:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": "1", "lastUpdated": "2026-11-24T10:00:00Z"},
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">Jane Smith</div>',
        },
        "identifier": [
            {"use": "official", "system": NHS_NUMBER_SYSTEM, "value": NHS_OK},
            {"use": "usual", "system": "https://example.org/mrn", "value": "MRN1"},
        ],
        "active": True,
        "name": [{"use": "official", "family": "Smith", "given": ["Jane", "Anne"]}],
        "telecom": [{"system": "phone", "value": "01632 960000", "use": "home"}],
        "gender": "female",
        "birthDate": "1970-01-25",
        "address": [{"use": "home", "type": "physical", "line": ["1 High St"], "city": "Leeds"}],
        "generalPractitioner": [{"reference": "Organization/gp1"}],
        "managingOrganization": {"reference": "Organization/org1"},
        **extra,
    }


def observation(**extra) -> dict:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-24T09:30:00+00:00",
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org"},
        "referenceRange": [{"low": {"value": 60}, "high": {"value": 100.5}}],
        **extra,
    }


VALID = [
    patient(),
    observation(),
    {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"text": "Type 2 diabetes"},
        "subject": {"reference": "Patient/p1"},
        "onsetDateTime": "2015-06",
    },
    {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2026-11-24T09:00:00Z"},
    },
    {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Metformin 500mg tablets"},
        "subject": {"reference": "Patient/p1"},
        "dosageInstruction": [
            {"timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d", "when": ["C"]}}}
        ],
    },
    {
        "resourceType": "AllergyIntolerance",
        "type": "allergy",
        "category": ["medication", "food"],
        "criticality": "high",
        "patient": {"reference": "Patient/p1"},
        "reaction": [{"manifestation": [{"text": "Rash"}], "severity": "mild"}],
    },
    {
        "resourceType": "Questionnaire",
        "status": "active",
        "subjectType": ["Patient"],
        "item": [
            {
                "linkId": "1",
                "type": "group",
                "item": [{"linkId": "1.1", "type": "boolean", "text": "Smoker?"}],
            }
        ],
    },
    {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "for": {"reference": "Patient/p1"},
        "owner": {"reference": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520"},
    },
    {
        "resourceType": "Organization",
        "id": "org1",
        "name": "High St Surgery",
        "contained": [
            {
                "resourceType": "Endpoint",
                "id": "ep",
                "status": "active",
                "connectionType": {"code": "hl7-fhir-rest"},
                "payloadType": [{"text": "x"}],
                "address": "https://example.org/fhir",
            }
        ],
        "endpoint": [{"reference": "#ep"}],
        "partOf": {"reference": "https://example.org/fhir/Organization/parent/_history/2"},
    },
]


def issues_of(resource: object, status: int = 422, **kwargs) -> list:
    with pytest.raises(FhirError) as info:
        validate_resource(resource, **kwargs)
    assert info.value.status == status, info.value.outcome()
    return info.value.issues


def expressions(resource: object, **kwargs) -> list[str | None]:
    return [i.expression for i in issues_of(resource, **kwargs)]


# -- valid resources ---------------------------------------------------------------------------


@pytest.mark.parametrize("resource", VALID, ids=[r["resourceType"] for r in VALID])
def test_valid_resources_pass_and_are_returned_unchanged(resource):
    before = copy.deepcopy(resource)
    assert validate_resource(resource, expected_type=resource["resourceType"]) is resource
    assert resource == before


def test_invalid_resource_is_not_modified_either():
    resource = patient(gender="bogus", birthDate=12, foo=1)
    before = copy.deepcopy(resource)
    issues_of(resource)
    assert resource == before


def test_null_in_primitive_array_is_allowed_when_lined_up_with_extensions():
    ext = {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}
    ok = patient(name=[{"family": "Smith", "given": ["Jane", None], "_given": [None, ext]}])
    assert validate_resource(ok) is ok
    bad = patient(name=[{"family": "Smith", "given": ["Jane", None]}])
    assert expressions(bad) == ["Patient.name[0].given[1]"]


def test_primitive_extension_stands_in_for_a_required_value():
    absent = {
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                "valueCode": "unknown",
            }
        ]
    }
    obs = observation()
    del obs["status"]
    obs["_status"] = absent
    assert validate_resource(obs) is obs


# -- structure: unknown elements, JSON types, cardinality, formats --------------------------------


def test_unknown_element():
    [issue] = issues_of(patient(favouriteColour="blue"))
    assert (issue.code, issue.expression) == ("structure", "Patient.favouriteColour")


def test_unknown_element_nested_under_an_aliased_element():
    # Encounter.class is class_fhir in the model; the path must use the JSON name.
    enc = copy.deepcopy(VALID[3])
    enc["class"]["colour"] = "red"
    assert expressions(enc) == ["Encounter.class.colour"]


@pytest.mark.parametrize(
    ("element", "value", "path"),
    [
        ("birthDate", 12, "Patient.birthDate"),
        ("active", "yes", "Patient.active"),  # fhir.resources alone would accept this
        ("multipleBirthInteger", "2", "Patient.multipleBirthInteger"),
        ("multipleBirthInteger", 2.5, "Patient.multipleBirthInteger"),
        ("gender", 1, "Patient.gender"),
    ],
)
def test_wrong_json_type_is_one_issue(element, value, path):
    [issue] = issues_of(patient(**{element: value}))
    assert (issue.code, issue.expression) == ("structure", path)
    assert "JSON" in issue.diagnostics


def test_decimal_given_as_string():
    obs = observation(valueQuantity={"value": "72"})
    assert expressions(obs) == ["Observation.valueQuantity.value"]


@pytest.mark.parametrize("value", ["01/02/1970", "1970-13-01", "1970-02-30", "1970-1-1"])
def test_bad_date_format(value):
    [issue] = issues_of(patient(birthDate=value))
    assert (issue.code, issue.expression) == ("value", "Patient.birthDate")
    assert "YYYY-MM-DD" in issue.diagnostics


def test_bad_instant_and_datetime_formats():
    obs = observation(effectiveDateTime="2026-11-24T09:30:00", issued="2026-11-24")
    assert sorted(expressions(obs)) == ["Observation.effectiveDateTime", "Observation.issued"]


def test_array_where_single_value_expected():
    resource = patient(name=[{"family": ["Smith"]}], gender=["female"])
    assert sorted(expressions(resource)) == ["Patient.gender", "Patient.name[0].family"]


def test_single_value_where_array_expected():
    [issue] = issues_of(patient(name={"family": "Smith"}))
    assert (issue.code, issue.expression) == ("structure", "Patient.name")
    assert "array" in issue.diagnostics


def test_wrong_json_type_in_a_primitive_array():
    assert expressions(patient(name=[{"given": ["Jane", 3]}])) == ["Patient.name[0].given[1]"]


def test_object_where_primitive_expected_and_primitive_where_object_expected():
    obs = observation(status={"code": "final"}, code="8867-4")
    assert sorted(expressions(obs)) == ["Observation.code", "Observation.status"]


def test_empty_and_null_values_are_rejected():
    resource = patient(name=[], telecom=[{}], address=[{"line": [""]}], gender=None)
    assert sorted(expressions(resource)) == [
        "Patient.address[0].line[0]",
        "Patient.gender",
        "Patient.name",
        "Patient.telecom[0]",
    ]


def test_null_entry_in_complex_array():
    assert expressions(patient(name=[None])) == ["Patient.name[0]"]


def test_unknown_element_is_named_in_the_message():
    [issue] = issues_of(patient(name=[{"family": "Smith", "colour": "red"}]))
    assert issue.expression == "Patient.name[0].colour"
    assert issue.diagnostics.startswith("Unknown element 'colour'")


@pytest.mark.parametrize(
    ("extra", "path", "hint"),
    [
        # resourceType only at a resource root (here: in a HumanName, even if it says so).
        (
            {"name": [{"family": "Smith", "resourceType": "HumanName"}]},
            "Patient.name[0].resourceType",
            "only a resource",
        ),
        (
            {"name": [{"family": "Smith", "resourceType": "Patient"}]},
            "Patient.name[0].resourceType",
            "only a resource",
        ),
        ({"resource_type": "Patient"}, "Patient.resource_type", ""),
        (
            {"name": [{"family": "Smith", "resource_type": "Other"}]},
            "Patient.name[0].resource_type",
            "",
        ),
        # "_x" only beside a primitive x.
        ({"_name": [{"id": "n1"}]}, "Patient._name", "only a primitive"),
        ({"_colour": {"id": "c1"}}, "Patient._colour", ""),
        (
            {"_id": {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}},
            "Patient._id",
            "",
        ),
        (
            {"extension": [{"url": "http://example.org/x", "_url": {"id": "u"}}]},
            "Patient.extension[0]._url",
            "",
        ),
        # Inside a primitive's extension sibling.
        ({"_birthDate": {"id": "b", "colour": "red"}}, "Patient._birthDate.colour", ""),
    ],
)
def test_misplaced_elements_are_unknown(extra, path, hint):
    [issue] = issues_of(patient(**extra))
    assert (issue.code, issue.expression) == ("structure", path)
    assert hint in issue.diagnostics


def test_unknown_element_in_a_contained_resource():
    resource = patient(contained=[{"resourceType": "Organization", "id": "o", "colour": "red"}])
    assert expressions(resource) == ["Patient.contained[0].colour"]


@pytest.mark.parametrize("comments", ["a comment", "", ["one", "two"], [], None], ids=repr)
def test_fhir_comments_are_accepted_as_fhir_resources_accepts_them(comments):
    resource = patient(fhir_comments=comments, name=[{"family": "S", "fhir_comments": comments}])
    assert validate_resource(resource) is resource


@pytest.mark.parametrize("comments", [3, {"a": "b"}, ["a", 1], [None], "\ud800"], ids=repr)
def test_fhir_comments_that_are_not_strings_are_rejected(comments):
    assert expressions(patient(fhir_comments=comments)) == ["Patient.fhir_comments"]


def test_a_primitive_extension_sibling_must_say_something():
    assert expressions(patient(_birthDate={"fhir_comments": None})) == ["Patient._birthDate"]
    assert expressions(patient(_birthDate={})) == ["Patient._birthDate"]
    ok = patient(_birthDate={"id": "b1"})
    assert validate_resource(ok) is ok


def test_an_extension_stands_in_for_a_required_primitive_only_with_extensions():
    obs = observation(_status={"id": "s1"})
    del obs["status"]
    assert expressions(obs) == ["Observation.status"]


def test_a_required_choice_needs_a_value_not_only_its_extension():
    # R4 would take a data-absent-reason here; fhir.resources does not, and the walk agrees.
    absent = {"extension": [{"url": "http://example.org/absent", "valueCode": "unknown"}]}
    questionnaire = copy.deepcopy(VALID[6])
    questionnaire["item"][0]["enableWhen"] = [
        {"question": "1.1", "operator": "exists", "_answerBoolean": absent}
    ]
    assert expressions(questionnaire) == ["Questionnaire.item[0].enableWhen[0].answer[x]"]


@pytest.mark.parametrize(
    "resource",
    [
        patient(**{"colour\ud800": 1}),
        patient(name=[{"family": "Smith", "resourceType": "a\ud800b"}]),
        patient(name=[{"family": "a\ud800b"}]),
        {"resourceType": "Pat\ud800"},
    ],
    ids=["key", "nested-resourceType", "value", "resourceType"],
)
def test_lone_surrogates_give_an_outcome_that_can_be_sent(resource):
    """json.loads lets "\\ud800" through (orjson, used by the API, does not). Pass 2 cannot
    even render its messages for such input; the issues must still encode as UTF-8 JSON."""
    with pytest.raises(FhirError) as info:
        validate_resource(resource)
    orjson.dumps(info.value.outcome())


# -- primitive formats (http://hl7.org/fhir/R4/datatypes.html) ------------------------------------


def extension(value_type: str, value: object) -> dict:
    return patient(extension=[{"url": "http://example.org/x", f"value{value_type}": value}])


GOOD_VALUES = [
    ("Date", "2024"),
    ("Date", "2024-02"),
    ("Date", "2024-02-29"),
    ("Date", "2000-02-29"),
    ("Date", "0001-01-01"),
    ("DateTime", "2024-02-29T23:59:59Z"),
    ("DateTime", "2016-12-31T23:59:60Z"),  # leap second
    ("DateTime", "2024-06-01T10:00:00.123456789-13:59"),
    ("DateTime", "2024-06-01T10:00:00+14:00"),
    ("Instant", "2024-06-01T10:00:00.5Z"),
    ("Time", "23:59:60"),
    ("Time", "00:00:00.000"),
    ("Code", "a b"),
    ("Code", "a\tb"),
    ("Code", "\u00e9t\u00e9"),
    ("Id", "A-z.0" + "x" * 59),
    ("Uri", "urn:x:a|b#c"),
    ("Url", "mailto:x@example.org"),
    ("Canonical", "http://example.org/fhir/ValueSet/x|1.0"),
    ("Oid", "urn:oid:2.16.840.1.113883"),
    ("Uuid", "urn:uuid:c757873d-ec9a-4326-a141-556f43239520"),
    ("Integer", -(2**31)),
    ("Integer", 2**31 - 1),
    ("UnsignedInt", 0),
    ("PositiveInt", 1),
    ("Decimal", 1e-7),
    ("Decimal", 10**40),
    ("Decimal", -0.0),
    ("Base64Binary", "aGVsbG8="),
    ("Base64Binary", "aGVs bG8=\n"),
    ("Base64Binary", "a/b+"),
    ("String", "   "),
    ("String", "a\u00a0"),
    ("String", "tab\tand\x01control"),
    ("Markdown", "\u00a0"),
]


@pytest.mark.parametrize(("value_type", "value"), GOOD_VALUES, ids=repr)
def test_good_primitive_values(value_type, value):
    resource = extension(value_type, value)
    assert validate_resource(resource) is resource


BAD_VALUES = [
    ("Date", "1950-02-30"),  # no such day
    ("Date", "1900-02-29"),  # not a leap year
    ("Date", "2023-04-31"),
    ("Date", "0000"),
    ("Date", "2024-06-01T10:00:00Z"),
    ("DateTime", "2023-02-29T10:00:00Z"),
    ("DateTime", "2024-06-01T10:00:00"),  # a time needs a zone
    ("DateTime", "2024-06-01T10:00Z"),  # and seconds
    ("DateTime", "2024-06-01T24:00:00Z"),
    ("DateTime", "2024-06-01T10:00:00+14:30"),
    ("DateTime", "2024-06-01T10:00:00z"),
    ("Instant", "2024-06-01"),
    ("Instant", "2024-06-31T10:00:00Z"),
    ("Time", "24:00:00"),
    ("Time", "10:00"),
    ("Time", "10:00:00Z"),
    ("Code", " a"),
    ("Code", "a "),
    ("Code", "a  b"),
    ("Code", "a\u2028\u2028b"),
    ("Id", "a_b"),
    ("Id", "x" * 65),
    ("Uri", "http://example.org/a b"),
    ("Url", "a b"),
    ("Canonical", "http://example.org/x\n"),
    ("Oid", "urn:oid:3.1"),
    ("Oid", "1.2.3"),
    ("Uuid", "c757873d-ec9a-4326-a141-556f43239520"),  # no urn:uuid:
    ("Uuid", "urn:uuid:C757873D-EC9A-4326-A141-556F43239520"),  # upper case
    ("Uuid", "urn:uuid:c757873d-ec9a-1326-a141-556f43239520"),  # version 1: fhir.resources
    ("Integer", 2**31),
    ("Integer", -(2**31) - 1),
    ("UnsignedInt", -1),
    ("PositiveInt", 0),
    ("Decimal", float("nan")),
    ("Decimal", float("inf")),
    ("Base64Binary", "aGVsbG8"),
    ("Base64Binary", "!!!!"),
    ("Base64Binary", "ab==cd=="),
    ("Base64Binary", "aG Vs"),
    ("String", "\u00a0"),  # only a no-break space: fhir.resources refuses it, so do we
    ("String", "a\ud800b"),  # a lone surrogate is not text
    ("String", "x" * (1024 * 1024 + 1)),
    ("Markdown", "\udfff"),
]


@pytest.mark.parametrize(("value_type", "value"), BAD_VALUES, ids=lambda v: repr(v)[:40])
def test_bad_primitive_values(value_type, value):
    [issue] = issues_of(extension(value_type, value))
    assert (issue.code, issue.expression) == ("value", f"Patient.extension[0].value{value_type}")


def test_format_problems_name_the_type_and_the_rule():
    [issue] = issues_of(extension("Instant", "2024-06-01"))
    assert issue.diagnostics.startswith("Not a valid FHIR instant (")
    assert "time zone" in issue.diagnostics


# -- the two modes ---------------------------------------------------------------------------------


def test_walk_only_does_not_run_fhir_resources(thorough, monkeypatch):
    model = validation.get_fhir_model_class("Patient")

    def refuse(*args, **kwargs):
        raise AssertionError("model_validate called")

    monkeypatch.setattr(model, "model_validate", refuse)
    resource = patient()
    if thorough:
        with pytest.raises(AssertionError, match="model_validate called"):
            validate_resource(resource)
    else:
        assert validate_resource(resource) is resource


# -- required elements and choice types ----------------------------------------------------------


def test_missing_required_elements():
    obs = observation()
    del obs["status"], obs["code"]
    issues = issues_of(obs)
    assert {(i.code, i.expression) for i in issues} == {
        ("required", "Observation.status"),
        ("required", "Observation.code"),
    }


def test_missing_required_element_in_backbone_element():
    resource = patient(link=[{"type": "seealso"}])
    [issue] = issues_of(resource)
    assert (issue.code, issue.expression) == ("required", "Patient.link[0].other")


def test_missing_required_element_is_found_even_beside_other_errors():
    # fhir.resources only checks required primitives when all other fields are valid.
    obs = observation(foo=1)
    del obs["status"]
    assert sorted(expressions(obs)) == ["Observation.foo", "Observation.status"]


def test_two_choices_of_one_choice_element():
    [issue] = issues_of(patient(deceasedBoolean=True, deceasedDateTime="2020-01-01"))
    assert (issue.code, issue.expression) == ("structure", "Patient.deceased[x]")


def test_required_choice_element_missing():
    med = copy.deepcopy(VALID[4])
    del med["medicationCodeableConcept"]
    [issue] = issues_of(med)
    assert (issue.code, issue.expression) == ("required", "MedicationRequest.medication[x]")


# -- required bindings ---------------------------------------------------------------------------


def test_bad_status_code_lists_allowed_codes_but_not_the_value():
    [issue] = issues_of(observation(status="done"))
    assert (issue.code, issue.expression) == ("code-invalid", "Observation.status")
    assert "registered" in issue.diagnostics and "entered-in-error" in issue.diagnostics
    assert "done" not in issue.diagnostics


@pytest.mark.parametrize(
    ("resource", "path"),
    [
        (patient(gender="f"), "Patient.gender"),
        (
            patient(identifier=[{"value": "x"}, {"use": "primary", "value": "y"}]),
            "Patient.identifier[1].use",
        ),
        (
            observation(subject={"identifier": {"use": "main", "value": "x"}}),
            "Observation.subject.identifier.use",
        ),
        (
            patient(contact=[{"telecom": [{"system": "mobile", "value": "x"}]}]),
            "Patient.contact[0].telecom[0].system",
        ),
        (patient(name=[{"use": "legal", "family": "Smith"}]), "Patient.name[0].use"),
        (patient(address=[{"type": "home"}]), "Patient.address[0].type"),
        (
            patient(
                text={"status": "done", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}
            ),
            "Patient.text.status",
        ),
        (
            observation(valueQuantity={"value": 1, "comparator": "=="}),
            "Observation.valueQuantity.comparator",
        ),
        (
            observation(referenceRange=[{"low": {"value": 1, "comparator": "~"}}]),
            "Observation.referenceRange[0].low.comparator",
        ),
        ({**VALID[5], "category": ["medication", "drug"]}, "AllergyIntolerance.category[1]"),
        ({**VALID[7], "intent": "request"}, "Task.intent"),
    ],
)
def test_required_binding_anywhere_in_the_resource(resource, path):
    [issue] = issues_of(resource)
    assert (issue.code, issue.expression) == ("code-invalid", path)


def test_binding_in_recursive_backbone_element():
    questionnaire = copy.deepcopy(VALID[6])
    questionnaire["item"][0]["item"][0]["type"] = "yes-no"
    assert expressions(questionnaire) == ["Questionnaire.item[0].item[0].type"]


def test_codeable_concept_binding_checks_only_codings_from_its_system():
    condition = copy.deepcopy(VALID[2])
    condition["clinicalStatus"]["coding"] = [
        {"system": "http://example.org/local", "code": "whatever"},  # a translation: not checked
        {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "ongoing"},
    ]
    [issue] = issues_of(condition)
    assert issue.expression == "Condition.clinicalStatus.coding[1].code"
    assert "condition-clinical" in issue.diagnostics


# -- references ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    [
        "Patient 1",
        "Patient/",
        "patient/1",
        "Patient/a b",
        "Patient/" + "x" * 65,
        "#a b",
        "urn:uuid:not-a-uuid",
        "urn:oid:1.2.3",
        "ftp://example.org/Patient/1",
        "https://",
    ],
)
def test_malformed_reference(reference):
    [issue] = issues_of(observation(subject={"reference": reference}))
    assert (issue.code, issue.expression) == ("value", "Observation.subject.reference")


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/p1",
        "Patient/p1/_history/3",
        "Group/g.1-a",
        "https://example.org/fhir/Patient/1",
        "http://example.org/some/thing",
        "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
    ],
)
def test_well_formed_references(reference):
    obs = observation(subject={"reference": reference})
    assert validate_resource(obs) is obs


def test_reference_to_a_type_that_is_not_an_r4_resource():
    [issue] = issues_of(observation(subject={"reference": "Person1/1"}))
    assert issue.expression == "Observation.subject.reference"


def test_references_to_r4_types_outside_the_supported_set_are_allowed():
    assert "Device" not in SUPPORTED_TYPES and "Device" in R4_RESOURCE_TYPES
    obs = observation(subject={"reference": "Device/d1"}, device={"reference": "Device/d1"})
    assert validate_resource(obs) is obs


def test_urn_uuid_reference_can_be_refused():
    obs = observation(subject={"reference": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520"})
    assert validate_resource(obs) is obs
    assert expressions(obs, allow_urn=False) == ["Observation.subject.reference"]


def test_reference_to_wrong_target_type_names_the_allowed_types():
    [issue] = issues_of(patient(managingOrganization={"reference": "Practitioner/pr1"}))
    assert (issue.code, issue.expression) == ("value", "Patient.managingOrganization.reference")
    assert "Organization" in issue.diagnostics and "Practitioner" in issue.diagnostics


def test_wrong_target_type_in_a_list_and_with_history():
    resource = patient(
        generalPractitioner=[
            {"reference": "Organization/gp1"},
            {"reference": "Patient/p2/_history/1"},
        ]
    )
    assert expressions(resource) == ["Patient.generalPractitioner[1].reference"]


def test_local_reference_must_match_a_contained_resource_of_an_allowed_type():
    missing = patient(managingOrganization={"reference": "#org"})
    assert expressions(missing) == ["Patient.managingOrganization.reference"]
    wrong_type = patient(
        managingOrganization={"reference": "#org"},
        contained=[{"resourceType": "Practitioner", "id": "org"}],
    )
    assert expressions(wrong_type) == ["Patient.managingOrganization.reference"]
    ok = patient(
        managingOrganization={"reference": "#org"},
        contained=[{"resourceType": "Organization", "id": "org", "name": "GP"}],
    )
    assert validate_resource(ok) is ok


# -- contained resources, narrative, ids ---------------------------------------------------------


def test_contained_resources_are_validated():
    resource = patient(contained=[{"resourceType": "Observation", "id": "o", "status": "bogus"}])
    assert sorted(expressions(resource)) == [
        "Patient.contained[0].code",
        "Patient.contained[0].status",
    ]


@pytest.mark.parametrize(
    "contained", [{"resourceType": "Bogus"}, {"id": "x"}, {"resourceType": "Element"}]
)
def test_contained_resource_of_unknown_type_is_a_422_not_a_crash(contained):
    assert expressions(patient(contained=[contained])) == ["Patient.contained[0]"]


def test_contained_resource_must_not_contain_resources():
    inner = {"resourceType": "Organization", "id": "b"}
    resource = patient(
        contained=[{"resourceType": "Organization", "id": "a", "contained": [inner]}]
    )
    assert "Patient.contained[0]" in expressions(resource)


def test_narrative_div_must_be_xhtml():
    resource = patient(text={"status": "generated", "div": "Jane Smith"})
    assert expressions(resource) == ["Patient.text.div"]


@pytest.mark.parametrize("bad_id", ["a b", "x" * 65, "p_1", ""])
def test_resource_id_must_match_the_id_rule(bad_id):
    assert expressions(patient(id=bad_id)) == ["Patient.id"]


def test_resource_id_of_64_characters_is_fine():
    resource = patient(id="A-z.0" + "x" * 59)
    assert validate_resource(resource) is resource


# -- NHS number ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["9434765918", "943 476 5919", "943476591", "94347659190", "9434765911", "ABCDEFGHIJ"]
)
def test_bad_nhs_number_is_rejected_without_echoing_it(value):
    resource = patient(identifier=[{"system": NHS_NUMBER_SYSTEM, "value": value}])
    [issue] = issues_of(resource)
    assert (issue.code, issue.expression) == ("value", "Patient.identifier[0].value")
    assert "NHS number" in issue.diagnostics
    assert value not in issue.diagnostics


def test_nhs_number_in_a_reference_identifier_is_checked():
    ident = {"system": NHS_NUMBER_SYSTEM, "value": "9434765918"}
    assert expressions(observation(subject={"identifier": ident})) == [
        "Observation.subject.identifier.value"
    ]


def test_other_identifier_systems_are_not_nhs_checked():
    resource = patient(identifier=[{"system": "https://example.org/mrn", "value": "9434765918"}])
    assert validate_resource(resource) is resource


# -- 400s ----------------------------------------------------------------------------------------


def test_unsupported_type_is_400_naming_it():
    [issue] = issues_of({"resourceType": "Medication"}, status=400)
    assert issue.code == "not-supported"
    assert "'Medication'" in issue.diagnostics and "Patient" in issue.diagnostics


def test_mismatched_expected_type_is_400_naming_both():
    [issue] = issues_of(patient(), status=400, expected_type="Observation")
    assert "Patient" in issue.diagnostics and "Observation" in issue.diagnostics


@pytest.mark.parametrize("body", [[], "Patient", None, 3, [patient()]])
def test_non_object_is_400(body):
    [issue] = issues_of(body, status=400)
    assert issue.code == "structure"


@pytest.mark.parametrize("body", [{}, {"resourceType": 1}, {"resourceType": ""}, {"id": "x"}])
def test_missing_resource_type_is_400(body):
    issues_of(body, status=400)


# -- many issues at once -------------------------------------------------------------------------


def test_several_issues_are_collected_in_one_pass():
    resource = patient(
        favouriteColour="blue",
        birthDate="25/01/1970",
        gender="woman",
        identifier=[{"use": "primary", "system": NHS_NUMBER_SYSTEM, "value": "9434765918"}],
        managingOrganization={"reference": "Practitioner/x"},
        name=[{"family": ["Smith"]}],
        active="true",
    )
    assert sorted(expressions(resource)) == [
        "Patient.active",
        "Patient.birthDate",
        "Patient.favouriteColour",
        "Patient.gender",
        "Patient.identifier[0].use",
        "Patient.identifier[0].value",
        "Patient.managingOrganization.reference",
        "Patient.name[0].family",
    ]


def test_each_problem_is_reported_once():
    issues = issues_of(patient(birthDate=12, deceasedBoolean="no", deceasedDateTime="2020"))
    paths = [i.expression for i in issues]
    assert len(paths) == len(set(paths)), paths


def test_issue_list_is_capped():
    many = [{"use": "nope", "value": str(i)} for i in range(MAX_ISSUES + 20)]
    issues = issues_of(patient(identifier=many))
    assert len(issues) == MAX_ISSUES + 1
    assert issues[-1].code == "too-costly" and "20 more" in issues[-1].diagnostics


def test_diagnostics_never_contain_submitted_values():
    marker = "ZZSECRETZZ"
    resource = patient(
        gender=marker,
        birthDate=marker,
        active=marker,
        identifier=[{"system": NHS_NUMBER_SYSTEM, "value": marker}, {"use": marker}],
        name=[{"use": marker, "family": [marker]}],
        managingOrganization={"reference": marker},
        generalPractitioner=[{"reference": f"{marker}/1"}],
        telecom=[{"system": marker}],
        meta={"lastUpdated": marker},
    )
    issues = issues_of(resource)
    assert len(issues) >= 10
    assert not [i.diagnostics for i in issues if marker in i.diagnostics]


def test_deeply_nested_body_is_a_422_not_a_crash():
    item: dict = {"linkId": "leaf", "type": "display"}
    for depth in range(3000):
        item = {"linkId": str(depth), "type": "group", "item": [item]}
    [issue] = issues_of({"resourceType": "Questionnaire", "status": "active", "item": [item]})
    assert issue.code == "structure"


# -- the binding table itself --------------------------------------------------------------------


def test_every_binding_path_resolves_to_a_distinct_element():
    resolved = validation._bindings()  # raises on a path that does not exist in the models
    assert len(resolved) == len(REQUIRED_BINDINGS)


def test_bindings_agree_with_the_codes_fhir_resources_lists():
    """fhir.resources records the codes of a code element's short description. Where that list
    is complete it must equal ours; where it ends in '+' it must be a subset of ours."""
    checked = 0
    for (model, name), binding in validation._bindings().items():
        element = validation._schema(model).elements[name]
        # A CodeableConcept binding names its code system; a code binding must not.
        assert (binding.system is None) == (element.primitive == "code"), (model, name)
        info = next(i for n, i in model.model_fields.items() if (i.alias or n) == name)
        listed = (info.json_schema_extra or {}).get("enum_values")
        if listed is None:
            continue
        checked += 1
        if "+" in listed:
            assert set(listed) - {"+"} <= binding.codes, (model, name)
        else:
            assert set(listed) == binding.codes, (model, name)
    assert checked > 50


def test_every_status_element_of_the_supported_types_is_bound():
    for resource_type in SUPPORTED_TYPES:
        if "status" in validation.get_fhir_model_class(resource_type).model_fields:
            assert f"{resource_type}.status" in REQUIRED_BINDINGS, resource_type


def test_r4_resource_type_list_includes_every_supported_type():
    assert len(R4_RESOURCE_TYPES) == 146
    assert set(SUPPORTED_TYPES) <= R4_RESOURCE_TYPES


def test_warm_up_compiles_every_supported_type():
    validation.warm_up()
    for resource_type in SUPPORTED_TYPES:
        assert validation.get_fhir_model_class(resource_type) in validation._SCHEMAS
