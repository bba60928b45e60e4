"""Search-index extraction: value types, edge cases, compartments, date ranges."""

from __future__ import annotations

import timeit
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carelight.fhir import searchparams
from carelight.fhir.extract import date_range, extract, normalize_string, parse_reference
from carelight.fhir.index_entries import (
    DATE_MAX,
    DATE_MIN,
    DateEntry,
    IndexEntries,
    QuantityEntry,
    ReferenceEntry,
    StringEntry,
    TokenEntry,
    UriEntry,
)
from carelight.fhir.searchparams import stored_as


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def of(entries: list, param: str) -> list:
    return [e for e in entries if e.param == param]


def tokens(e: IndexEntries, param: str) -> set[tuple]:
    return {(t.system, t.code, t.text) for t in of(e.tokens, param)}


def strings(e: IndexEntries, param: str) -> set[tuple[str, str]]:
    return {(s.value, s.exact) for s in of(e.strings, param)}


def dates(e: IndexEntries, param: str) -> list[tuple[float, float]]:
    return [(d.low, d.high) for d in of(e.dates, param)]


def refs(e: IndexEntries, param: str) -> set[tuple]:
    return {(r.target_type, r.target_id, r.url) for r in of(e.references, param)}


def searched(entries: list, res_type: str, param: str) -> list:
    """The rows a search on ``param`` reads: derived parameters (``combo-code``, ``patient``)
    have no rows of their own and read those they are derived from."""
    stored = stored_as(searchparams.get(res_type, param))
    assert stored.names != (param,), f"{res_type}.{param} is not derived"
    assert not of(entries, param), f"{res_type}.{param} is derived: it has no rows of its own"
    return [
        e
        for e in entries
        if e.param in stored.names
        and (stored.target_type is None or e.target_type == stored.target_type)
    ]


def searched_refs(e: IndexEntries, res_type: str, param: str) -> set[tuple]:
    return {(r.target_type, r.target_id, r.url) for r in searched(e.references, res_type, param)}


def no_duplicates(e: IndexEntries) -> None:
    for kind in ("tokens", "strings", "dates", "numbers", "quantities", "references", "uris"):
        entries = getattr(e, kind)
        assert len(entries) == len(set(entries)), kind


PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {"versionId": "3", "lastUpdated": "2024-01-01T10:00:00Z"},
    "identifier": [
        {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"},
        {"system": "https://trust.example/mrn", "value": "A1", "type": {"text": "Hospital  MRN"}},
        {"value": "no-system"},
    ],
    "active": True,
    "name": [
        {
            "use": "official",
            "family": "Brontë",
            "given": ["Zoë", "Anne  Marie"],
            "prefix": ["Mrs"],
            "suffix": ["OBE"],
            "text": "Mrs Zoë Brontë",
        },
        {"use": "maiden", "family": "Smith", "given": ["Zoë"]},
    ],
    "telecom": [
        {"system": "phone", "value": "0113 496 0000", "use": "home"},
        {"system": "phone", "value": "07700 900000", "use": "mobile"},
        {"system": "email", "value": "zoe@example.org"},
    ],
    "gender": "female",
    "birthDate": "1970-05-12",
    "address": [
        {
            "line": ["1 High Street", "Flat 2"],
            "city": "Leeds",
            "district": "West Yorkshire",
            "postalCode": "LS1 1AA",
            "country": "GB",
        }
    ],
    "generalPractitioner": [{"reference": "Organization/gp1"}],
    "managingOrganization": {"reference": "Organization/o1"},
    "link": [
        {"other": {"reference": "Patient/p0"}, "type": "replaces"},
        {"other": {"reference": "RelatedPerson/rp1"}, "type": "seealso"},
    ],
}


