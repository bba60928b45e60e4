"""Spec: history (R4 3.1.0.9) at instance, type and system level, on every engine.

A history Bundle lists versions newest first; each entry has request.method/url and
response.status (and no resource for a deletion). ``_since`` keeps versions written at or
after an instant; ``_count`` pages with next links. Unknown parameters (``_at`` included: not
supported) are refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fhirdata import observation, patient

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def history(client, path: str, **params) -> dict:
    r = client.get(f"/fhir/{path}", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "history"
    return body


def versions(bundle: dict) -> list[tuple[str, str, str]]:
    """(type/id, version, method) per entry."""
    out = []
    for e in bundle.get("entry", []):
        ref = "/".join(e["fullUrl"].split("/")[-2:])
        out.append((ref, e["response"]["etag"], e["request"]["method"]))
    return out


def instant(entry: dict) -> datetime:
    return datetime.fromisoformat(entry["response"]["lastModified"].replace("Z", "+00:00"))


@pytest.fixture
def lifecycle(client) -> str:
    """Patient p1: created, updated, patched, deleted (versions 1-4); Patient p2 and an
    Observation created after."""
    p = client.put("/fhir/Patient/p1", json=patient(id="p1")).json()
    assert client.put("/fhir/Patient/p1", json={**p, "gender": "male"}).status_code == 200
    ops = [{"op": "replace", "path": "/gender", "value": "other"}]
    r = client.patch("/fhir/Patient/p1", json=ops, headers={"Content-Type": "application/json-patch+json"})  # fmt: skip
    assert r.status_code == 200
    assert client.delete("/fhir/Patient/p1").status_code == 204
    assert client.put("/fhir/Patient/p2", json=patient("Other", id="p2")).status_code == 201
    obs = client.post("/fhir/Observation", json=observation("p2")).json()
    return obs["id"]


def test_instance_history_newest_first_with_request_and_response(client, lifecycle):
    b = history(client, "Patient/p1/_history")
    assert b["total"] == 4
    entries = b["entry"]
    assert [e["response"]["etag"] for e in entries] == ['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']
    methods = [e["request"]["method"] for e in entries]
    assert methods[0] == "DELETE" and methods[1] in ("PATCH", "PUT")
    assert methods[2:] == ["PUT", "PUT"]  # created by PUT
    assert [e["request"]["url"] for e in entries] == ["Patient/p1"] * 4
    statuses = [e["response"]["status"][:3] for e in entries]
    assert statuses[0] in ("200", "204") and statuses[1:] == ["200", "200", "201"]
    assert "resource" not in entries[0]  # a deletion has no resource
    assert [e["resource"]["gender"] for e in entries[1:]] == ["other", "male", "female"]
    for e in entries:
        assert e["fullUrl"] == "http://testserver/fhir/Patient/p1"
        assert INSTANT.match(e["response"]["lastModified"]), e["response"]["lastModified"]
    for e in entries[1:]:
        version = e["resource"]["meta"]["versionId"]
        assert e["response"]["etag"] == f'W/"{version}"'
        assert e["response"]["lastModified"] == e["resource"]["meta"]["lastUpdated"]
        vread = client.get(f"/fhir/Patient/p1/_history/{version}")
        assert vread.status_code == 200 and vread.json() == e["resource"]
    # newest first
    times = [instant(e) for e in entries]
    assert times == sorted(times, reverse=True)


def test_type_and_system_history(client, lifecycle):
    obs_id = lifecycle
    patients = history(client, "Patient/_history")
    assert patients["total"] == 5
    assert {ref for ref, _, _ in versions(patients)} == {"Patient/p1", "Patient/p2"}
    assert versions(patients)[0] == ("Patient/p2", 'W/"1"', "PUT")
    everything = history(client, "_history")
    assert everything["total"] == 6
    assert versions(everything)[0] == (f"Observation/{obs_id}", 'W/"1"', "POST")
    assert versions(everything)[1:] == versions(patients)
    assert history(client, "Condition/_history").get("entry", []) == []


def test_history_of_a_resource_created_by_post(client):
    pid = client.post("/fhir/Patient", json=patient()).json()["id"]
    (entry,) = history(client, f"Patient/{pid}/_history")["entry"]
    assert entry["response"]["status"].startswith("201")
    assert entry["request"] == {"method": "POST", "url": "Patient"}


@pytest.mark.parametrize("path", ["_history", "Patient/_history", "Patient/p1/_history"])
def test_since_keeps_versions_at_or_after_the_instant(client, lifecycle, path):
    full = history(client, path, _count=1000)["entry"]
    for pivot in full:
        since = pivot["response"]["lastModified"]
        got = versions(history(client, path, _since=since, _count=1000))
        expected = [v for v, e in zip(versions({"entry": full}), full, strict=True)
                    if instant(e) >= instant(pivot)]  # fmt: skip
        assert got == expected, since
    assert versions(history(client, path, _since="2000-01-01")) == versions({"entry": full})
    assert history(client, path, _since="9000-01-01").get("entry", []) == []


def test_since_with_a_timezone_offset(client, lifecycle):
    full = history(client, "_history")["entry"]
    oldest = instant(full[-1])
    local = oldest.astimezone(datetime.now(UTC).astimezone().tzinfo).isoformat(
        timespec="milliseconds"
    )
    shifted = oldest.replace(tzinfo=None).isoformat(timespec="milliseconds") + "-02:00"
    assert len(history(client, "_history", _since=local)["entry"]) == len(full)
    # the same wall-clock time two hours west is two hours later: nothing yet
    assert history(client, "_history", _since=shifted).get("entry", []) == []


@pytest.mark.parametrize("path", ["_history", "Patient/_history", "Patient/p1/_history"])
def test_count_pages_with_next_links(client, lifecycle, path):
    full = versions(history(client, path, _count=1000))
    for count in (1, 2, 3):
        pages, url, seen = [], f"/fhir/{path}?_count={count}", 0
        while url:
            r = client.get(url)
            assert r.status_code == 200, r.text
            page = r.json()
            assert len(page.get("entry", [])) <= count
            pages += versions(page)
            links = {link["relation"]: link["url"] for link in page["link"]}
            url = links.get("next", "").replace("http://testserver", "")
            seen += 1
            assert seen <= len(full) + 1, "paging does not end"
        assert pages == full, count
        assert len(set(pages)) == len(pages)


def test_history_of_unknown_resource_is_404(client, lifecycle):
    for path in ("Patient/nobody/_history", "Spaceship/_history", "Spaceship/1/_history"):
        r = client.get(f"/fhir/{path}")
        assert r.status_code == 404, path
        assert r.json()["resourceType"] == "OperationOutcome"


def test_history_of_deleted_resource_is_still_available(client, lifecycle):
    assert client.get("/fhir/Patient/p1").status_code == 410
    assert len(history(client, "Patient/p1/_history")["entry"]) == 4


@pytest.mark.parametrize(
    "query",
    [
        "_at=2020",
        "_at=ge2020-01-01",
        "colour=blue",
        "_count=lots",
        "_count=0",
        "_count=-1",
        "_since=yesterday",
        "_since=2020-13",
        "_sort=_lastUpdated",
    ],
)
def test_unsupported_history_parameters_are_400(client, lifecycle, query):
    for path in ("_history", "Patient/_history", "Patient/p1/_history"):
        r = client.get(f"/fhir/{path}?{query}")
        assert r.status_code == 400, f"{path}?{query}"
        body = r.json()
        assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["diagnostics"]


def test_transaction_versions_appear_in_history(client):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient(id="t1"), "request": {"method": "PUT", "url": "Patient/t1"}},
            {"resource": observation("t1"), "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    assert client.post("/fhir", json=bundle).status_code == 200
    refs = [ref.split("/")[0] for ref, _, _ in versions(history(client, "_history"))]
    assert sorted(refs) == ["Observation", "Patient"]
