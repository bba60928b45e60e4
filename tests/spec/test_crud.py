"""Spec: create, read, vread, update, patch, delete (R4 RESTful API), on every engine."""

from __future__ import annotations

import pytest
from fhirdata import NHS, observation, patient

FHIR = "application/fhir+json"


def create(client, resource) -> dict:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert r.status_code == 201, r.text
    return r.json()


def test_create_assigns_id_version_and_headers(client):
    r = client.post("/fhir/Patient", json=patient())
    assert r.status_code == 201
    body = r.json()
    assert r.headers["content-type"].startswith(FHIR)
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("Z")
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"] == f"http://testserver/fhir/Patient/{body['id']}/_history/1"
    assert body["name"][0]["family"] == "Smith"


def test_create_ignores_client_id(client):
    body = create(client, patient(id="chosen-by-client"))
    assert body["id"] != "chosen-by-client"


def test_read_returns_stored_resource(client):
    created = create(client, patient())
    r = client.get(f"/fhir/Patient/{created['id']}")
    assert r.status_code == 200
    assert r.json() == created
    assert r.headers["etag"] == 'W/"1"'
    assert "last-modified" in r.headers


def test_read_unknown_is_404_outcome(client):
    r = client.get("/fhir/Patient/does-not-exist")
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"
    assert r.json()["issue"][0]["code"] == "not-found"


def test_unsupported_type_is_404(client):
    r = client.get("/fhir/Spaceship/1")
    assert r.status_code == 404
    assert "Spaceship" in r.json()["issue"][0]["diagnostics"]


def test_update_creates_new_version_and_keeps_history(client):
    created = create(client, patient())
    changed = {**created, "gender": "other"}
    r = client.put(f"/fhir/Patient/{created['id']}", json=changed)
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] == "2"
    assert client.get(f"/fhir/Patient/{created['id']}").json()["gender"] == "other"
    old = client.get(f"/fhir/Patient/{created['id']}/_history/1")
    assert old.status_code == 200 and old.json()["gender"] == "female"
    assert client.get(f"/fhir/Patient/{created['id']}/_history/9").status_code == 404


def test_update_as_create_uses_client_id(client):
    r = client.put("/fhir/Patient/p-123", json=patient(id="p-123"))
    assert r.status_code == 201
    assert r.json()["id"] == "p-123"
    assert client.get("/fhir/Patient/p-123").status_code == 200


def test_update_id_mismatch_is_400(client):
    r = client.put("/fhir/Patient/a", json=patient(id="b"))
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Patient.id"]


def test_update_without_id_is_400(client):
    assert client.put("/fhir/Patient/a", json=patient()).status_code == 400


def test_if_match_prevents_lost_update(client):
    created = create(client, patient())
    url = f"/fhir/Patient/{created['id']}"
    ok = client.put(url, json={**created, "gender": "male"}, headers={"If-Match": 'W/"1"'})
    assert ok.status_code == 200
    lost = client.put(url, json={**created, "gender": "other"}, headers={"If-Match": 'W/"1"'})
    assert lost.status_code == 412
    assert lost.json()["resourceType"] == "OperationOutcome"
    assert client.get(url).json()["gender"] == "male"


def test_delete_keeps_history_and_reads_410(client):
    created = create(client, patient())
    url = f"/fhir/Patient/{created['id']}"
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 410
    assert client.get(f"{url}/_history/1").status_code == 200
    hist = client.get(f"{url}/_history").json()
    assert [e["request"]["method"] for e in hist["entry"]] == ["DELETE", "POST"]
    # deleting again is harmless; a search no longer finds it
    assert client.delete(url).status_code == 204
    assert client.get("/fhir/Patient").json()["total"] == 0


def test_delete_unknown_is_404(client):
    assert client.delete("/fhir/Patient/nope").status_code == 404


def test_recreate_after_delete(client):
    created = create(client, patient())
    url = f"/fhir/Patient/{created['id']}"
    client.delete(url)
    r = client.put(url, json=created)
    assert r.status_code == 201
    assert r.json()["meta"]["versionId"] == "3"


def test_json_patch(client):
    created = create(client, patient())
    url = f"/fhir/Patient/{created['id']}"
    ops = [{"op": "replace", "path": "/gender", "value": "male"},
           {"op": "add", "path": "/name/0/given/-", "value": "Anne"}]  # fmt: skip
    r = client.patch(url, content=__import__("json").dumps(ops),
                     headers={"Content-Type": "application/json-patch+json"})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["gender"] == "male" and body["name"][0]["given"] == ["Jane", "Anne"]
    assert body["meta"]["versionId"] == "2"
    hist = client.get(f"{url}/_history").json()
    assert len(hist["entry"]) == 2


def test_json_patch_that_breaks_validation_is_422(client):
    created = create(client, patient())
    ops = [{"op": "replace", "path": "/gender", "value": "banana"}]
    r = client.patch(f"/fhir/Patient/{created['id']}", json=ops,
                     headers={"Content-Type": "application/json-patch+json"})  # fmt: skip
    assert r.status_code == 422
    assert client.get(f"/fhir/Patient/{created['id']}").json()["gender"] == "female"


