"""Spec: batch and transaction Bundles (R4 3.1.0.11 and 3.1.0.12), on every engine.

A transaction is all or nothing: when one entry fails the whole Bundle is refused with that
entry's status and an OperationOutcome naming it, and nothing is stored. Entries are processed
DELETE, POST, PUT/PATCH, GET; ``urn:uuid:`` fullUrls are resolved wherever they are referenced;
the response has one entry per request entry, in request order. A batch runs each entry on its
own and reports each entry's outcome.
"""

from __future__ import annotations

import base64
import json

import pytest
from fhirdata import NHS, observation, patient

FHIR = "application/fhir+json"
URN_PAT = "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"
URN_OBS = "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059"


def bundle(kind: str, *entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post_entry(resource: dict, full_url: str | None = None, **request) -> dict:
    entry: dict = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"], **request}}  # fmt: skip
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def put_entry(url: str, resource: dict, full_url: str | None = None, **request) -> dict:
    entry: dict = {"resource": resource, "request": {"method": "PUT", "url": url, **request}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def delete_entry(url: str) -> dict:
    return {"request": {"method": "DELETE", "url": url}}


def get_entry(url: str) -> dict:
    return {"request": {"method": "GET", "url": url}}


def patch_entry(url: str, ops: list, **request) -> dict:
    data = base64.b64encode(json.dumps(ops).encode()).decode()
    binary = {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data}
    return {"resource": binary, "request": {"method": "PATCH", "url": url, **request}}


def send(client, body: dict, status: int = 200) -> dict:
    r = client.post("/fhir", json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(FHIR)
    return r.json()


def put(client, resource: dict) -> dict:
    r = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert r.status_code in (200, 201), r.text
    return r.json()


def search_ids(client, query: str) -> list[str]:
    r = client.get(f"/fhir/{query}")
    assert r.status_code == 200, r.text
    return sorted(e["resource"]["id"] for e in r.json().get("entry", []))


def system_history(client) -> list[tuple[str, str, str]]:
    """(method, type, id) of every version ever written, newest first."""
    r = client.get("/fhir/_history", params={"_count": 1000})
    assert r.status_code == 200, r.text
    out = []
    for e in r.json().get("entry", []):
        res_type, res_id = e["fullUrl"].split("/")[-2:]
        out.append((e["request"]["method"], res_type, res_id))
    return out


def id_of(location: str) -> str:
    # "Patient/<id>/_history/<v>" (relative or absolute)
    return location.split("/_history/")[0].rsplit("/", 1)[-1]


# -- transactions: success --------------------------------------------------------------------
def test_transaction_resolves_urn_uuid_references(client):
    obs = observation("ignored")
    obs["subject"] = {"reference": URN_PAT}
    obs["performer"] = [{"reference": URN_PAT}]
    body = bundle(
        "transaction",
        # The Observation comes first in the Bundle but refers to the Patient created after it.
        post_entry(obs, URN_OBS),
        post_entry(patient(), URN_PAT),
    )
    result = send(client, body)
    assert result["resourceType"] == "Bundle" and result["type"] == "transaction-response"
    obs_entry, pat_entry = result["entry"]
    for entry, res_type in ((obs_entry, "Observation"), (pat_entry, "Patient")):
        response = entry["response"]
        assert response["status"].startswith("201")
        assert response["etag"] == 'W/"1"'
        assert response["location"].startswith(f"{res_type}/")
        assert response["location"].endswith("/_history/1")
        assert entry["resource"]["resourceType"] == res_type
        assert entry["resource"]["id"] == id_of(response["location"])
    pid, oid = id_of(pat_entry["response"]["location"]), id_of(obs_entry["response"]["location"])
    assert not pid.startswith("urn") and len(pid) <= 64
    stored = client.get(f"/fhir/Observation/{oid}").json()
    assert stored["subject"] == {"reference": f"Patient/{pid}"}
    assert stored["performer"] == [{"reference": f"Patient/{pid}"}]
    # the index holds the resolved reference too
    assert search_ids(client, f"Observation?subject=Patient/{pid}") == [oid]
    assert search_ids(client, f"Observation?performer=Patient/{pid}") == [oid]


def test_transaction_resolves_urns_in_updates_too(client):
    obs = {**observation("ignored", value=50), "id": "obs-1", "subject": {"reference": URN_PAT}}
    result = send(client, bundle("transaction", put_entry("Observation/obs-1", obs), post_entry(patient(), URN_PAT)))  # fmt: skip
    pid = id_of(result["entry"][1]["response"]["location"])
    assert result["entry"][0]["response"]["status"].startswith("201")
    assert result["entry"][0]["response"]["location"] == "Observation/obs-1/_history/1"
    assert client.get("/fhir/Observation/obs-1").json()["subject"]["reference"] == f"Patient/{pid}"


def test_transaction_processing_order_is_delete_post_put_get(client):
    old = put(client, patient("Order", "Old", id="old"))
    body = bundle(
        "transaction",
        get_entry("Patient?family=order&_sort=given"),
        put_entry("Patient/put-one", patient("Order", "Put", id="put-one")),
        post_entry(patient("Order", "Posted"), URN_PAT),
        delete_entry(f"Patient/{old['id']}"),
        get_entry("Patient/put-one"),
    )
    result = send(client, body)
    entries = result["entry"]
    assert len(entries) == 5
    # responses in request order
    search, put_resp, post_resp, del_resp, read = entries
    assert search["response"]["status"].startswith("200")
    assert put_resp["response"]["status"].startswith("201")
    assert post_resp["response"]["status"].startswith("201")
    assert del_resp["response"]["status"][:3] in ("200", "204")
    assert read["response"]["status"].startswith("200")
    # GET runs last: it sees the PUT and the POST, and not the deleted Patient
    found = search["resource"]
    assert found["resourceType"] == "Bundle" and found["type"] == "searchset"
    posted = id_of(post_resp["response"]["location"])
    assert [e["resource"]["id"] for e in found["entry"]] == [posted, "put-one"]
    assert read["resource"]["id"] == "put-one" and read["resource"]["meta"]["versionId"] == "1"
    # the versions were written DELETE, then POST, then PUT (history is newest first)
    assert system_history(client)[:3] == [
        ("PUT", "Patient", "put-one"),
        ("POST", "Patient", posted),
        ("DELETE", "Patient", "old"),
    ]


def test_transaction_vread_sees_the_transactions_own_versions(client):
    body = bundle("transaction", put_entry("Patient/new", patient(id="new")), get_entry("Patient/new/_history/1"))  # fmt: skip
    result = send(client, body)
    assert result["entry"][1]["resource"]["id"] == "new"


def test_transaction_conditional_create_maps_urn_to_the_existing_resource(client):
    existing = put(client, patient(id="known"))
    obs = {**observation("ignored"), "subject": {"reference": URN_PAT}}
    criteria = f"identifier={NHS}|9990000018"
    result = send(client, bundle("transaction", post_entry(patient(), URN_PAT, ifNoneExist=criteria), post_entry(obs)))  # fmt: skip
    pat_resp, obs_resp = (e["response"] for e in result["entry"])
    assert pat_resp["status"].startswith("200")  # found, not created
    assert id_of(pat_resp["location"]) == "known"
    assert pat_resp["etag"] == f'W/"{existing["meta"]["versionId"]}"'
    oid = id_of(obs_resp["location"])
    assert client.get(f"/fhir/Observation/{oid}").json()["subject"]["reference"] == "Patient/known"
    assert search_ids(client, "Patient") == ["known"]
    # no match: the same entry creates
    other = f"identifier={NHS}|9990000026"
    result = send(client, bundle("transaction", post_entry(patient(nhs="9990000026"), URN_PAT, ifNoneExist=other)))  # fmt: skip
    assert result["entry"][0]["response"]["status"].startswith("201")
    assert len(search_ids(client, "Patient")) == 2


def _references_resolve(client, resource: dict) -> None:
    for key in ("subject", "patient"):
        if key in resource:
            r = client.get(f"/fhir/{resource[key]['reference']}")
            assert r.status_code == 200, f"{key} -> {resource[key]['reference']}: {r.status_code}"


def test_transaction_conditional_create_is_decided_once(client):
    # entry[0] creates a match for entry[1]'s criteria; entry[1] was decided before the
    # transaction started (no match: create), and what refers to it must find it.
    criteria = f"identifier={NHS}|9990000018"
    obs = {**observation("ignored"), "subject": {"reference": URN_OBS}}
    body = bundle(
        "transaction",
        post_entry(patient("First"), URN_PAT),
        post_entry(patient("Second"), URN_OBS, ifNoneExist=criteria),
        post_entry(obs),
    )
    result = send(client, body)
    oid = id_of(result["entry"][2]["response"]["location"])
    stored = client.get(f"/fhir/Observation/{oid}").json()
    _references_resolve(client, stored)
    second = id_of(result["entry"][1]["response"]["location"])
    assert stored["subject"]["reference"] == f"Patient/{second}"


def test_transaction_conditional_create_matching_a_deleted_resource_is_refused(client):
    # entry[1]'s criteria match Patient/a, which entry[0] deletes: urn:uuid references to
    # entry[1] would point at a deleted resource.
    put(client, patient(id="a"))
    obs = {**observation("ignored"), "subject": {"reference": URN_PAT}}
    body = bundle(
        "transaction",
        delete_entry("Patient/a"),
        post_entry(patient(), URN_PAT, ifNoneExist=f"identifier={NHS}|9990000018"),
        post_entry(obs),
    )
    r = client.post("/fhir", json=body)
    assert r.status_code == 409, r.text
    assert "Patient/a" in r.json()["issue"][0]["diagnostics"]
    assert client.get("/fhir/Patient/a").status_code == 200
    assert search_ids(client, "Observation") == []


def test_transaction_conditional_update_is_decided_once(client):
    criteria = f"Patient?identifier={NHS}|9990000018"
    obs = {**observation("ignored"), "subject": {"reference": URN_OBS}}
    body = bundle(
        "transaction",
        post_entry(patient("First"), URN_PAT),
        put_entry(criteria, patient("Second"), URN_OBS),
        post_entry(obs),
    )
    result = send(client, body)
    assert [e["response"]["status"][:3] for e in result["entry"]] == ["201", "201", "201"]
    oid = id_of(result["entry"][2]["response"]["location"])
    stored = client.get(f"/fhir/Observation/{oid}").json()
    _references_resolve(client, stored)
    assert (
        stored["subject"]["reference"]
        == f"Patient/{id_of(result['entry'][1]['response']['location'])}"
    )
    assert len(search_ids(client, "Patient")) == 2


def test_transaction_conditional_update(client):
    put(client, patient(id="known", gender="female"))
    criteria = f"Patient?identifier={NHS}|9990000018"
    obs = {**observation("ignored"), "subject": {"reference": URN_PAT}}
    body = bundle(
        "transaction", put_entry(criteria, patient(gender="male"), URN_PAT), post_entry(obs)
    )
    result = send(client, body)
    resp = result["entry"][0]["response"]
    assert resp["status"].startswith("200") and resp["location"] == "Patient/known/_history/2"
    assert resp["etag"] == 'W/"2"'
    assert client.get("/fhir/Patient/known").json()["gender"] == "male"
    oid = id_of(result["entry"][1]["response"]["location"])
    assert client.get(f"/fhir/Observation/{oid}").json()["subject"]["reference"] == "Patient/known"
    # no match creates
    nobody = f"Patient?identifier={NHS}|9990000026"
    result = send(client, bundle("transaction", put_entry(nobody, patient(nhs="9990000026"))))
    assert result["entry"][0]["response"]["status"].startswith("201")
    assert len(search_ids(client, "Patient")) == 2


def test_transaction_conditional_delete(client):
    put(client, patient(id="known"))
    put(client, patient("Keep", nhs="9990000026", id="kept"))
    result = send(
        client, bundle("transaction", delete_entry(f"Patient?identifier={NHS}|9990000018"))
    )
    assert result["entry"][0]["response"]["status"][:3] in ("200", "204")
    assert client.get("/fhir/Patient/known").status_code == 410
    assert search_ids(client, "Patient") == ["kept"]


def test_transaction_patch_via_binary(client):
    put(client, patient(id="p1"))
    ops = [{"op": "replace", "path": "/gender", "value": "other"},
           {"op": "add", "path": "/name/0/given/-", "value": "Anne"}]  # fmt: skip
    result = send(client, bundle("transaction", patch_entry("Patient/p1", ops, ifMatch='W/"1"')))
    resp = result["entry"][0]["response"]
    assert resp["status"].startswith("200") and resp["etag"] == 'W/"2"'
    stored = client.get("/fhir/Patient/p1").json()
    assert stored["gender"] == "other" and stored["name"][0]["given"] == ["Jane", "Anne"]
    # a stale ifMatch on the patch refuses the transaction
    ops2 = [{"op": "replace", "path": "/gender", "value": "male"}]
    r = client.post(
        "/fhir", json=bundle("transaction", patch_entry("Patient/p1", ops2, ifMatch='W/"1"'))
    )
    assert r.status_code == 412
    assert client.get("/fhir/Patient/p1").json()["gender"] == "other"


@pytest.mark.parametrize(
    "resource",
    [
        {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": "bm90IGpzb24="},
        {"resourceType": "Parameters", "parameter": []},
    ],
    ids=["binary-not-json", "not-a-binary"],
)  # fmt: skip
def test_transaction_bad_patch_is_400(client, resource):
    put(client, patient(id="p1"))
    body = bundle(
        "transaction", {"resource": resource, "request": {"method": "PATCH", "url": "Patient/p1"}}
    )
    r = client.post("/fhir", json=body)
    assert r.status_code == 400, r.text
    assert "entry[0]" in r.json()["issue"][0]["diagnostics"]
    assert client.get("/fhir/Patient/p1").json()["meta"]["versionId"] == "1"


def test_transaction_return_minimal_leaves_out_resources(client):
    r = client.post(
        "/fhir",
        json=bundle("transaction", post_entry(patient())),
        headers={"Prefer": "return=minimal"},
    )
    assert r.status_code == 200
    entry = r.json()["entry"][0]
    assert "resource" not in entry and entry["response"]["status"].startswith("201")
    assert entry["response"]["location"].startswith("Patient/")


def test_empty_transaction_and_batch(client):
    for kind in ("transaction", "batch"):
        result = send(client, {"resourceType": "Bundle", "type": kind})
        assert result["type"] == f"{kind}-response" and result.get("entry", []) == []


# -- transactions: atomicity ------------------------------------------------------------------
def _bad_entry(case: str) -> tuple[dict, int, str | None]:
    """The failing entry (added as entry[3]), the status and the expression expected."""
    if case == "invalid-resource":
        return post_entry(patient(gender="banana")), 422, "Bundle.entry[3].resource.gender"
    if case == "invalid-nhs-number":
        return post_entry(patient(nhs="9990000019")), 422, "Bundle.entry[3].resource.identifier[0].value"  # fmt: skip
    if case == "id-mismatch":
        return put_entry("Patient/b", patient(id="zzz")), 400, None
    if case == "unknown-id":
        return delete_entry("Patient/nobody"), 404, None
    if case == "read-unknown":
        return get_entry("Patient/nobody"), 404, None
    if case == "bad-search":
        return get_entry("Patient?colour=blue"), 400, None
    if case == "if-match-mismatch":
        return put_entry("Patient/b", patient("Twin", id="b"), ifMatch='W/"7"'), 412, None
    if case == "ambiguous-conditional-create":
        return post_entry(patient(), ifNoneExist="family=twin"), 412, None
    if case == "ambiguous-conditional-update":
        return put_entry("Patient?family=twin", patient()), 412, None
    if case == "ambiguous-conditional-delete":
        return delete_entry("Patient?family=twin"), 412, None
    if case == "unresolved-urn":
        obs = {**observation("x"), "subject": {"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"}}  # fmt: skip
        return post_entry(obs), 400, "Bundle.entry[3].resource.subject.reference"
    if case == "same-resource-twice":
        return put_entry("Patient/a", patient("Twin", id="a")), 409, None
    if case == "unknown-type":
        return get_entry("Spaceship/1"), 400, None
    if case == "no-request":
        return {"resource": patient()}, 400, "Bundle.entry[3].request"
    raise AssertionError(case)


ATOMIC_CASES = [
    "invalid-resource", "invalid-nhs-number", "id-mismatch", "unknown-id", "read-unknown",
    "bad-search", "if-match-mismatch", "ambiguous-conditional-create",
    "ambiguous-conditional-update", "ambiguous-conditional-delete", "unresolved-urn",
    "same-resource-twice", "unknown-type", "no-request",
]  # fmt: skip


def _atomic_problems(client, case: str, before: list) -> list[str]:
    obs = {**observation("ignored"), "subject": {"reference": URN_PAT}}
    bad, status, expression = _bad_entry(case)
    body = bundle(
        "transaction",
        delete_entry("Patient/a"),
        post_entry(patient("New", nhs="9990000034"), URN_PAT),
        post_entry(obs),
        bad,
    )
    r = client.post("/fhir", json=body)
    if r.status_code != status:
        return [f"{case}: {r.status_code}, not {status}: {r.text[:300]}"]
    problems = []
    if not r.headers["content-type"].startswith(FHIR):
        problems.append(f"content-type {r.headers['content-type']}")
    outcome = r.json()
    issue = outcome["issue"][0]
    if outcome["resourceType"] != "OperationOutcome" or issue["severity"] not in ("error", "fatal"):
        problems.append(f"not an error OperationOutcome: {outcome}")
    named = "entry[3]" in issue.get("diagnostics", "") or any(
        e.startswith("Bundle.entry[3]") for e in issue.get("expression", [])
    )
    if not named:
        problems.append(f"the outcome does not name entry[3]: {issue}")
    if expression and issue.get("expression") != [expression]:
        problems.append(f"expression {issue.get('expression')}, not [{expression}]")
    # nothing stored, nothing deleted
    if system_history(client) != before:
        problems.append("the store changed")
    if search_ids(client, "Patient") != ["a", "b"] or search_ids(client, "Observation") != []:
        problems.append("the search index changed")
    return [f"{case}: {p}" for p in problems]


def test_transaction_with_a_failing_entry_stores_nothing(client):
    """Each case: entry[3] fails after a DELETE and two POSTs; nothing may be left of them."""
    put(client, patient("Twin", "A", id="a"))
    put(client, patient("Twin", "B", nhs="9990000026", id="b"))
    before = system_history(client)
    problems = [p for case in ATOMIC_CASES for p in _atomic_problems(client, case, before)]
    assert not problems, "\n".join(problems)
    assert client.get("/fhir/Patient/a").json()["meta"]["versionId"] == "1"


def test_transaction_touching_a_resource_twice_is_409_naming_both_entries(client):
    put(client, patient(id="a"))
    body = bundle("transaction", put_entry("Patient/a", patient(id="a", gender="male")),
                  patch_entry("Patient/a", [{"op": "replace", "path": "/gender", "value": "other"}]))  # fmt: skip
    r = client.post("/fhir", json=body)
    assert r.status_code == 409
    diagnostics = r.json()["issue"][0]["diagnostics"]
    assert "entry[0]" in diagnostics and "entry[1]" in diagnostics and "Patient/a" in diagnostics
    assert client.get("/fhir/Patient/a").json()["gender"] == "female"


def test_transaction_posting_two_resources_with_the_same_fullurl_is_refused(client):
    body = bundle("transaction", post_entry(patient(), URN_PAT), post_entry(patient(nhs="9990000026"), URN_PAT))  # fmt: skip
    r = client.post("/fhir", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[1].fullUrl"]
    assert search_ids(client, "Patient") == []


# -- batch ----------------------------------------------------------------------------------
def test_batch_entries_are_independent(client):
    put(client, patient(id="known"))
    body = bundle(
        "batch",
        post_entry(patient("Okay")),
        post_entry(patient(gender="banana")),
        get_entry("Patient/known"),
        get_entry("Patient?family=smith"),
        delete_entry("Patient/nobody"),
        put_entry("Patient/put-one", patient("Put", id="put-one")),
        {"request": {"method": "FROB", "url": "Patient"}},
    )
    result = send(client, body)
    assert result["type"] == "batch-response"
    statuses = [e["response"]["status"][:3] for e in result["entry"]]
    assert statuses == ["201", "422", "200", "200", "404", "201", "400"]
    created, invalid, read, search, missing, updated, bad_method = result["entry"]
    assert created["resource"]["name"][0]["family"] == "Okay"
    assert created["response"]["etag"] == 'W/"1"'
    for failed, expression in ((invalid, "Bundle.entry[1].resource.gender"), (missing, None),
                               (bad_method, "Bundle.entry[6].request.method")):  # fmt: skip
        oo = failed["response"]["outcome"]
        assert oo["resourceType"] == "OperationOutcome" and oo["issue"][0]["diagnostics"]
        if expression:
            assert oo["issue"][0]["expression"] == [expression]
    assert "resource" not in invalid
    assert read["resource"]["id"] == "known" and read["response"]["etag"] == 'W/"1"'
    assert search["resource"]["type"] == "searchset"
    assert [e["resource"]["id"] for e in search["resource"]["entry"]] == ["known"]
    assert updated["response"]["location"] == "Patient/put-one/_history/1"
    # the failures did not stop the others
    assert sorted(search_ids(client, "Patient")) == sorted(
        ["known", "put-one", id_of(created["response"]["location"])]
    )


def test_batch_does_not_resolve_urns_across_entries(client):
    # R4: entries in a batch must not depend on each other; a dangling urn: is the entry's error
    obs = {**observation("ignored"), "subject": {"reference": URN_PAT}}
    result = send(client, bundle("batch", post_entry(patient(), URN_PAT), post_entry(obs)))
    statuses = [e["response"]["status"][:3] for e in result["entry"]]
    assert statuses[0] == "201"
    assert statuses[1] in ("400", "422")
    assert search_ids(client, "Observation") == []


# -- malformed Bundles ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        patient(),
        [],
        {"resourceType": "Bundle"},
        {"resourceType": "Bundle", "type": "collection", "entry": []},
        {"resourceType": "Bundle", "type": "searchset"},
        {"resourceType": "Bundle", "type": "transaction", "entry": "nope"},
        {"resourceType": "Bundle", "type": "transaction", "entry": ["nope"]},
        {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "GET"}}]},
        {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "POST", "url": "Patient"}}]},
    ],
    ids=["patient", "array", "no-type", "collection", "searchset", "entry-not-array",
         "entry-not-object", "no-url", "post-without-resource"],
)  # fmt: skip
def test_not_a_batch_or_transaction_is_400(client, body):
    r = client.post("/fhir", json=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(FHIR)
    assert r.json()["resourceType"] == "OperationOutcome"
    assert r.json()["issue"][0]["diagnostics"]


def test_bundle_that_is_not_json_is_400(client):
    r = client.post("/fhir", content=b"{nope", headers={"Content-Type": FHIR})
    assert r.status_code == 400
