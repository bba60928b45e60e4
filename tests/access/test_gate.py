"""The gate: role x purpose x endpoint, and every route someone might use to get past it.

A small fictional care system is loaded straight into the store (trusted code), then every
request goes through the real app (middleware, tokens, gate, log) on SQLite and PostgreSQL.

People (each has records at several organisations; the same NHS number = the same person):

* A: registered at GP G1; seen at trust T1 last month; a care team at council C1 now.
  One GP observation is labelled R (restricted).
* B: registered at GP G2; nothing at G1, T1, C1 or care home H1. Opted out of research.
* C: seen at trust T1 three years ago only (outside the relationship window).
"""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from fastapi.testclient import TestClient

from carelight.access.principal import Principal, Role
from carelight.config import Settings
from clients import bearer_token

NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
NHS_A, NHS_B, NHS_C = "9990000018", "9990000026", "9990000034"
TODAY = dt.date.today()
RECENT = (TODAY - dt.timedelta(days=30)).isoformat()
LONG_AGO = (TODAY - dt.timedelta(days=3 * 365)).isoformat()


def src(code: str) -> str:
    return f"https://fhir.carelight.example/{code}/fhir"


def org(code: str) -> dict:
    return {
        "resourceType": "Organization",
        "id": f"{code}-org",
        "meta": {"source": src(code)},
        "identifier": [{"system": ODS, "value": code}],
        "name": f"Organisation {code}",
    }


def patient(code: str, key: str, nhs: str, gp: str | None) -> dict:
    res = {
        "resourceType": "Patient",
        "id": f"{code}-p{key}",
        "meta": {"source": src(code)},
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": f"Person{key}", "given": ["Test"]}],
        "gender": "female",
        "birthDate": "1950-01-01",
        "managingOrganization": {"reference": f"Organization/{code}-org"},
    }
    if gp:
        res["generalPractitioner"] = [{"identifier": {"system": ODS, "value": gp}}]
    return res


def obs(code: str, key: str, n: int = 1, security: list | None = None) -> dict:
    res = {
        "resourceType": "Observation",
        "id": f"{code}-obs{n}-p{key}",
        "meta": {"source": src(code)},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "subject": {"reference": f"Patient/{code}-p{key}"},
        "valueQuantity": {"value": 48, "unit": "mmol/mol"},
    }
    if security:
        res["meta"]["security"] = security
    return res


def encounter(code: str, key: str, when: str) -> dict:
    return {
        "resourceType": "Encounter",
        "id": f"{code}-enc-p{key}",
        "meta": {"source": src(code)},
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{code}-p{key}"},
        "serviceProvider": {"reference": f"Organization/{code}-org"},
        "period": {"start": when, "end": when},
    }


def care_team(code: str, key: str) -> dict:
    return {
        "resourceType": "CareTeam",
        "id": f"{code}-ct-p{key}",
        "meta": {"source": src(code)},
        "status": "active",
        "subject": {"reference": f"Patient/{code}-p{key}"},
        "period": {"start": RECENT},
        "managingOrganization": [{"reference": f"Organization/{code}-org"}],
    }


def opt_out(code: str, key: str) -> dict:
    return {
        "resourceType": "Consent",
        "id": f"{code}-optout-p{key}",
        "meta": {"source": src(code)},
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{code}-p{key}"},
        "provision": {
            "type": "deny",
            "purpose": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}
            ],
        },
    }


RESTRICTED = [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]


def population() -> list[dict]:
    return [
        *(org(c) for c in ("G1", "G2", "T1", "C1", "H1")),
        patient("G1", "A", NHS_A, "G1"),
        patient("T1", "A", NHS_A, "G1"),
        patient("C1", "A", NHS_A, None),
        patient("G2", "B", NHS_B, "G2"),
        patient("T1", "C", NHS_C, None),
        obs("G1", "A"),
        obs("G1", "A", 2, RESTRICTED),
        obs("T1", "A"),
        encounter("T1", "A", RECENT),
        care_team("C1", "A"),
        obs("G2", "B"),
        opt_out("G2", "B"),
        obs("T1", "C"),
        encounter("T1", "C", LONG_AGO),
    ]