def test_patient_strings_names_and_addresses() -> None:
    e = extract(PATIENT)
    assert strings(e, "family") == {("bronte", "Brontë"), ("smith", "Smith")}
    assert strings(e, "given") == {("zoe", "Zoë"), ("anne marie", "Anne  Marie")}
    assert strings(e, "name") == {
        ("bronte", "Brontë"),
        ("zoe", "Zoë"),
        ("anne marie", "Anne  Marie"),
        ("mrs", "Mrs"),
        ("obe", "OBE"),
        ("mrs zoe bronte", "Mrs Zoë Brontë"),
        ("smith", "Smith"),
    }
    assert strings(e, "address") == {
        ("1 high street", "1 High Street"),
        ("flat 2", "Flat 2"),
        ("leeds", "Leeds"),
        ("west yorkshire", "West Yorkshire"),
        ("ls1 1aa", "LS1 1AA"),
        ("gb", "GB"),
    }
    assert strings(e, "address-postalcode") == {("ls1 1aa", "LS1 1AA")}
    assert strings(e, "address-city") == {("leeds", "Leeds")}
    assert strings(e, "address-country") == {("gb", "GB")}
    no_duplicates(e)
    # "Zoë" appears in both names but is indexed once per parameter
    assert len([s for s in of(e.strings, "given") if s.value == "zoe"]) == 1


def test_patient_tokens() -> None:
    e = extract(PATIENT)
    assert tokens(e, "identifier") == {
        ("https://fhir.nhs.uk/Id/nhs-number", "9000000009", None),
        ("https://trust.example/mrn", "A1", "hospital mrn"),
        (None, "no-system", None),
    }
    assert tokens(e, "gender") == {(None, "female", None)}
    assert tokens(e, "active") == {(None, "true", None)}
    # ContactPoint: system column = ContactPoint.use, code = value as written
    assert tokens(e, "phone") == {("home", "0113 496 0000", None), ("mobile", "07700 900000", None)}
    assert tokens(e, "email") == {(None, "zoe@example.org", None)}
    assert len(tokens(e, "telecom")) == 3
    assert tokens(e, "deceased") == {(None, "false", None)}
    # the store answers these from its own columns
    assert not of(e.tokens, "_id")
    assert not of(e.dates, "_lastUpdated")


def test_patient_dates_references_and_compartment() -> None:
    e = extract(PATIENT)
    assert dates(e, "birthdate") == [(ts("1970-05-12T00:00:00Z"), ts("1970-05-12T23:59:59.999Z"))]
    assert refs(e, "general-practitioner") == {("Organization", "gp1", None)}
    assert refs(e, "organization") == {("Organization", "o1", None)}
    assert refs(e, "link") == {("Patient", "p0", None), ("RelatedPerson", "rp1", None)}
    # itself, and the patient it links to
    assert e.compartments == {"p1", "p0"}


def test_patient_without_id_is_in_no_compartment() -> None:
    e = extract({"resourceType": "Patient", "name": [{"family": "X"}]})
    assert e.compartments == set()


def test_deceased_variants() -> None:
    alive = extract({"resourceType": "Patient", "id": "a", "deceasedBoolean": False})
    assert tokens(alive, "deceased") == {(None, "false", None)}
    dead = extract({"resourceType": "Patient", "id": "b", "deceasedBoolean": True})
    assert tokens(dead, "deceased") == {(None, "true", None)}
    assert dates(dead, "death-date") == []
    died = extract({"resourceType": "Patient", "id": "c", "deceasedDateTime": "2021-06"})
    assert tokens(died, "deceased") == {(None, "true", None)}
    assert dates(died, "death-date") == [
        (ts("2021-06-01T00:00:00Z"), ts("2021-06-30T23:59:59.999Z"))
    ]


OBSERVATION = {
    "resourceType": "Observation",
    "id": "o1",
    "meta": {
        "lastUpdated": "2024-01-01T10:00:00Z",
        "profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Observation"],
        "source": "https://gp.example/system#abc",
        "tag": [{"system": "http://carelight/tags", "code": "imported", "display": "Imported"}],
        "security": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
        ],
    },
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                    "display": "Vital Signs",
                }
            ]
        }
    ],
    "code": {
        "coding": [
            {"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"},
            {"system": "http://snomed.info/sct", "code": "75367002"},
        ],
        "text": "Blood Pressure",
    },
    "subject": {"reference": "Patient/p1"},
    "encounter": {"reference": "Encounter/e1/_history/2"},
    "effectivePeriod": {"start": "2020-03-01T10:00:00+01:00"},
    "performer": [
        {"reference": "Practitioner/pr1"},
        {"reference": "Patient/p1"},
        {"reference": "https://other.example/fhir/Patient/p9"},
        {"reference": "#contained-1"},
        {"reference": "urn:uuid:8c3a6b1e-0000-4000-8000-000000000000"},
        {"identifier": {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "555"}},
    ],
    "component": [
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
            "valueQuantity": {
                "value": 120,
                "unit": "mmHg",
                "system": "http://unitsofmeasure.org",
                "code": "mm[Hg]",
            },
        },
        {
            "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
            "valueQuantity": {"value": 80.5, "unit": "mmHg"},
        },
    ],
}


