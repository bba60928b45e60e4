"""Spec: the CapabilityStatement (R4 3.1.0.1.6) says exactly what the server does, on every engine.

Every search parameter it lists must be accepted by a search (the registry and the search
compiler agree), and every parameter it does not list must be refused with 400.
"""

from __future__ import annotations

import pytest

from carelight.fhir.errors import FhirError
from carelight.fhir.search.query import parse_search

FHIR = "application/fhir+json"

# The 27 types of the issue and Group (for Group-level $export), independent of the code's list.
TYPES = {
    "Patient", "RelatedPerson", "Practitioner", "PractitionerRole", "Organization", "Location",
    "Encounter", "EpisodeOfCare", "Condition", "Observation", "DiagnosticReport",
    "MedicationRequest", "MedicationStatement", "Procedure", "Immunization", "AllergyIntolerance",
    "CarePlan", "CareTeam", "Goal", "Questionnaire", "QuestionnaireResponse", "ServiceRequest",
    "Flag", "DocumentReference", "Consent", "Provenance", "Task", "Group",
}  # fmt: skip
INTERACTIONS = {
    "read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create",
    "search-type",
}  # fmt: skip
PARAM_TYPES = {"token", "string", "date", "number", "quantity", "reference", "uri"}
# A value of each parameter type that any parameter of that type must accept.
SAMPLE_VALUES = {
    "token": "http://example.org/codes|x,y",
    "string": "x",
    "date": "ge2020-01-01",
    "number": "gt1",
    "quantity": "1|http://unitsofmeasure.org|mg",
    "reference": "x",
    "uri": "http://example.org/x",
}


@pytest.fixture
def capability(client) -> dict:
    r = client.get("/fhir/metadata")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(FHIR)
    return r.json()


def _resources(cs: dict) -> dict[str, dict]:
    return {res["type"]: res for res in cs["rest"][0]["resource"]}


def test_capability_statement_basics(capability):
    cs = capability
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    assert cs["status"] == "active" and cs["kind"] == "instance"
    assert cs["format"] and all("json" in f and "xml" not in f for f in cs["format"])
    assert "application/fhir+json" in cs["format"]
    assert cs["patchFormat"] == ["application/json-patch+json"]
    (rest,) = cs["rest"]
    assert rest["mode"] == "server"
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch", "history-system"}


def test_capability_lists_the_28_types_with_their_interactions(capability):
    resources = _resources(capability)
    assert len(capability["rest"][0]["resource"]) == 28
    assert set(resources) == TYPES
    for res_type, res in resources.items():
        assert {i["code"] for i in res["interaction"]} == INTERACTIONS, res_type
        assert res["versioning"] == "versioned-update"
        assert res["readHistory"] is True and res["updateCreate"] is True
        assert res["conditionalCreate"] is True and res["conditionalUpdate"] is True
        assert res["conditionalDelete"] == "single"
        assert res["profile"] == f"http://hl7.org/fhir/StructureDefinition/{res_type}"
        names = [p["name"] for p in res["searchParam"]]
        assert len(names) == len(set(names)), f"{res_type}: a search parameter listed twice"
        assert {"_id", "_lastUpdated", "_tag", "_security", "_profile", "_source"} <= set(names)
        assert {p["type"] for p in res["searchParam"]} <= PARAM_TYPES, res_type
        for p in res["searchParam"]:
            assert p["definition"].startswith("http://hl7.org/fhir/SearchParameter/"), p
    assert [o["name"] for o in resources["Patient"]["operation"]] == ["everything", "export"]
    assert [o["name"] for o in resources["Group"]["operation"]] == ["export"]


def test_capability_is_json_only(client):
    assert client.get("/fhir/metadata", params={"_format": "xml"}).status_code == 406
    r = client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"})
    assert r.status_code == 406
    assert r.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/metadata", params={"_format": "json"}).status_code == 200


def _failures(client, res_type: str, queries: list[list[tuple[str, str]]]) -> list[str]:
    """Run the queries as one request (fast); on failure one by one, to name the culprits."""
    r = client.get(f"/fhir/{res_type}", params=[pair for q in queries for pair in q])
    if r.status_code == 200:
        return []
    failures = []
    for q in queries:
        r = client.get(f"/fhir/{res_type}", params=q)
        if r.status_code != 200:
            failures.append(f"{res_type}?{q}: {r.status_code} {r.text}")
    return failures or [f"{res_type}: fails only when combined"]


def test_every_listed_search_parameter_is_accepted(client, capability):
    """A listed parameter must compile and run: :missing, a value of its type, and _sort."""
    failures = []
    for res_type, res in _resources(capability).items():
        params = [(p["name"], p["type"]) for p in res["searchParam"]]
        missing = [[(f"{name}:missing", "true")] for name, _ in params]
        failures += _failures(client, res_type, missing)
        valued = [
            [(f"{name}:missing", "false"), (name, SAMPLE_VALUES[kind])] for name, kind in params
        ]
        failures += _failures(client, res_type, valued)
        failures += _failures(client, res_type, [[("_sort", f"-{name}")] for name, _ in params])
    assert not failures, "\n".join(failures)


def test_missing_on_id_and_last_updated(client):
    r = client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    assert r.status_code == 201
    for name in ("_id", "_lastUpdated"):
        for value, expected in (("true", 0), ("false", 1)):
            r = client.get("/fhir/Patient", params={f"{name}:missing": value, "_total": "accurate"})
            assert r.status_code == 200, r.text
            assert r.json()["total"] == expected, (name, value)


def test_listed_includes_and_revincludes_are_accepted(client, capability):
    failures = []
    for res_type, res in _resources(capability).items():
        queries = [[("_include", v)] for v in res.get("searchInclude", [])]
        queries += [[("_revinclude", v)] for v in res.get("searchRevInclude", [])]
        failures += _failures(client, res_type, queries)
    assert not failures, "\n".join(failures)


def _unlisted(capability: dict) -> dict[str, list[str]]:
    """Per type, every parameter name some type lists that this type does not, plus composites."""
    resources = _resources(capability)
    every = {p["name"] for res in resources.values() for p in res["searchParam"]}
    every |= {"code-value-quantity", "code-value-concept", "combo-code-value-quantity", "_text",
              "_content", "_filter", "_query", "_list", "_has", "colour"}  # fmt: skip
    return {
        t: sorted(every - {p["name"] for p in res["searchParam"]}) for t, res in resources.items()
    }


def test_every_unlisted_search_parameter_is_refused(capability):
    """All of them, parsed (fast); a sample over HTTP below."""
    accepted = []
    for res_type, names in _unlisted(capability).items():
        for name in names:
            try:
                parse_search(res_type, [(name, "x")])
            except FhirError as exc:
                assert exc.status == 400
            else:
                accepted.append(f"{res_type}?{name}")
    assert not accepted, accepted


def test_unlisted_search_parameters_are_400_over_http(client, capability):
    failures = []
    for res_type, names in _unlisted(capability).items():
        for name in names[:: max(1, len(names) // 6)]:
            r = client.get(f"/fhir/{res_type}", params={name: "x"})
            if r.status_code != 400 or r.json()["resourceType"] != "OperationOutcome":
                failures.append(f"{res_type}?{name}={r.status_code}")
            elif name not in r.json()["issue"][0]["diagnostics"]:
                failures.append(f"{res_type}?{name}: the diagnostics do not name it")
    assert not failures, failures