def person(username: str, role: Role, code: str | None = None, **kw) -> Principal:
    scopes = {
        Role.PATIENT: {"patient/*.read", "patient/Consent.write"},
        Role.SYSTEM: {"system/*.read", "system/*.write"},
    }.get(role, {"user/*.read", "user/*.write"})
    return Principal(
        username=username,
        role=role,
        organization_id=f"{code}-org" if code else None,
        organization_code=code,
        scopes=frozenset(scopes),
        **kw,
    )


PEOPLE = {
    "gp": person("gp", Role.GP, "G1"),
    "nurse": person("nurse", Role.NURSE, "T1"),
    "socialworker": person("socialworker", Role.SOCIAL_WORKER, "C1"),
    "carehome": person("carehome", Role.CARE_HOME, "H1"),
    "patientA": person("9990000018", Role.PATIENT, patient_id="G1-pA", nhs_number=NHS_A),
    "patientB": person("9990000026", Role.PATIENT, patient_id="G2-pB", nhs_number=NHS_B),
    "source-t1": person("source-t1", Role.SYSTEM, "T1", source=src("T1")),
    "researcher": person("researcher", Role.RESEARCHER),
    "checker1": person("checker1", Role.OUTPUT_CHECKER),
    "dac": person("dac", Role.DATA_ACCESS_COMMITTEE),
    "analyst": person("analyst", Role.ANALYST),
    "admin": person("admin", Role.ADMIN),
}