def test_observation_codeable_concepts_and_text() -> None:
    e = extract(OBSERVATION)
    assert tokens(e, "code") == {
        ("http://loinc.org", "85354-9", "blood pressure panel"),
        ("http://snomed.info/sct", "75367002", None),
        (None, None, "blood pressure"),
    }
    assert tokens(e, "category") == {
        (
            "http://terminology.hl7.org/CodeSystem/observation-category",
            "vital-signs",
            "vital signs",
        )
    }
    assert tokens(e, "status") == {(None, "final", None)}
    assert tokens(e, "component-code") == {
        ("http://loinc.org", "8480-6", None),
        ("http://loinc.org", "8462-4", None),
    }
    combo = {(t.system, t.code, t.text) for t in searched(e.tokens, "Observation", "combo-code")}
    assert combo == tokens(e, "code") | tokens(e, "component-code")


def test_observation_quantities_and_period() -> None:
    e = extract(OBSERVATION)
    assert of(e.quantities, "value-quantity") == []
    assert set(of(e.quantities, "component-value-quantity")) == {
        QuantityEntry("component-value-quantity", 120.0, "http://unitsofmeasure.org", "mm[Hg]"),
        QuantityEntry("component-value-quantity", 80.5, None, "mmHg"),  # unit when no code
    }
    # open-ended period; the offset is honoured
    assert dates(e, "date") == [(ts("2020-03-01T09:00:00Z"), DATE_MAX)]


def test_observation_references_and_compartments() -> None:
    e = extract(OBSERVATION)
    assert refs(e, "subject") == {("Patient", "p1", None)}
    assert searched_refs(e, "Observation", "patient") == {("Patient", "p1", None)}
    assert refs(e, "encounter") == {("Encounter", "e1", None)}  # version dropped
    assert refs(e, "performer") == {
        ("Practitioner", "pr1", None),
        ("Patient", "p1", None),
        ("Patient", "p9", "https://other.example/fhir/Patient/p9"),
    }  # contained, urn:uuid and identifier-only references are skipped
    # absolute URLs never put a resource in a (local) Patient's compartment
    assert e.compartments == {"p1"}


def test_meta_tags_profiles_source() -> None:
    e = extract(OBSERVATION)
    assert tokens(e, "_tag") == {("http://carelight/tags", "imported", "imported")}
    assert tokens(e, "_security") == {
        ("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R", None)
    }
    assert set(e.uris) == {
        UriEntry("_profile", "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Observation"),
        UriEntry("_source", "https://gp.example/system#abc"),
    }
    assert not any(x.param in ("_id", "_lastUpdated") for x in e.tokens + e.dates)  # type: ignore[operator]


