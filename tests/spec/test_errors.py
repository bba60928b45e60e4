"""Spec: every error status the API answers, each as an OperationOutcome, on every engine.

Each case is (method, path, body, headers) -> (status, issue code(s), a piece of the
diagnostics). The response must be ``application/fhir+json``, an OperationOutcome with an
error issue whose diagnostics say what was wrong.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from fhirdata import NHS, observation, patient

FHIR = "application/fhir+json"
PATCH = {"Content-Type": "application/json-patch+json"}
REPLACE_GENDER = [{"op": "replace", "path": "/gender", "value": "other"}]


@pytest.fixture
def data(client):
    """p1 (version 1), gone (deleted) and two Patients with family Twin."""
    for res in (patient(id="p1"), patient("Gone", nhs="9990000026", id="gone"),
                patient("Twin", "A", nhs="9990000034", id="twin-a"),
                patient("Twin", "B", nhs="9990000042", id="twin-b")):  # fmt: skip
        assert client.put(f"/fhir/Patient/{res['id']}", json=res).status_code == 201
    assert client.delete("/fhir/Patient/gone").status_code == 204
    return client


def _same_twice() -> dict:
    put = {"resource": patient(id="p1"), "request": {"method": "PUT", "url": "Patient/p1"}}
    return {"resourceType": "Bundle", "type": "transaction", "entry": [put, put]}


def _no_status() -> dict:
    return {k: v for k, v in observation("p1").items() if k != "status"}


# (id, method, path, json body or raw bytes, headers, status, issue codes, diagnostics piece)
CASES = [
    # 400 Bad Request
    ("malformed-json", "POST", "/fhir/Patient", b"{not json", {"Content-Type": FHIR}, 400, {"invalid"}, "not valid JSON"),
    ("empty-body", "POST", "/fhir/Patient", b"", {"Content-Type": FHIR}, 400, {"invalid"}, "no body"),
    ("body-not-an-object", "POST", "/fhir/Patient", [1, 2], None, 400, {"invalid", "structure"}, "JSON object"),
    ("wrong-type-for-endpoint", "POST", "/fhir/Observation", patient(), None, 400, {"invalid"}, "Patient"),
    ("unknown-search-param", "GET", "/fhir/Patient?colour=blue", None, None, 400, {"invalid"}, "colour"),
    ("bad-search-value", "GET", "/fhir/Patient?birthdate=yesterday", None, None, 400, {"invalid"}, "yesterday"),
    ("bad-modifier", "GET", "/fhir/Patient?family:fuzzy=x", None, None, 400, {"invalid"}, "fuzzy"),
    ("bad-count", "GET", "/fhir/Patient?_count=lots", None, None, 400, {"invalid"}, "_count"),
    ("negative-count", "GET", "/fhir/Patient?_count=-5", None, None, 400, {"invalid"}, "_count"),
    ("bad-sort", "GET", "/fhir/Patient?_sort=colour", None, None, 400, {"invalid"}, "colour"),
    ("unsupported-param", "GET", "/fhir/Patient?_text=x", None, None, 400, {"invalid"}, "_text"),
    ("composite-param", "GET", "/fhir/Observation?code-value-quantity=x", None, None, 400, {"invalid"}, "code-value-quantity"),
    ("read-param", "GET", "/fhir/Patient/p1?colour=blue", None, None, 400, {"invalid"}, "colour"),
    ("id-mismatch", "PUT", "/fhir/Patient/p1", patient(id="p2"), None, 400, {"invalid"}, "does not match"),
    ("update-without-id", "PUT", "/fhir/Patient/p1", patient(), None, 400, {"invalid"}, "id"),
    ("bad-if-match", "PUT", "/fhir/Patient/p1", patient(id="p1"), {"If-Match": "banana"}, 400, {"invalid"}, "If-Match"),
    ("patch-not-an-array", "PATCH", "/fhir/Patient/p1", {"op": "replace"}, PATCH, 400, {"invalid"}, "array"),
    ("not-a-bundle", "POST", "/fhir", patient(), None, 400, {"invalid"}, "Bundle"),
    ("conditional-without-criteria", "PUT", "/fhir/Patient?_count=1", patient(), None, 400, {"invalid"}, "criterion"),
    ("history-at", "GET", "/fhir/Patient/_history?_at=2020", None, None, 400, {"invalid"}, "_at"),
    # 404 Not Found
    ("unknown-id", "GET", "/fhir/Patient/nobody", None, None, 404, {"not-found"}, "Patient/nobody"),
    ("unknown-type", "GET", "/fhir/Spaceship", None, None, 404, {"not-found"}, "Spaceship"),
    ("unknown-type-read", "GET", "/fhir/Spaceship/1", None, None, 404, {"not-found"}, "Spaceship"),
    ("unknown-type-create", "POST", "/fhir/Spaceship", {"resourceType": "Spaceship"}, None, 404, {"not-found"}, "Spaceship"),
    ("unknown-version", "GET", "/fhir/Patient/p1/_history/9", None, None, 404, {"not-found"}, "9"),
    ("unknown-route", "GET", "/fhir/Patient/p1/_history/1/extra", None, None, 404, {"not-found"}, "/fhir/Patient/p1/_history/1/extra"),
    ("outside-fhir", "GET", "/nowhere", None, None, 404, {"not-found"}, "/nowhere"),
    ("delete-unknown", "DELETE", "/fhir/Patient/nobody", None, None, 404, {"not-found"}, "Patient/nobody"),
    ("patch-unknown", "PATCH", "/fhir/Patient/nobody", REPLACE_GENDER, PATCH, 404, {"not-found"}, "Patient/nobody"),
    ("everything-unknown", "GET", "/fhir/Patient/nobody/$everything", None, None, 404, {"not-found"}, "Patient/nobody"),
    # 405 Method Not Allowed
    ("delete-metadata", "DELETE", "/fhir/metadata", None, None, 405, {"not-supported"}, "DELETE"),
    ("post-metadata", "POST", "/fhir/metadata", {}, None, 405, {"not-supported"}, "POST"),
    ("put-type-without-criteria", "PUT", "/fhir/Patient", patient(), None, 405, {"not-supported"}, "criteria"),
    ("delete-type-without-criteria", "DELETE", "/fhir/Patient", None, None, 405, {"not-supported"}, "criteria"),
    ("patch-type", "PATCH", "/fhir/Patient", REPLACE_GENDER, PATCH, 405, {"not-supported"}, "PATCH"),
    ("delete-system", "DELETE", "/fhir", None, None, 405, {"not-supported"}, "DELETE"),
    # 406 / 415: JSON only
    ("accept-xml", "GET", "/fhir/Patient/p1", None, {"Accept": "application/fhir+xml"}, 406, {"not-supported"}, "JSON"),
    ("format-xml", "GET", "/fhir/Patient?_format=xml", None, None, 406, {"not-supported"}, "JSON"),
    ("content-type-xml", "POST", "/fhir/Patient", b"<Patient/>", {"Content-Type": "application/fhir+xml"}, 415, {"not-supported"}, "application/fhir+xml"),
    # 409 Conflict
    ("transaction-same-resource-twice", "POST", "/fhir", _same_twice(), None, 409, {"conflict"}, "Patient/p1"),
    # 410 Gone
    ("read-deleted", "GET", "/fhir/Patient/gone", None, None, 410, {"deleted"}, "Patient/gone"),
    ("vread-deletion", "GET", "/fhir/Patient/gone/_history/2", None, None, 410, {"deleted"}, "Patient/gone"),
    ("patch-deleted", "PATCH", "/fhir/Patient/gone", REPLACE_GENDER, PATCH, 410, {"deleted"}, "Patient/gone"),
    # 412 Precondition Failed
    ("if-match-mismatch", "PUT", "/fhir/Patient/p1", patient(id="p1"), {"If-Match": 'W/"7"'}, 412, {"conflict"}, "If-Match"),
    ("if-match-on-deleted", "PUT", "/fhir/Patient/gone", patient(id="gone"), {"If-Match": 'W/"1"'}, 412, {"conflict"}, "If-Match"),
    ("patch-if-match-mismatch", "PATCH", "/fhir/Patient/p1", REPLACE_GENDER, {**PATCH, "If-Match": 'W/"7"'}, 412, {"conflict"}, "If-Match"),
    ("ambiguous-conditional-create", "POST", "/fhir/Patient", patient(), {"If-None-Exist": "family=twin"}, 412, {"conflict"}, "matched 2"),
    ("ambiguous-conditional-update", "PUT", "/fhir/Patient?family=twin", patient(), None, 412, {"conflict"}, "matched 2"),
    ("ambiguous-conditional-delete", "DELETE", "/fhir/Patient?family=twin", None, None, 412, {"conflict"}, "matched 2"),
    # 422 Unprocessable Entity
    ("bad-code", "POST", "/fhir/Patient", patient(gender="banana"), None, 422, {"code-invalid"}, "administrative-gender"),
    ("bad-nhs-number", "POST", "/fhir/Patient", patient(nhs="9990000019"), None, 422, None, "NHS"),
    ("unknown-element", "POST", "/fhir/Patient", {**patient(), "colour": "blue"}, None, 422, {"structure"}, "Unknown element"),
    ("missing-required", "POST", "/fhir/Observation", _no_status(), None, 422, {"required"}, "missing"),
    ("bad-date", "POST", "/fhir/Patient", patient(birth="1950-02-30"), None, 422, None, ""),
    ("patch-breaks-validation", "PATCH", "/fhir/Patient/p1", [{"op": "replace", "path": "/gender", "value": "banana"}], PATCH, 422, {"code-invalid"}, "administrative-gender"),
    ("patch-test-fails", "PATCH", "/fhir/Patient/p1", [{"op": "test", "path": "/gender", "value": "male"}], PATCH, 422, {"processing"}, "Patch"),
    ("patch-changes-id", "PATCH", "/fhir/Patient/p1", [{"op": "replace", "path": "/id", "value": "p2"}], PATCH, 422, {"processing"}, "id"),
]  # fmt: skip

# The element path the OperationOutcome must name (validation failures, id mismatch).
EXPRESSIONS = {
    "bad-code": "Patient.gender",
    "bad-nhs-number": "Patient.identifier[0].value",
    "unknown-element": "Patient.colour",
    "missing-required": "Observation.status",
    "bad-date": "Patient.birthDate",
    "patch-breaks-validation": "Patient.gender",
    "id-mismatch": "Patient.id",
}


def _request(client, method, path, body, headers):
    kwargs: dict = {"headers": headers or {}}
    if isinstance(body, bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["content"] = json.dumps(body).encode()
        kwargs["headers"] = {"Content-Type": FHIR, **kwargs["headers"]}
    return client.request(method, path, **kwargs)


def _problems(client, case) -> list[str]:
    """What is wrong with the answer to one case (empty when it is right)."""
    name, method, path, body, headers, status, codes, says = case
    r = _request(client, method, path, body, headers)
    if r.status_code != status:
        return [f"{name}: {method} {path} -> {r.status_code}, not {status}: {r.text[:300]}"]
    problems = []
    if not r.headers.get("content-type", "").startswith(FHIR):
        problems.append(f"content-type {r.headers.get('content-type')}")
    outcome = r.json()
    issues = outcome.get("issue") or [{}]
    issue = issues[0]
    diagnostics = " ".join(i.get("diagnostics", "") for i in issues)
    if outcome.get("resourceType") != "OperationOutcome":
        problems.append("not an OperationOutcome")
    if issue.get("severity") not in ("error", "fatal"):
        problems.append(f"severity {issue.get('severity')}")
    if codes and issue.get("code") not in codes:
        problems.append(f"issue code {issue.get('code')}, not one of {sorted(codes)}")
    if len(issue.get("diagnostics", "")) <= 5:
        problems.append("no diagnostics saying what was wrong")
    if says not in diagnostics:
        problems.append(f"diagnostics {diagnostics!r} do not mention {says!r}")
    expressions = [e for i in issues for e in i.get("expression", [])]
    if name in EXPRESSIONS and EXPRESSIONS[name] not in expressions:
        problems.append(f"expression {expressions}, wanted {EXPRESSIONS[name]}")
    return [f"{name}: {p}" for p in problems]


# One test per status (a store per test is the slow part); failures name every bad case.
@pytest.mark.parametrize("status", sorted({c[5] for c in CASES}))
def test_error_status_is_an_operation_outcome(data, status):
    cases = [c for c in CASES if c[5] == status]
    assert cases
    problems = [p for case in cases for p in _problems(data, case)]
    assert not problems, "\n".join(problems)


def test_every_validation_problem_is_reported_at_once(client):
    bad = {**patient(gender="banana", nhs="9990000019"), "colour": "blue"}
    r = client.post("/fhir/Patient", json=bad)
    assert r.status_code == 422
    expressions = {e for i in r.json()["issue"] for e in i.get("expression", [])}
    assert {"Patient.gender", "Patient.identifier[0].value", "Patient.colour"} <= expressions


def test_errors_change_nothing(data):
    """After every failing request above, the data is as it was."""
    client = data
    before = client.get("/fhir/_history", params={"_count": 1000}).json()
    for _id, method, path, body, headers, *_ in CASES:
        _request(client, method, path, body, headers)
    after = client.get("/fhir/_history", params={"_count": 1000}).json()
    assert after.get("entry") == before.get("entry")


def test_diagnostics_do_not_echo_resource_values(client):
    # Validation messages name the element, never its (possibly patient-identifying) value.
    r = client.post("/fhir/Patient", json=patient(family="Zebedee-Quux", gender="Qwerty-Gender"))
    assert r.status_code == 422
    assert "Qwerty-Gender" not in r.text
    r = client.post("/fhir/Patient", json=patient(nhs="9990000019"))
    assert "9990000019" not in r.text


def test_internal_error_is_500_and_leaks_nothing(client, monkeypatch):
    secret = f"{NHS}|9990000018 Jane Smith"

    def explode(*_args, **_kwargs):
        raise RuntimeError(f"database on fire while reading {secret}")

    monkeypatch.setattr(client.app.state.store, "read", explode)
    quiet = TestClient(client.app, raise_server_exceptions=False)
    r = quiet.get("/fhir/Patient/p1", headers={"Authorization": client.headers["Authorization"]})
    assert r.status_code == 500
    assert r.headers["content-type"].startswith(FHIR)
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "fatal" and body["issue"][0]["code"] == "exception"
    assert "9990000018" not in r.text and "Jane" not in r.text and "fire" not in r.text