class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.tokens = {name: bearer_token(client.app, p) for name, p in PEOPLE.items()}

    def as_(self, who: str | None, purpose: str | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        if purpose:
            headers["X-Purpose-Of-Use"] = purpose
        return headers

    def get(self, who, path, purpose=None, **kw):
        return self.client.get(path, headers=self.as_(who, purpose), **kw)

    def post(self, who, path, body, purpose=None, **kw):
        return self.client.post(path, headers=self.as_(who, purpose), json=body, **kw)

    def put(self, who, path, body, purpose=None):
        return self.client.put(path, headers=self.as_(who, purpose), json=body)

    def ids(self, who, path, purpose=None, **kw) -> list[str]:
        r = self.get(who, path, purpose, **kw)
        assert r.status_code == 200, r.text
        return [e["resource"]["id"] for e in r.json().get("entry", [])]

    def log_for(self, patient_id: str) -> list[dict]:
        log = self.client.app.state.trail.log
        return [orjson.loads(entry) for _, entry in log.entries_for_patient(patient_id)]


@pytest.fixture
def api(store, tmp_path, monkeypatch):
    from carelight.server import create_app

    monkeypatch.delenv("CARELIGHT_RELATIONSHIP_DAYS", raising=False)
    report = store.bulk_load(population(), workers=0)
    assert report.errors == [] and report.loaded == len(population())
    settings = Settings(
        home=tmp_path / "home", database_url="unused", base_url="http://testserver/fhir"
    )
    with TestClient(create_app(store=store, settings=settings)) as client:
        yield Api(client)


# -- the matrix ---------------------------------------------------------------------------
# (who, purpose) -> expected status for: read T1's observation of A, $everything of T1-pA,
# instance history of it, and a search for A's observations (ids found, or a status).
T1_OBS_A = "/fhir/Observation/T1-obs1-pA"
ALLOWED = {"read": 200, "everything": 200, "history": 200}
REFUSED = {"read": 403, "everything": 403, "history": 403}
MATRIX = [
    ("gp", None, ALLOWED),
    ("gp", "TREAT", ALLOWED),
    ("nurse", None, ALLOWED),
    ("socialworker", None, ALLOWED),
    ("carehome", None, REFUSED),
    ("carehome", "ETREAT", REFUSED),  # no break-glass opened
    ("gp", "HRESCH", REFUSED),
    ("gp", "ETREAT", REFUSED),  # break-glass purpose with nothing opened
    ("patientA", None, ALLOWED),
    ("patientA", "TREAT", REFUSED),
    ("patientB", None, REFUSED),
    ("source-t1", None, ALLOWED),  # T1 wrote it
    ("researcher", None, REFUSED),
    ("researcher", "HRESCH", REFUSED),
    ("checker1", None, REFUSED),
    ("dac", None, REFUSED),
    ("analyst", None, REFUSED),
    ("analyst", "HOPERAT", REFUSED),
    ("admin", None, REFUSED),
    (None, None, {"read": 401, "everything": 401, "history": 401}),
]


@pytest.mark.parametrize(("who", "purpose", "expected"), MATRIX)
def test_role_purpose_endpoint_matrix(api, who, purpose, expected):
    got = {
        "read": api.get(who, T1_OBS_A, purpose).status_code,
        "everything": api.get(who, "/fhir/Patient/T1-pA/$everything", purpose).status_code,
        "history": api.get(who, f"{T1_OBS_A}/_history", purpose).status_code,
    }
    assert got == expected
    search = api.get(who, "/fhir/Observation", purpose, params={"subject": "Patient/T1-pA"})
    if expected["read"] == 200:
        assert search.status_code == 200
        assert [e["resource"]["id"] for e in search.json()["entry"]] == ["T1-obs1-pA"]
    elif expected["read"] == 401 or who in ("researcher", "checker1", "dac", "analyst", "admin"):
        assert search.status_code == expected["read"]
    elif purpose in ("HRESCH", "TREAT", "ETREAT"):
        assert search.status_code == 403
    else:  # allowed to search, but nothing of A's is there for them
        assert search.status_code == 200 and search.json()["total"] == 0


def test_the_capability_statement_is_public(api):
    assert api.get(None, "/fhir/metadata").status_code == 200


@pytest.mark.parametrize(
    ("who", "seen"),
    [
        ("gp", {"G1-obs1-pA", "G1-obs2-pA", "T1-obs1-pA"}),  # A's, across sources; R too
        ("nurse", {"G1-obs1-pA", "G1-obs2-pA", "T1-obs1-pA"}),  # C's encounter is too old
        ("socialworker", {"G1-obs1-pA", "T1-obs1-pA"}),  # R is withheld from social care
        ("carehome", set()),
        ("patientA", {"G1-obs1-pA", "T1-obs1-pA"}),  # their own, R withheld
        ("patientB", {"G2-obs1-pB"}),
        ("source-t1", {"T1-obs1-pA", "T1-obs1-pC"}),  # what T1 wrote
    ],
)
def test_searches_and_totals_hold_only_what_the_caller_may_see(api, who, seen):
    assert set(api.ids(who, "/fhir/Observation")) == seen
    for total in ("accurate", None):
        params = {"_summary": "count"} | ({"_total": total} if total else {})
        assert api.get(who, "/fhir/Observation", params=params).json()["total"] == len(seen)
    # paging never shows more than the filtered set
    paged = api.get(who, "/fhir/Observation", params={"_count": 1}).json()
    assert len(paged.get("entry", [])) == min(1, len(seen))


def test_another_patients_id_in_the_url_is_refused(api):
    for path in (
        "/fhir/Patient/G1-pA",
        "/fhir/Patient/T1-pA/$everything",
        "/fhir/Observation/G1-obs1-pA",
        "/fhir/Observation/G1-obs1-pA/_history/1",
        "/fhir/Observation/G1-obs1-pA/_history",
    ):
        r = api.get("patientB", path)
        assert r.status_code == 403, path
        assert "Person" not in r.text and "48" not in r.text
    assert api.get("patientA", "/fhir/Patient/G1-pA").status_code == 200


def test_chained_search_and_has_do_not_reach_past_the_gate(api):
    chained = {"subject:Patient.identifier": f"{NHS}|{NHS_A}"}
    assert api.ids("patientB", "/fhir/Observation", params=chained) == []
    assert set(api.ids("patientA", "/fhir/Observation", params=chained)) == {
        "G1-obs1-pA",
        "T1-obs1-pA",
    }
    # _has: the care home sees every Patient (tracing) but no Observation, so none qualifies.
    has = {"_has:Observation:subject:code": "http://loinc.org|4548-4"}
    assert api.ids("carehome", "/fhir/Patient", params=has) == []
    assert set(api.ids("gp", "/fhir/Patient", params=has)) == {"G1-pA", "T1-pA"}
    # a source system: its own Observations about a Patient another system wrote
    assert api.ids(
        "source-t1", "/fhir/Observation", params={"subject:Patient.family": "PersonA"}
    ) == ["T1-obs1-pA"]
    assert (
        api.ids("patientB", "/fhir/Observation", params={"subject:Patient.family": "PersonA"}) == []
    )


def test_includes_never_bring_in_what_the_caller_may_not_see(api):
    rev = {"_id": "G1-pA", "_revinclude": "Observation:subject"}
    assert api.ids("carehome", "/fhir/Patient", params=rev) == ["G1-pA"]  # no observations
    assert set(api.ids("gp", "/fhir/Patient", params=rev)) == {
        "G1-pA",
        "G1-obs1-pA",
        "G1-obs2-pA",
    }
    inc = {"_include": "Observation:subject"}
    assert set(api.ids("source-t1", "/fhir/Observation", params=inc)) == {
        "T1-obs1-pA",
        "T1-obs1-pC",
        "T1-pA",
        "T1-pC",
    }
    # iterate: from A's own observations to their subject and on to the GP organisation
    it = {"_include": "Observation:subject", "_include:iterate": "Patient:organization"}
    got = set(api.ids("patientB", "/fhir/Observation", params=it))
    assert got == {"G2-obs1-pB", "G2-pB", "G2-org"}


def test_history_lists_only_visible_resources(api):
    for path in ("/fhir/_history", "/fhir/Observation/_history"):
        entries = api.get("carehome", path).json().get("entry", [])
        assert not any(e["fullUrl"].split("/")[-2] == "Observation" for e in entries), path
    own = api.get("source-t1", "/fhir/_history").json()["entry"]
    assert {e["resource"]["meta"]["source"] for e in own} == {src("T1")}


def test_bundle_entries_go_through_the_gate(api):
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": "Observation/T1-obs1-pA"}},
            {"request": {"method": "GET", "url": "Observation?subject=Patient/T1-pA"}},
            {"request": {"method": "GET", "url": "Patient/T1-pA"}},
        ],
    }
    r = api.post("carehome", "/fhir", batch)
    assert r.status_code == 200
    entries = r.json()["entry"]
    assert entries[0]["response"]["status"] == "403"
    assert entries[1]["resource"]["total"] == 0
    assert entries[2]["response"]["status"] == "200 OK"  # demographics, for tracing
    transaction = {**batch, "type": "transaction"}
    assert api.post("carehome", "/fhir", transaction).status_code == 403
    assert api.post("gp", "/fhir", transaction).status_code == 200