def test_observation_choice_types() -> None:
    base = {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/1"}}
    q = extract(
        {
            **base,
            "valueQuantity": {"value": 72.5, "system": "http://unitsofmeasure.org", "code": "kg"},
            "effectiveDateTime": "2021",
        }
    )
    assert of(q.quantities, "value-quantity") == [
        QuantityEntry("value-quantity", 72.5, "http://unitsofmeasure.org", "kg")
    ]
    assert searched(q.quantities, "Observation", "combo-value-quantity") == [
        QuantityEntry("value-quantity", 72.5, "http://unitsofmeasure.org", "kg")
    ]
    assert dates(q, "date") == [(ts("2021-01-01T00:00:00Z"), ts("2021-12-31T23:59:59.999Z"))]

    c = extract(
        {
            **base,
            "valueCodeableConcept": {"text": "Positive"},
            "effectiveInstant": "2021-02-03T04:05:06.789Z",
        }
    )
    assert tokens(c, "value-concept") == {(None, None, "positive")}
    combo = searched(c.tokens, "Observation", "combo-value-concept")
    assert {(t.system, t.code, t.text) for t in combo} == {(None, None, "positive")}
    assert dates(c, "date") == [(ts("2021-02-03T04:05:06.789Z"), ts("2021-02-03T04:05:06.789Z"))]

    s = extract({**base, "valueString": "Trace  Protein", "valueBoolean": True})
    assert strings(s, "value-string") == {("trace protein", "Trace  Protein")}
    assert tokens(s, "value-concept") == set()

    d = extract({**base, "valuePeriod": {"end": "2020-01-02"}})
    assert dates(d, "value-date") == [(DATE_MIN, ts("2020-01-02T23:59:59.999Z"))]

    nothing = extract({**base, "valueQuantity": {"unit": "kg"}, "effectiveTiming": {}})
    assert nothing.quantities == [] and nothing.dates == []


def test_boolean_and_code_tokens() -> None:
    e = extract({"resourceType": "Organization", "id": "o", "active": False, "name": "St Mary's"})
    assert tokens(e, "active") == {(None, "false", None)}
    assert strings(e, "name") == {("st mary's", "St Mary's")}
    assert e.compartments == set()


def test_organization_alias_and_location() -> None:
    e = extract(
        {
            "resourceType": "Location",
            "name": "Ward 1",
            "alias": ["Ward One", "Ward 1"],
            "address": {"postalCode": "LS1 3EX", "city": "Leeds"},
            "operationalStatus": {
                "system": "http://terminology.hl7.org/CodeSystem/v2-0116",
                "code": "O",
                "display": "Occupied",
            },
            "partOf": {"reference": "Location/hosp"},
        }
    )
    assert strings(e, "name") == {("ward 1", "Ward 1"), ("ward one", "Ward One")}
    assert strings(e, "address-postalcode") == {("ls1 3ex", "LS1 3EX")}
    assert tokens(e, "operational-status") == {
        ("http://terminology.hl7.org/CodeSystem/v2-0116", "O", "occupied")
    }
    assert refs(e, "partof") == {("Location", "hosp", None)}


def test_condition_choice_skips_non_dates() -> None:
    e = extract(
        {
            "resourceType": "Condition",
            "subject": {"reference": "Patient/p2"},
            "asserter": {"reference": "Patient/p3"},
            "onsetString": "in childhood",
            "abatementAge": {"value": 40, "unit": "a", "system": "http://unitsofmeasure.org"},
            "recordedDate": "2019-07-04T12:30:00-04:00",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
        }
    )
    assert dates(e, "onset-date") == []
    assert strings(e, "onset-info") == {("in childhood", "in childhood")}
    assert of(e.quantities, "abatement-age") == [
        QuantityEntry("abatement-age", 40.0, "http://unitsofmeasure.org", "a")
    ]
    assert dates(e, "recorded-date") == [
        (ts("2019-07-04T16:30:00Z"), ts("2019-07-04T16:30:00.999Z"))
    ]
    assert tokens(e, "clinical-status") == {
        ("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", None)
    }
    assert searched_refs(e, "Condition", "patient") == {("Patient", "p2", None)}
    assert e.compartments == {"p2", "p3"}


def test_encounter_patient_filter_and_period() -> None:
    e = extract(
        {
            "resourceType": "Encounter",
            "subject": {"reference": "Group/g1"},
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "period": {"start": "2022-01-01T09:00:00Z", "end": "2022-01-01T09:30:00Z"},
            "participant": [
                {"individual": {"reference": "Practitioner/pr1"}},
                {"individual": {"reference": "RelatedPerson/rp1"}},
            ],
            "length": {
                "value": 30,
                "unit": "min",
                "system": "http://unitsofmeasure.org",
                "code": "min",
            },
        }
    )
    assert refs(e, "subject") == {("Group", "g1", None)}
    assert searched_refs(e, "Encounter", "patient") == set()  # where(resolve() is Patient)
    assert searched_refs(e, "Encounter", "practitioner") == {("Practitioner", "pr1", None)}
    assert len(refs(e, "participant")) == 2
    assert tokens(e, "class") == {("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", None)}
    assert dates(e, "date") == [(ts("2022-01-01T09:00:00Z"), ts("2022-01-01T09:30:00.999Z"))]
    assert of(e.quantities, "length")[0].value == 30.0
    assert e.compartments == set()


def test_medication_request_choice() -> None:
    by_code = extract(
        {
            "resourceType": "MedicationRequest",
            "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": {
                "coding": [{"system": "https://dmd.nhs.uk", "code": "39732311000001104"}]
            },
            "authoredOn": "2023-04-05",
            "dosageInstruction": [{"timing": {"event": ["2023-04-06T08:00:00Z"]}}],
        }
    )
    assert tokens(by_code, "code") == {("https://dmd.nhs.uk", "39732311000001104", None)}
    assert refs(by_code, "medication") == set()
    assert dates(by_code, "date") == [(ts("2023-04-06T08:00:00Z"), ts("2023-04-06T08:00:00.999Z"))]
    by_ref = extract(
        {
            "resourceType": "MedicationRequest",
            "subject": {"reference": "Patient/p1"},
            "medicationReference": {"reference": "Medication/m1"},
        }
    )
    assert refs(by_ref, "medication") == {("Medication", "m1", None)}
    assert tokens(by_ref, "code") == set()
    assert by_ref.compartments == {"p1"}


def test_procedure_period_and_compartment() -> None:
    e = extract(
        {
            "resourceType": "Procedure",
            "subject": {"reference": "Patient/p1"},
            "performedPeriod": {"start": "2020-01", "end": "2020-02"},
            "performer": [{"actor": {"reference": "Patient/p2"}}],
        }
    )
    assert dates(e, "date") == [(ts("2020-01-01T00:00:00Z"), ts("2020-02-29T23:59:59.999Z"))]
    assert e.compartments == {"p1", "p2"}
    e2 = extract({"resourceType": "Procedure", "performedString": "last year"})
    assert e2.dates == []


def test_service_request_timing() -> None:
    e = extract(
        {
            "resourceType": "ServiceRequest",
            "subject": {"reference": "Patient/p1"},
            "occurrenceTiming": {
                "event": ["2024-05-01", "2024-05-08"],
                "repeat": {"boundsPeriod": {"start": "2024-05-01", "end": "2024-06-01"}},
            },
        }
    )
    assert dates(e, "occurrence") == [
        (ts("2024-05-01T00:00:00Z"), ts("2024-05-01T23:59:59.999Z")),
        (ts("2024-05-08T00:00:00Z"), ts("2024-05-08T23:59:59.999Z")),
        (ts("2024-05-01T00:00:00Z"), ts("2024-06-01T23:59:59.999Z")),
    ]


def test_questionnaire_response_canonical() -> None:
    e = extract(
        {
            "resourceType": "QuestionnaireResponse",
            "questionnaire": "https://forms.example/Questionnaire/phq9|2.0",
            "subject": {"reference": "Patient/p1"},
            "author": {"reference": "Patient/p1"},
        }
    )
    assert refs(e, "questionnaire") == {
        (None, None, "https://forms.example/Questionnaire/phq9|2.0"),
        (None, None, "https://forms.example/Questionnaire/phq9"),
    }
    assert e.compartments == {"p1"}
    q = extract(
        {
            "resourceType": "Questionnaire",
            "url": "https://forms.example/Questionnaire/phq9",
            "version": "2.0",
            "title": "PHQ-9",
        }
    )
    assert q.uris == [UriEntry("url", "https://forms.example/Questionnaire/phq9")]
    assert tokens(q, "version") == {(None, "2.0", None)}
    assert strings(q, "title") == {("phq-9", "PHQ-9")}


def test_goal_and_immunization() -> None:
    g = extract(
        {
            "resourceType": "Goal",
            "subject": {"reference": "Patient/p5"},
            "startDate": "2024-02-01",
            "target": [{"dueDate": "2024-12-31"}, {"dueDuration": {"value": 3}}],
        }
    )
    assert dates(g, "start-date") == [(ts("2024-02-01T00:00:00Z"), ts("2024-02-01T23:59:59.999Z"))]
    assert dates(g, "target-date") == [(ts("2024-12-31T00:00:00Z"), ts("2024-12-31T23:59:59.999Z"))]
    assert g.compartments == {"p5"}
    i = extract(
        {
            "resourceType": "Immunization",
            "patient": {"reference": "Patient/p6"},
            "occurrenceString": "childhood",
            "lotNumber": "AB123",
            "vaccineCode": {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]},
        }
    )
    assert i.dates == []
    assert strings(i, "lot-number") == {("ab123", "AB123")}
    assert i.compartments == {"p6"}


