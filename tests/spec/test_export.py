"""Spec: FHIR Bulk Data export (Bulk Data Access IG v2.0.0), on every engine.

Kick-off (``$export`` at system, Patient and Group level) needs ``Prefer: respond-async`` and
answers 202 with a status URL in Content-Location; the status URL answers 202 with X-Progress
while the job runs, 200 with the manifest when it is done, 500 when it failed, and DELETE
cancels and deletes. Files are NDJSON of the stored JSON, one per type. The job runs in a
background thread even under the in-process TestClient, so each test polls until done.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from fhirdata import condition, observation, organization, patient
from sqlalchemy import delete, insert

from carelight.fhir import schema
from carelight.fhir.export.jobs import ExportJobs
from carelight.fhir.export.spec import COMPARTMENT_TYPES, ExportSpec
from carelight.fhir.store import instant_text
from clients import TEST_SOURCE, bearer_token, source_client_principal

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
OWNER = "source-test"  # the test client's account: only it may poll its jobs
BASE = "http://testserver/fhir"


@pytest.fixture
def client(store, tmp_path):
    """The API over ``store`` with CARELIGHT_HOME in tmp_path; waits for its exports at the end."""
    from fastapi.testclient import TestClient

    from carelight.config import Settings
    from carelight.server import create_app

    with store.write() as conn:  # PostgreSQL keeps one database per worker: start afresh
        conn.execute(delete(schema.export_job))
    settings = Settings(home=tmp_path / "home", database_url="unused", base_url=BASE)
    app = create_app(store=store, settings=settings)
    app.state.export_jobs = ExportJobs(store, settings.home / "exports")
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {bearer_token(app, source_client_principal())}"
        yield c
    app.state.export_jobs.wait(timeout=60)


def exports_dir(client) -> Path:
    return client.app.state.export_jobs.exports_dir


def kick_off(client, path: str = "$export", **params) -> str:
    r = client.get(f"/fhir/{path}", params=params, headers=ASYNC)
    assert r.status_code == 202, r.text
    location = r.headers["content-location"]
    assert location.startswith(f"{BASE}/$export-poll-status/")
    return location


def poll(client, location: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(location)
        if r.status_code != 202:
            return r
        assert r.headers["x-progress"] and r.headers["retry-after"]
        assert time.monotonic() < deadline, "the export did not finish in time"
        time.sleep(0.02)


def manifest_of(client, location: str) -> dict:
    r = poll(client, location)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def exported(client, manifest: dict) -> dict[str, list[dict]]:
    """type → the resources of its files, every line parsed."""
    out: dict[str, list[dict]] = {}
    for item in manifest["output"]:
        r = client.get(item["url"])
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/fhir+ndjson")
        assert r.text.endswith("\n")
        lines = r.text.splitlines()
        assert len(lines) == item["count"]
        resources = [orjson.loads(line) for line in lines]
        assert {res["resourceType"] for res in resources} == {item["type"]}
        out.setdefault(item["type"], []).extend(resources)
    return out


def run_export(client, path: str = "$export", **params) -> dict[str, list[dict]]:
    return exported(client, manifest_of(client, kick_off(client, path, **params)))


def ids(resources: dict[str, list[dict]]) -> dict[str, set[str]]:
    return {t: {r["id"] for r in rs} for t, rs in resources.items()}


def put(client, resource: dict) -> dict:
    r = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert r.status_code in (200, 201), r.text
    return r.json()


@pytest.fixture
def two_patients(client) -> None:
    """p1 and p2 with data; p3 with none; an Organization and a Group of p1 only."""
    put(client, organization() | {"id": "org1"})
    for pid, nhs in (("p1", "9990000018"), ("p2", "9990000026"), ("p3", "9990000034")):
        put(client, patient(nhs=nhs, id=pid))
    put(client, observation("p1", id="o1"))
    put(client, observation("p1", id="o2", code="2339-0"))
    put(client, observation("p2", id="o3"))
    put(client, condition("p1", id="c1"))
    put(client, condition("p2", id="c2"))
    group = {
        "resourceType": "Group",
        "id": "g1",
        "type": "person",
        "actual": True,
        "member": [{"entity": {"reference": "Patient/p1"}}],
    }
    put(client, group)


# -- kick-off ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["$export", "Patient/$export", "Group/g1/$export"])
def test_kick_off_needs_prefer_respond_async(client, two_patients, path):
    r = client.get(f"/fhir/{path}")
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/fhir+json")
    assert "respond-async" in r.json()["issue"][0]["diagnostics"]


def test_kick_off_answers_202_with_a_status_url(client, two_patients):
    r = client.get("/fhir/$export", headers=ASYNC)
    assert r.status_code == 202
    assert r.json()["resourceType"] == "OperationOutcome"
    manifest = manifest_of(client, r.headers["content-location"])
    assert manifest["request"] == f"{BASE}/$export"
    assert manifest["requiresAccessToken"] is False
    assert manifest["error"] == []
    assert manifest["transactionTime"].endswith("Z")


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"_type": "Patient,Nonsense"}, ["Nonsense"]),
        ({"_type": "Device"}, ["Device"]),  # an R4 type this server does not store
        ({"_outputFormat": "application/fhir+json"}, ["_outputFormat"]),
        ({"_elements": "id"}, ["_elements"]),
        ({"patient": "Patient/p1", "includeAssociatedData": "x"}, ["patient", "includeAssociatedData"]),
        ({"_since": "yesterday"}, ["_since"]),
        ({"_typeFilter": "Observation?nonsense=1"}, ["nonsense"]),
        ({"_typeFilter": "Observation?code=x&_sort=date"}, ["_sort"]),
        ({"_type": "Patient", "_typeFilter": "Observation?code=x"}, ["Observation"]),
    ],
)  # fmt: skip
def test_bad_parameters_are_400_naming_them(client, params, words):
    r = client.get("/fhir/$export", params=params, headers=ASYNC)
    assert r.status_code == 400, r.text
    text = r.json()["issue"][0]["diagnostics"]
    assert all(w in text for w in words), text


def test_output_formats_of_the_ig_are_accepted(client, two_patients):
    for fmt in ("application/fhir+ndjson", "application/ndjson", "ndjson"):
        assert ids(run_export(client, _outputFormat=fmt, _type="Organization")) == {
            "Organization": {"org1"}
        }


def test_patient_level_export_refuses_types_outside_the_compartment(client):
    r = client.get("/fhir/Patient/$export", params={"_type": "Organization"}, headers=ASYNC)
    assert r.status_code == 400
    assert "Organization" in r.json()["issue"][0]["diagnostics"]


def test_unknown_group_is_404(client):
    r = client.get("/fhir/Group/nope/$export", headers=ASYNC)
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"


def test_post_kick_off_with_parameters(client, two_patients):
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": "Patient"},
            {"name": "_type", "valueString": "Condition"},
            {"name": "_outputFormat", "valueString": "application/fhir+ndjson"},
        ],
    }
    r = client.post("/fhir/$export", json=body, headers=ASYNC)
    assert r.status_code == 202, r.text
    got = exported(client, manifest_of(client, r.headers["content-location"]))
    assert ids(got) == {"Patient": {"p1", "p2", "p3"}, "Condition": {"c1", "c2"}}
    body = {"resourceType": "Parameters", "parameter": [{"name": "patient", "valueReference": {"reference": "Patient/p1"}}]}  # fmt: skip
    r = client.post("/fhir/Patient/$export", json=body, headers=ASYNC)
    assert r.status_code == 400 and "patient" in r.text


# -- what is exported ----------------------------------------------------------------------


def test_system_export_round_trips_every_resource_as_stored(client, two_patients):
    got = run_export(client)
    assert ids(got) == {
        "Patient": {"p1", "p2", "p3"},
        "Organization": {"org1"},
        "Observation": {"o1", "o2", "o3"},
        "Condition": {"c1", "c2"},
        "Group": {"g1"},
    }
    for res_type, resources in got.items():
        for resource in resources:
            read = client.get(f"/fhir/{res_type}/{resource['id']}")
            assert read.json() == resource  # the stored JSON, meta included, unchanged


def test_files_follow_the_type_order_and_list_each_type_once(client, two_patients):
    location = kick_off(client)
    manifest = manifest_of(client, location)
    types = [o["type"] for o in manifest["output"]]
    assert types[0] == "Patient" and len(types) == len(set(types))
    assert all(o["url"].endswith(f"/{o['type']}.ndjson") for o in manifest["output"])


def test_type_filters_by_type(client, two_patients):
    got = run_export(client, _type="Observation,Organization")
    assert ids(got) == {"Observation": {"o1", "o2", "o3"}, "Organization": {"org1"}}


def test_type_filter_selects_within_a_type(client, two_patients):
    got = run_export(
        client, _type="Observation,Patient", _typeFilter="Observation?code=http://loinc.org|4548-4"
    )
    assert ids(got) == {"Observation": {"o1", "o3"}, "Patient": {"p1", "p2", "p3"}}


def test_since_keeps_only_resources_updated_at_or_after(client, two_patients):
    time.sleep(0.02)
    since = instant_text(time.time())
    time.sleep(0.02)
    put(client, observation("p2", id="o-late"))
    changed = put(client, patient(nhs="9990000034", id="p3", gender="male"))
    got = run_export(client, _since=since)
    assert ids(got) == {"Observation": {"o-late"}, "Patient": {"p3"}}
    assert got["Patient"][0] == changed  # the current version
    assert run_export(client, _since="2999-01-01T00:00:00Z") == {}


def test_since_with_a_utc_offset(client, two_patients):
    # '+01:00' arrives as ' 01:00' when a client forgets to encode the '+'.
    r = client.get("/fhir/$export?_since=2000-01-01T00:00:00+01:00", headers=ASYNC)
    assert r.status_code == 202
    assert len(exported(client, manifest_of(client, r.headers["content-location"]))) == 5


def test_deleted_resources_are_not_exported(client, two_patients):
    assert client.delete("/fhir/Observation/o2").status_code == 204
    assert client.delete("/fhir/Patient/p3").status_code == 204
    got = run_export(client)
    assert ids(got)["Observation"] == {"o1", "o3"}
    assert ids(got)["Patient"] == {"p1", "p2"}


def test_patient_level_export_holds_the_patients_and_their_compartments(client, two_patients):
    got = run_export(client, "Patient/$export")
    # Not the Organization (in no compartment), not the Group (kept out of compartments).
    assert ids(got) == {
        "Patient": {"p1", "p2", "p3"},
        "Observation": {"o1", "o2", "o3"},
        "Condition": {"c1", "c2"},
    }


def test_group_level_export_holds_only_the_members_data(client, two_patients):
    got = run_export(client, "Group/g1/$export")
    assert ids(got) == {"Patient": {"p1"}, "Observation": {"o1", "o2"}, "Condition": {"c1"}}
    assert ids(run_export(client, "Group/g1/$export", _type="Condition")) == {"Condition": {"c1"}}


def test_group_members_that_are_not_patients_are_ignored(client, two_patients):
    put(client, {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Who"}]})
    group = {
        "resourceType": "Group",
        "id": "g2",
        "type": "person",
        "actual": True,
        "member": [
            {"entity": {"reference": "Patient/p2"}},
            {"entity": {"reference": "Practitioner/dr1"}},
        ],
    }
    put(client, group)
    got = run_export(client, "Group/g2/$export")
    assert ids(got) == {"Patient": {"p2"}, "Observation": {"o3"}, "Condition": {"c2"}}


def test_group_members_no_longer_in_the_group_are_left_out(client, two_patients):
    group = {
        "resourceType": "Group",
        "id": "g3",
        "type": "person",
        "actual": True,
        "member": [
            {"entity": {"reference": "Patient/p1"}, "inactive": True},
            {"entity": {"reference": "Patient/p2"}, "period": {"end": "2020-01-01"}},
            {"entity": {"reference": "Patient/p3"}, "period": {"end": "2999-01-01"}},
        ],
    }
    put(client, group)
    assert ids(run_export(client, "Group/g3/$export")) == {"Patient": {"p3"}}


def test_group_member_ids_are_one_bind_parameter(store):
    # A cohort can outgrow SQLite's 32,766 bind parameters per statement.
    from sqlalchemy import func, select

    from carelight.fhir.export.writer import _id_list

    ids = [f"p{i}" for i in range(40_000)]
    sub = _id_list(store, ids).subquery()
    with store.read_conn() as conn:
        assert conn.execute(select(func.count()).select_from(sub)).scalar_one() == 40_000


def test_an_empty_export_has_no_files(client):
    assert manifest_of(client, kick_off(client))["output"] == []


# -- status, cancellation, files -----------------------------------------------------------


def test_unknown_job_and_file_are_404(client):
    for path in (
        "/fhir/$export-poll-status/0123456789abcdef0123456789abcdef",
        "/fhir/$export-poll-status/not-a-job",
        "/fhir/$export-file/0123456789abcdef0123456789abcdef/Patient.ndjson",
    ):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    r = client.delete("/fhir/$export-poll-status/0123456789abcdef0123456789abcdef")
    assert r.status_code == 404


def test_file_names_cannot_leave_the_job_folder(client, two_patients):
    location = kick_off(client, _type="Patient")
    manifest_of(client, location)
    job = location.rsplit("/", 1)[1]
    for name in ("..%2F..%2Fetc%2Fpasswd", "Patient.ndjson.part", "..", "patient.ndjson"):
        assert client.get(f"/fhir/$export-file/{job}/{name}").status_code == 404


def test_deleting_a_job_removes_it_and_its_files(client, two_patients):
    location = kick_off(client)
    manifest = manifest_of(client, location)
    job = location.rsplit("/", 1)[1]
    assert (exports_dir(client) / job / "Patient.ndjson").is_file()
    r = client.delete(location)
    assert r.status_code == 202
    assert not (exports_dir(client) / job).exists()
    assert client.get(location).status_code == 404
    assert client.get(manifest["output"][0]["url"]).status_code == 404
    assert client.delete(location).status_code == 404


def test_deleting_a_running_job_leaves_no_files(client, two_patients):
    location = kick_off(client)
    assert client.delete(location).status_code == 202  # most likely still running
    client.app.state.export_jobs.wait(timeout=30)
    assert not (exports_dir(client) / location.rsplit("/", 1)[1]).exists()
    assert client.get(location).status_code == 404


def _job_row(store, job_id: str, status: str, updated: float, **values) -> None:
    with store.write() as conn:
        conn.execute(
            insert(schema.export_job).values(
                id=job_id,
                kind="system",
                request_url=f"{BASE}/$export",
                params='{"owner": "source-test"}',  # the test client's account
                status=status,
                created=updated,
                updated=updated,
                **values,
            )
        )


def test_a_running_job_answers_202_with_progress(client, store):
    job = "a" * 32
    _job_row(store, job, "in-progress", time.time(), progress="40% (4 of 10 resources; Patient)")
    r = client.get(f"/fhir/$export-poll-status/{job}")
    assert r.status_code == 202
    assert r.headers["x-progress"] == "40% (4 of 10 resources; Patient)"
    assert int(r.headers["retry-after"]) > 0


def test_a_job_whose_process_died_is_reported_failed(client, store):
    job = "b" * 32
    _job_row(store, job, "in-progress", time.time() - 3600)
    r = client.get(f"/fhir/$export-poll-status/{job}")
    assert r.status_code == 500
    assert r.json()["resourceType"] == "OperationOutcome"


def test_a_failed_job_is_500_with_an_operation_outcome(client, store, two_patients):
    jobs = client.app.state.export_jobs
    job = jobs.start(
        ExportSpec("group", COMPARTMENT_TYPES, group_id="gone", owner=OWNER), f"{BASE}/x"
    )
    r = poll(client, f"{BASE}/$export-poll-status/{job}")
    assert r.status_code == 500
    issue = r.json()["issue"][0]
    assert issue["severity"] == "error" and "Group/gone" in issue["diagnostics"]
    assert not (exports_dir(client) / job).exists()


def test_too_many_running_exports_is_429(client, store, monkeypatch):
    import threading

    from carelight.fhir.errors import FhirError
    from carelight.fhir.export import jobs as jobs_module

    release = threading.Event()

    def blocked(store, spec, out_dir, progress):
        release.wait(30)
        return jobs_module.ExportResult(time.time())

    monkeypatch.setattr(jobs_module, "write_export", blocked)
    jobs = client.app.state.export_jobs
    spec = ExportSpec("system", ("Patient",), owner=OWNER)
    try:
        started = [jobs.start(spec, BASE) for _ in range(jobs_module.MAX_RUNNING)]
        r = client.get("/fhir/$export", headers=ASYNC)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        with pytest.raises(FhirError):
            jobs.start(spec, BASE)
    finally:
        release.set()
    for job in started:
        assert manifest_of(client, f"{BASE}/$export-poll-status/{job}")["output"] == []


def test_capability_statement_lists_export(client):
    cs = client.get("/fhir/metadata").json()
    rest = cs["rest"][0]
    assert {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"} in rest["operation"]  # fmt: skip
    by_type = {r["type"]: r for r in rest["resource"]}
    for res_type, op in (("Patient", "patient-export"), ("Group", "group-export")):
        names = {(o["name"], o["definition"].rsplit("/", 1)[1]) for o in by_type[res_type]["operation"]}  # fmt: skip
        assert ("export", op) in names


# -- load, export, load again --------------------------------------------------------------


def test_load_then_export_round_trips_to_the_same_resources(client, store):
    from carelight.examples import example_dir

    def as_ours(line: str) -> str:
        # Written by the test client's own system: a source system exports what it wrote.
        res = orjson.loads(line)
        res["meta"]["source"] = TEST_SOURCE
        return orjson.dumps(res).decode()

    lines = [
        (f"{path.name}:{n}", as_ours(line))
        for path in sorted(example_dir().rglob("*.ndjson"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
    ]
    report = store.bulk_load(lines, workers=1)
    assert report.errors == [] and report.loaded == len(lines)
    got = run_export(client)
    assert sum(len(rs) for rs in got.values()) == len(lines)
    loaded = {}
    for _, line in lines:
        res = orjson.loads(line)
        loaded[(res["resourceType"], res["id"])] = res
    for resources in got.values():
        for res in resources:
            meta = {k: v for k, v in res["meta"].items() if k not in ("versionId", "lastUpdated")}
            as_loaded = {k: v for k, v in res.items() if k != "meta"} | ({"meta": meta} if meta else {})  # fmt: skip
            assert as_loaded == loaded[(res["resourceType"], res["id"])]
    # Loading the export back changes nothing: same resources, no new versions.
    again = [line for rs in got.values() for line in map(orjson.dumps, rs)]
    report = store.bulk_load(again, workers=1)
    assert (report.loaded, report.unchanged, report.errors) == (0, len(lines), [])