def test_export_is_for_source_systems_and_holds_only_their_own(api):
    async_ = {"Prefer": "respond-async"}
    for who in ("gp", "carehome", "patientA", "admin", "researcher"):
        r = api.client.get(
            "/fhir/$export", headers=api.as_(who) | async_
        )  # refused before anything starts
        assert r.status_code == 403, who
    r = api.client.get("/fhir/$export", headers=api.as_("source-t1") | async_)
    assert r.status_code == 202
    poll = r.headers["content-location"].split("/fhir", 1)[1]
    # nobody else may poll or download it
    assert api.get("gp", f"/fhir{poll}").status_code == 404
    api.client.app.state.export_jobs.wait(timeout=60)
    manifest = api.get("source-t1", f"/fhir{poll}").json()
    sources = set()
    for item in manifest["output"]:
        path = item["url"].split("/fhir", 1)[1]
        assert api.get("patientA", f"/fhir{path}").status_code == 404
        body = api.get("source-t1", f"/fhir{path}").text
        sources |= {orjson.loads(line)["meta"]["source"] for line in body.splitlines()}
    assert sources == {src("T1")}


def test_writes_follow_the_rules_of_each_role(api):
    about_a = obs("G1", "A", 9)
    about_a.pop("id"), about_a.pop("meta")
    # the GP records care about A in G1's name
    r = api.post("gp", "/fhir/Observation", about_a)
    assert r.status_code == 201, r.text
    assert r.json()["meta"]["source"] == src("G1")
    # ...but not about B, nor as another organisation, nor change T1's record
    about_b = about_a | {"subject": {"reference": "Patient/G2-pB"}}
    assert api.post("gp", "/fhir/Observation", about_b).status_code == 403
    as_t1 = about_a | {"meta": {"source": src("T1")}}
    assert api.post("gp", "/fhir/Observation", as_t1).status_code == 403
    t1_obs = api.get("gp", T1_OBS_A).json()
    assert api.put("gp", T1_OBS_A, t1_obs | {"status": "amended"}).status_code == 403
    assert api.client.delete(T1_OBS_A, headers=api.as_("gp")).status_code == 403
    # patients write only their own data choices
    assert api.post("patientA", "/fhir/Observation", about_a).status_code == 403
    choice = opt_out("G1", "A")
    choice.pop("id"), choice.pop("meta")
    assert api.post("patientA", "/fhir/Consent", choice).status_code == 201
    theirs = choice | {"patient": {"reference": "Patient/G2-pB"}}
    assert api.post("patientA", "/fhir/Consent", theirs).status_code == 403
    # a source system writes only as itself, and never over another's record
    mine = obs("T1", "A", 5)
    mine.pop("meta")
    assert api.put("source-t1", "/fhir/Observation/T1-obs5-pA", mine).status_code == 201
    g1 = obs("G1", "A") | {"meta": {"source": src("T1")}}
    assert api.put("source-t1", "/fhir/Observation/G1-obs1-pA", g1).status_code == 403
    assert api.get("gp", "/fhir/Observation/G1-obs1-pA").json()["meta"]["source"] == src("G1")
    # refused writes leave nothing behind
    assert api.get("patientB", "/fhir/Consent").json().get("total") == 1