def test_compartments_for_more_types() -> None:
    cases = {
        "AllergyIntolerance": (
            {
                "patient": {"reference": "Patient/a"},
                "recorder": {"reference": "Patient/b"},
                "asserter": {"reference": "Practitioner/x"},
            },
            {"a", "b"},
        ),
        "CareTeam": (
            {
                "subject": {"reference": "Patient/a"},
                "participant": [{"member": {"reference": "Patient/c"}}],
            },
            {"a", "c"},
        ),
        "DocumentReference": (
            {"subject": {"reference": "Patient/a"}, "author": [{"reference": "Patient/d"}]},
            {"a", "d"},
        ),
        "RelatedPerson": ({"patient": {"reference": "Patient/a"}}, {"a"}),
        "Provenance": (
            {"target": [{"reference": "Patient/a"}, {"reference": "Observation/o"}]},
            {"a"},
        ),
        "Consent": ({"patient": {"reference": "Patient/a"}}, {"a"}),
        # Carelight deviation: Task is in the compartment of its patient / patient owner
        "Task": (
            {"for": {"reference": "Patient/a"}, "owner": {"reference": "Patient/e"}},
            {"a", "e"},
        ),
        "Practitioner": ({"id": "pr"}, set()),
        "Flag": ({"subject": {"reference": "Location/l"}}, set()),
    }
    for rtype, (body, expected) in cases.items():
        e = extract({"resourceType": rtype, **body})
        assert e.compartments == expected, rtype