def test_json_patch_with_failing_test_op_is_422(client):
    created = create(client, patient())
    ops = [{"op": "test", "path": "/gender", "value": "male"}]
    r = client.patch(f"/fhir/Patient/{created['id']}", json=ops,
                     headers={"Content-Type": "application/json-patch+json"})  # fmt: skip
    assert r.status_code == 422


def test_patch_with_stale_if_match_is_412(client):
    created = create(client, patient())
    url = f"/fhir/Patient/{created['id']}"
    client.put(url, json={**created, "gender": "male"})
    ops = [{"op": "replace", "path": "/gender", "value": "other"}]
    r = client.patch(url, json=ops, headers={"If-Match": 'W/"1"',
                                              "Content-Type": "application/json-patch+json"})  # fmt: skip
    assert r.status_code == 412


def test_conditional_create(client):
    body = patient()
    criteria = f"identifier={NHS}|9990000018"
    first = client.post("/fhir/Patient", json=body, headers={"If-None-Exist": criteria})
    assert first.status_code == 201
    again = client.post("/fhir/Patient", json=body, headers={"If-None-Exist": criteria})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    client.post("/fhir/Patient", json=patient(family="Other"))
    client.post("/fhir/Patient", json=patient(family="Other"))
    many = client.post("/fhir/Patient", json=body, headers={"If-None-Exist": "family=Other"})
    assert many.status_code == 412


def test_conditional_update(client):
    criteria = f"identifier={NHS}|9990000018"
    r = client.put(f"/fhir/Patient?{criteria}", json=patient())
    assert r.status_code == 201
    pid = r.json()["id"]
    r2 = client.put(f"/fhir/Patient?{criteria}", json=patient(gender="male"))
    assert r2.status_code == 200 and r2.json()["id"] == pid and r2.json()["gender"] == "male"
    client.post("/fhir/Patient", json=patient())  # a second match
    assert client.put(f"/fhir/Patient?{criteria}", json=patient()).status_code == 412


def test_conditional_delete(client):
    create(client, patient())
    assert client.delete(f"/fhir/Patient?identifier={NHS}|9990000018").status_code == 204
    assert client.get("/fhir/Patient").json()["total"] == 0


def test_prefer_return_minimal(client):
    r = client.post("/fhir/Patient", json=patient(), headers={"Prefer": "return=minimal"})
    assert r.status_code == 201 and r.content == b"" and "location" in r.headers


def test_meta_source_is_recorded_and_searchable(client):
    from clients import TEST_SOURCE

    created = create(client, patient(meta={"source": TEST_SOURCE}))
    assert created["meta"]["source"] == TEST_SOURCE
    unsaid = create(client, patient())  # the writer's system is filled in
    assert unsaid["meta"]["source"] == TEST_SOURCE
    found = client.get("/fhir/Patient", params={"_source": TEST_SOURCE}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [created["id"], unsaid["id"]]


def test_a_source_system_may_not_write_as_another(client):
    r = client.post(
        "/fhir/Patient", json=patient(meta={"source": "https://example.nhs.uk/gp-system"})
    )
    assert r.status_code == 403
    assert "meta.source" in r.json()["issue"][0]["diagnostics"]
    assert client.get("/fhir/Patient").json()["total"] == 0


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_method_not_allowed_is_405(client, method):
    r = getattr(client, method)("/fhir/metadata")
    assert r.status_code == 405
    assert r.json()["resourceType"] == "OperationOutcome"


def test_invalid_resource_is_422_with_path(client):
    r = client.post("/fhir/Observation", json=observation("x", status="done"))
    assert r.status_code == 422
    issue = r.json()["issue"][0]
    assert issue["expression"] == ["Observation.status"]


def test_bad_nhs_number_is_422(client):
    r = client.post("/fhir/Patient", json=patient(nhs="9990000019"))
    assert r.status_code == 422
    assert r.json()["issue"][0]["expression"] == ["Patient.identifier[0].value"]


def test_malformed_json_is_400(client):
    r = client.post("/fhir/Patient", content=b"{not json", headers={"Content-Type": FHIR})
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["issue"][0]["diagnostics"]


def test_wrong_type_for_endpoint_is_400(client):
    r = client.post("/fhir/Observation", json=patient())
    assert r.status_code == 400


def test_xml_is_refused(client):
    r = client.post(
        "/fhir/Patient", content=b"<Patient/>", headers={"Content-Type": "application/fhir+xml"}
    )
    assert r.status_code == 415
    assert (
        client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"}).status_code == 406
    )


def test_vread_of_deleted_version_is_410(client):
    created = create(client, patient())
    client.delete(f"/fhir/Patient/{created['id']}")
    assert client.get(f"/fhir/Patient/{created['id']}/_history/2").status_code == 410