def test_restricted_records_are_withheld_unless_the_role_allows(api):
    assert api.get("gp", "/fhir/Observation/G1-obs2-pA").status_code == 200
    assert api.get("nurse", "/fhir/Observation/G1-obs2-pA").status_code == 200
    assert api.get("socialworker", "/fhir/Observation/G1-obs2-pA").status_code == 403
    assert api.get("patientA", "/fhir/Observation/G1-obs2-pA").status_code == 403
    everything = api.ids("socialworker", "/fhir/Patient/G1-pA/$everything")
    assert "G1-obs1-pA" in everything and "G1-obs2-pA" not in everything


def test_the_relationship_window(api, monkeypatch):
    assert api.get("nurse", "/fhir/Observation/T1-obs1-pC").status_code == 403
    monkeypatch.setenv("CARELIGHT_RELATIONSHIP_DAYS", str(5 * 365))
    assert api.get("nurse", "/fhir/Observation/T1-obs1-pC").status_code == 200


def test_break_glass_opens_flags_logs_and_lists(api):
    assert api.get("carehome", T1_OBS_A).status_code == 403
    too_short = {"patient": "Patient/T1-pA", "reason": "urgent"}
    assert api.post("carehome", "/access/break-glass", too_short).status_code == 400
    assert api.post("patientB", "/access/break-glass", too_short).status_code == 403
    reason = "Resident collapsed; paramedics need her medicines list"
    r = api.post("carehome", "/access/break-glass", {"patient": "Patient/T1-pA", "reason": reason})
    assert r.status_code == 201, r.text
    # only under the break-glass purpose
    assert api.get("carehome", T1_OBS_A).status_code == 403
    assert api.get("carehome", T1_OBS_A, "ETREAT").status_code == 200
    # the whole person is open (all their records), nobody else
    assert api.get("carehome", "/fhir/Observation/G1-obs1-pA", "ETREAT").status_code == 200
    assert api.get("carehome", "/fhir/Observation/G2-obs1-pB", "ETREAT").status_code == 403
    # logged, flagged, with the reason, for the patient to see
    entries = api.log_for("T1-pA")
    glass = [e for e in entries if e.get("subtype", [{}])[0].get("code") == "110127"]
    assert glass and reason in orjson.dumps(glass[0]).decode()
    reads = [
        e
        for e in entries
        if any(p["coding"][0]["code"] == "ETREAT" for p in e.get("purposeOfEvent", []))
    ]
    assert len(reads) >= 2  # the grant and the read under it
    # listed for the privacy officer; a professional sees only their own
    listed = api.get("admin", "/access/break-glass", params={"organization": "H1"}).json()
    assert [(g["username"], g["patient"], g["reason"]) for g in listed["grants"]] == [
        ("carehome", "Patient/T1-pA", reason)
    ]
    assert api.get("gp", "/access/break-glass").json()["grants"] == []
    assert api.get("patientA", "/access/break-glass").status_code == 403