def test_references_parse() -> None:
    assert parse_reference("Patient/123") == ("Patient", "123", None)
    assert parse_reference("Patient/123/_history/4") == ("Patient", "123", None)
    assert parse_reference("https://x.example/fhir/Patient/123/_history/4") == (
        "Patient",
        "123",
        "https://x.example/fhir/Patient/123",
    )
    assert parse_reference("https://x.example/some/doc.pdf") == (
        None,
        None,
        "https://x.example/some/doc.pdf",
    )
    for skipped in ("#c1", "urn:uuid:1234", "urn:oid:1.2.3", "", "123", "Patient?identifier=x"):
        assert parse_reference(skipped) is None


def test_duplicates_removed() -> None:
    e = extract(
        {
            "resourceType": "Observation",
            "category": [
                {"coding": [{"system": "s", "code": "c"}]},
                {"coding": [{"system": "s", "code": "c"}]},
            ],
            "performer": [
                {"reference": "Practitioner/1"},
                {"reference": "Practitioner/1/_history/2"},
            ],
        }
    )
    assert e.tokens == [TokenEntry("category", "s", "c", None)]
    assert e.references == [ReferenceEntry("performer", "Practitioner", "1", None)]
    no_duplicates(extract(PATIENT))
    no_duplicates(extract(OBSERVATION))


def test_unknown_type_gets_meta_only() -> None:
    e = extract({"resourceType": "Basic", "code": {"text": "x"}, "meta": {"tag": [{"code": "t"}]}})
    assert e.tokens == [TokenEntry("_tag", None, "t", None)]
    assert extract({}).tokens == []


def test_bad_values_are_ignored() -> None:
    e = extract(
        {
            "resourceType": "Patient",
            "birthDate": "12/05/1970",
            "gender": "",
            "name": [{"family": "   "}, {"given": [None, ""]}],
            "identifier": [{"system": "s"}, {"value": ""}, 5],
            "generalPractitioner": [{"display": "Dr Who"}, {"reference": 7}],
        }
    )
    assert e.dates == [] and e.strings == [] and e.references == []
    assert tokens(e, "gender") == set() and tokens(e, "identifier") == set()