def test_every_decision_is_logged_before_data_is_returned(api):
    before = api.client.app.state.trail.log.size()
    api.get("gp", T1_OBS_A)
    api.get("patientB", T1_OBS_A)
    api.get("gp", "/fhir/Observation", params={"subject": "Patient/T1-pA"})
    log = api.client.app.state.trail.log
    assert log.size() == before + 3
    entries = [orjson.loads(log.leaf(i)) for i in range(before, before + 3)]
    assert [e["outcome"] for e in entries] == ["0", "4", "0"]
    text = orjson.dumps(entries).decode()
    assert "PersonA" not in text and NHS_A not in text  # references only, never patient data
    users = [
        a["who"].get("identifier", {}).get("value") or a["who"]["reference"]
        for e in entries
        for a in e["agent"]
        if a.get("requestor")
    ]
    assert users == ["gp", "Patient/G2-pB", "gp"]  # a patient by record, not by NHS number


def test_no_log_no_data(api, monkeypatch):
    from carelight.audit.trail import AuditUnavailable

    def broken(_event):
        raise AuditUnavailable("disk full")

    monkeypatch.setattr(api.client.app.state.trail, "record", broken)
    r = api.get("gp", T1_OBS_A)
    assert r.status_code == 503
    assert "resourceType" in r.json() and r.json()["resourceType"] == "OperationOutcome"
    assert "48" not in r.text and "T1-obs1-pA" not in r.text


def test_opt_out_set_checked_and_removed(api):
    from carelight.access.optout import may_use, opted_out_patients
    from carelight.access.principal import Purpose

    engine = api.client.app.state.store.engine
    assert may_use(engine, "T1-pA", Purpose.HRESCH)
    r = api.put("patientA", "/access/opt-out", {"research": True, "planning": False})
    assert r.status_code == 200 and r.json()["research"] is True
    # effective at once, for every one of the person's records
    for record in ("G1-pA", "T1-pA", "C1-pA"):
        assert not may_use(engine, record, Purpose.HRESCH)
        assert may_use(engine, record, Purpose.HOPERAT)
        assert may_use(engine, record, Purpose.TREAT)  # direct care is never affected
    assert may_use(engine, "T1-pA", Purpose.HRESCH, "explicit-consent")
    assert may_use(engine, "T1-pA", Purpose.HRESCH, "legal-requirement")
    with pytest.raises(ValueError):
        may_use(engine, "T1-pA", Purpose.HRESCH, "because")
    with engine.connect() as conn:
        assert opted_out_patients(conn, Purpose.HRESCH) == {"G1-pA", "T1-pA", "C1-pA", "G2-pB"}
        assert opted_out_patients(conn, Purpose.HOPERAT) == set()
    assert api.get("patientA", "/access/opt-out").json()["research"] is True
    r = api.put("patientA", "/access/opt-out", {"research": False, "planning": False})
    assert r.json() == r.json() | {"research": False, "planning": False}
    assert may_use(engine, "G1-pA", Purpose.HRESCH)
    # logged as an opt-out change for the patient
    actions = {
        s["code"]
        for e in api.log_for("G1-pA")
        for s in e.get("subtype", [])
        if s["system"].endswith("audit-action")
    }
    assert "opt-out" in actions
    # only the patient, about themselves
    assert api.put("gp", "/access/opt-out", {"research": True, "planning": True}).status_code == 403
    assert api.put("patientA", "/access/opt-out", {"research": "yes"}).status_code == 400