def test_normalize_string() -> None:
    assert normalize_string("Zoë") == "zoe"
    assert normalize_string("  Ångström\tÉCOLE  ") == "angstrom ecole"
    assert normalize_string("O'Brien-Smith") == "o'brien-smith"


def test_date_precisions() -> None:
    assert date_range("2020") == (ts("2020-01-01T00:00:00Z"), ts("2020-12-31T23:59:59.999Z"))
    assert date_range("2020-02") == (ts("2020-02-01T00:00:00Z"), ts("2020-02-29T23:59:59.999Z"))
    assert date_range("2021-02") == (ts("2021-02-01T00:00:00Z"), ts("2021-02-28T23:59:59.999Z"))
    assert date_range("2020-03-01") == (
        ts("2020-03-01T00:00:00Z"),
        ts("2020-03-01T23:59:59.999Z"),
    )
    assert date_range("2020-03-01T10:00:00+01:00") == (
        ts("2020-03-01T09:00:00Z"),
        ts("2020-03-01T09:00:00.999Z"),
    )
    assert date_range("2020-03-01T10:00:00-05:30") == (
        ts("2020-03-01T15:30:00Z"),
        ts("2020-03-01T15:30:00.999Z"),
    )
    assert date_range("2020-03-01T10:00:00") == date_range("2020-03-01T10:00:00Z")  # UTC
    assert date_range("2020-03-01T10:00Z") == (
        ts("2020-03-01T10:00:00Z"),
        ts("2020-03-01T10:00:59.999Z"),
    )
    assert date_range("2020-03-01T10:00:00.25Z") == (
        ts("2020-03-01T10:00:00.250Z"),
        ts("2020-03-01T10:00:00.250Z"),
    )
    for bad in ("2020-13", "2020-02-30", "2021-02-29", "2020-01-01T25:00:00Z", "20", "x"):
        assert date_range(bad) is None


def test_date_clamping() -> None:
    assert date_range("0000") == (DATE_MIN, DATE_MIN)
    assert date_range("0001") == (DATE_MIN, ts("0001-12-31T23:59:59.999Z"))
    assert date_range("9999") == (ts("9999-01-01T00:00:00Z"), DATE_MAX)
    low, high = date_range("9999-12-31T23:00:00-05:00")  # type: ignore[misc]
    assert low == high == DATE_MAX
    assert date_range("0001-01-01T00:00:00+01:00") == (DATE_MIN, DATE_MIN)


PRECISIONS = ("year", "month", "day", "minute", "second", "millis")