def test_scopes_are_a_ceiling(api):
    from carelight.access.principal import Principal

    narrow = Principal(
        username="gp",
        role=Role.GP,
        organization_id="G1-org",
        organization_code="G1",
        scopes=frozenset({"user/Patient.read"}),
    )
    token = bearer_token(api.client.app, narrow)
    headers = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/fhir/Patient/G1-pA", headers=headers).status_code == 200
    assert api.client.get(T1_OBS_A, headers=headers).status_code == 403
    body = obs("G1", "A", 7)
    body.pop("meta")
    assert api.client.post("/fhir/Observation", headers=headers, json=body).status_code == 403


@pytest.mark.parametrize("purpose", [None, "ETREAT"])
def test_the_single_resource_check_agrees_with_the_search_condition(api, purpose):
    """Reads use a compiled-once check; searches the SQLAlchemy condition: they must agree."""
    from sqlalchemy import select

    from carelight.fhir.schema import resource as R

    app = api.client.app
    store, gate = app.state.store, app.state.gate
    if purpose:  # something to break the glass on, for each professional
        reason = "Agreement test: checking both forms of the gate"
        for who in ("gp", "nurse", "socialworker", "carehome"):
            r = api.post(who, "/access/break-glass", {"patient": "Patient/T1-pC", "reason": reason})
            assert r.status_code == 201
    with store.engine.connect() as conn:
        pks = list(conn.execute(select(R.c.pk)).scalars())
        for name, principal in PEOPLE.items():
            if principal.role not in (*WRITERS, Role.PATIENT, Role.SYSTEM):
                continue
            if purpose and principal.role not in WRITERS:
                continue
            ctx = gate.context(principal, purpose)
            searched = set(conn.execute(select(R.c.pk).where(ctx.condition(R))).scalars())
            checked = {pk for pk in pks if ctx.visible(conn, pk)}
            assert checked == searched, name
            assert searched, name  # everyone here sees something


WRITERS = (Role.GP, Role.NURSE, Role.SOCIAL_WORKER, Role.CARE_HOME)


def test_a_patient_sees_the_log_entries_about_any_of_their_records(api):
    reason = "Resident collapsed; paramedics need her medicines list"
    api.post("carehome", "/access/break-glass", {"patient": "Patient/T1-pA", "reason": reason})
    # A signs in with the GP's record; the break-glass was on the hospital's record of A.
    listed = api.get("patientA", "/audit/patient/T1-pA/entries")
    assert listed.status_code == 200, listed.text
    assert reason in listed.text
    assert api.get("patientB", "/audit/patient/T1-pA/entries").status_code == 403
    index = api.client.app.state.trail.log.entries_for_patient("T1-pA")[0][0]
    assert api.get("patientA", f"/audit/entries/{index}").status_code == 200
    assert api.get("patientB", f"/audit/entries/{index}").status_code == 403


def test_downloading_export_files_and_listing_break_glass_are_logged(api):
    log = api.client.app.state.trail.log
    r = api.client.get("/fhir/$export", headers=api.as_("source-t1") | {"Prefer": "respond-async"})
    poll = r.headers["content-location"].split("/fhir", 1)[1]
    api.client.app.state.export_jobs.wait(timeout=60)
    url = api.get("source-t1", f"/fhir{poll}").json()["output"][0]["url"]
    before = log.size()
    assert api.get("source-t1", f"/fhir{url.split('/fhir', 1)[1]}").status_code == 200
    assert log.size() == before + 1
    assert b"110106" in log.leaf(before)  # DICOM Export
    reason = "Resident collapsed; paramedics need her medicines list"
    api.post("carehome", "/access/break-glass", {"patient": "Patient/T1-pA", "reason": reason})
    before = log.size()
    assert api.get("admin", "/access/break-glass").status_code == 200
    assert log.size() == before + 1
    assert log.entries_for_patient("T1-pA")[0][0] == before  # newest first, about A