@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
    ),
    precision=st.sampled_from(PRECISIONS),
    offset_minutes=st.sampled_from([None, 0, 60, -300, 330, 840, -720]),
)
def test_date_range_property(moment: datetime, precision: str, offset_minutes: int | None) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    tz = UTC if offset_minutes is None else timezone(timedelta(minutes=offset_minutes))
    local = moment.replace(tzinfo=tz)
    if precision in ("year", "month", "day"):
        local = moment.replace(tzinfo=UTC)  # dates have no timezone: UTC
        text = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d"}[precision]
        written = f"{local.year:04d}" + local.strftime(text)[len(str(local.year)) :]
    else:
        hhmm = f"{local.year:04d}-{local:%m-%dT%H:%M}"
        written = {
            "minute": hhmm,
            "second": f"{hhmm}:{local:%S}",
            "millis": f"{hhmm}:{local:%S}.{local.microsecond // 1000:03d}",
        }[precision]
        if offset_minutes is not None:
            sign = "+" if offset_minutes >= 0 else "-"
            h, m = divmod(abs(offset_minutes), 60)
            written += "Z" if offset_minutes == 0 else f"{sign}{h:02d}:{m:02d}"
    r = date_range(written)
    assert r is not None, written
    low, high = r
    assert low <= high
    point = local.timestamp()
    if DATE_MIN <= point <= DATE_MAX:
        assert low <= point <= high, (written, low, point, high)
    # the range starts exactly at the start of the precision written
    start = local.replace(
        **{
            "year": {"month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0, "microsecond": 0},
            "month": {"day": 1, "hour": 0, "minute": 0, "second": 0, "microsecond": 0},
            "day": {"hour": 0, "minute": 0, "second": 0, "microsecond": 0},
            "minute": {"second": 0, "microsecond": 0},
            "second": {"microsecond": 0},
            "millis": {},
        }[precision]
    )
    assert low == min(max(start.timestamp(), DATE_MIN), DATE_MAX)


def test_dataclass_outputs() -> None:
    e = extract(OBSERVATION)
    assert all(isinstance(x, TokenEntry) for x in e.tokens)
    assert all(isinstance(x, DateEntry) for x in e.dates)
    assert all(isinstance(x, ReferenceEntry) for x in e.references)
    assert all(isinstance(x, StringEntry) for x in extract(PATIENT).strings)


def test_extract_is_fast() -> None:
    """Guard against pathological slow-downs; the module docstring has the real figures."""
    typical = {
        **OBSERVATION,
        "effectiveDateTime": "2024-01-01T09:30:00+00:00",
        "valueQuantity": {"value": 72.5, "unit": "kg", "system": "http://unitsofmeasure.org"},
    }
    n = 2000
    per_call = min(timeit.repeat(lambda: extract(typical), number=n, repeat=3)) / n
    assert per_call < 500e-6, f"{per_call * 1e6:.0f} µs per Observation"


def _as_rows(e):
    """IndexEntries → the bulk path's tuples, written out field by field."""
    return (
        [(t.param, t.system, t.code, t.text) for t in e.tokens],
        [(t.param, t.value[:512], t.exact[:512]) for t in e.strings],
        [(t.param, t.low, t.high) for t in e.dates],
        [(t.param, t.value) for t in e.numbers],
        [(t.param, t.value, t.system, t.code) for t in e.quantities],
        [(t.param, t.target_type, t.target_id, t.url) for t in e.references],
        [(t.param, t.value) for t in e.uris],
        [(p,) for p in sorted(e.compartments)],
    )


def test_extract_rows_is_extract_as_tuples():
    """The bulk path's tuple form holds exactly what extract() finds, for every example."""
    from carelight.examples import example_dir
    from carelight.fhir.extract import extract_rows

    resources = [
        orjson.loads(line)
        for path in sorted(example_dir().rglob("*.ndjson"))
        for line in path.read_bytes().splitlines()
        if line.strip()
    ]
    assert len(resources) > 50
    for resource in resources:
        assert extract_rows(resource) == _as_rows(extract(resource)), resource["resourceType"]


def test_care_relationships_and_person_keys():
    from carelight.fhir.relationships import care_relationships, person_keys

    ods = {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "G1"}}
    pat = {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}],
        "generalPractitioner": [ods, {"reference": "Organization/o2"}],
        "managingOrganization": {"reference": "Organization/o3"},
    }
    assert care_relationships(pat) == [
        ("p1", "ods:G1", "registration", None, None),
        ("p1", "Organization/o2", "registration", None, None),
    ]  # holding a record is no relationship
    assert person_keys(pat) == [("p1", "nhs:9990000018")]
    assert person_keys({"resourceType": "Patient", "id": "p2"}) == [("p2", "patient:p2")]
    enc = {
        "resourceType": "Encounter",
        "status": "finished",
        "subject": {"reference": "Patient/p1"},
        "serviceProvider": {"reference": "Organization/t1"},
        "period": {"start": "2024-01-01"},
    }
    [(pid, org, kind, start, end)] = care_relationships(enc)
    assert (pid, org, kind) == ("p1", "Organization/t1", "encounter")
    assert start == 1704067200.0 and end == pytest.approx(1704067200.0 + 86400, abs=0.01)
    ongoing = care_relationships(enc | {"status": "in-progress"})
    assert ongoing[0][4] is None  # open
    team = {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "participant": [{"member": ods}, {"onBehalfOf": {"reference": "Organization/c1"}}],
    }
    assert {r[1] for r in care_relationships(team)} == {"ods:G1", "Organization/c1"}
    assert care_relationships(team | {"subject": {"reference": "Group/g"}}) == []
    referral = {
        "resourceType": "ServiceRequest",
        "status": "revoked",
        "subject": {"reference": "Patient/p1"},
        "performer": [{"reference": "Organization/c1"}],
    }
    assert care_relationships(referral) == []
