"""The master patient index on the write path, the review queue, splitting and Person, on both
engines: records are decided as they are written (REST and bulk), the person's NHS number
follows a linked record, and every application sees all of a person's records."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from carelight.access.principal import Principal, Role
from carelight.config import Settings
from carelight.fhir import schema
from carelight.identity.linkage import records_from_folder, train
from carelight.identity.mpi.core import MR, RV, is_assigned, model_from_dict
from carelight.synth import generate
from clients import bearer_token

NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
NUMBER, OTHER_NUMBER = "9990000018", "9990000026"


@pytest.fixture(scope="module")
def model_document(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi") / "population"
    generate(out, 800, 5, workers=1)
    return train(records_from_folder(out), max_pairs=1e6).to_dict()


@pytest.fixture
def trained(store, model_document):
    store.mpi.save_model(model_from_dict(model_document))
    return store


def src(code: str) -> str:
    return f"https://fhir.carelight.example/{code}/fhir"


def patient(pid, given="Margaret", family="Oldroyd", dob="1941-03-07", *, nhs=None,
            line="4 Calder Row", postcode="YX10 4HD", sex="female", gp=None, code="G1"):  # fmt: skip
    res = {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"source": src(code)},
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": sex,
        "birthDate": dob,
        "address": [{"use": "home", "line": [line], "postalCode": postcode}],
    }
    if nhs:
        res["identifier"] = [{"system": NHS, "value": nhs}]
    if gp:
        res["generalPractitioner"] = [{"identifier": {"system": ODS, "value": gp}}]
    return res


def observation(oid, pid, code="C1"):
    return {
        "resourceType": "Observation",
        "id": oid,
        "meta": {"source": src(code)},
        "status": "final",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "271649006"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": 140, "unit": "mmHg"},
    }


def person_of(store, pid):
    with store.read_conn() as conn:
        return conn.execute(
            select(schema.person_link.c.person).where(schema.person_link.c.patient_id == pid)
        ).scalar_one()


def how_of(store, pid):
    with store.read_conn() as conn:
        return conn.execute(select(MR.c.how).where(MR.c.patient_id == pid)).scalar_one()


def nhs_identifiers(store, pid):
    doc = store.read("Patient", pid).json()
    return [i for i in doc.get("identifier", []) if i.get("system") == NHS]


def by_nhs_number(store, number):
    from carelight.fhir.search.execute import match_ids

    with store.read_conn() as conn:
        return set(match_ids(store, conn, "Patient", [("identifier", f"{NHS}|{number}")], 10))


def open_reviews(store):
    with store.read_conn() as conn:
        return conn.execute(select(RV).where(RV.c.status == "open")).all()


# -- without a model: NHS number links -----------------------------------------------------------
def test_without_a_model_a_shared_nhs_number_makes_one_person(store):
    store.create(patient("gp-1", nhs=NUMBER), res_id="gp-1")
    store.create(patient("tr-1", nhs=NUMBER, code="T1"), res_id="tr-1")
    store.create(patient("cc-1", code="C1"), res_id="cc-1")  # no number, no model: alone
    assert person_of(store, "gp-1") == person_of(store, "tr-1")
    assert person_of(store, "cc-1") != person_of(store, "gp-1")
    assert (how_of(store, "gp-1"), how_of(store, "tr-1"), how_of(store, "cc-1")) == (
        "new", "nhs-number", "new",
    )  # fmt: skip
    assert nhs_identifiers(store, "cc-1") == []


# -- with a model: link, review or new, as each record is written --------------------------------
def test_a_record_without_an_nhs_number_is_linked_and_given_the_persons_number(trained):
    store = trained
    store.create(patient("gp-1", nhs=NUMBER), res_id="gp-1")
    store.create(patient("cc-1", code="C1"), res_id="cc-1")
    assert person_of(store, "cc-1") == person_of(store, "gp-1")
    assert how_of(store, "cc-1") == "probabilistic"
    [given] = nhs_identifiers(store, "cc-1")
    assert given["value"] == NUMBER and is_assigned(given)
    status = given["extension"][0]["valueCodeableConcept"]["coding"][0]
    assert (status["code"], status["display"]) == ("02", "Number present but not traced")
    # Search by NHS number now finds both records; $everything of either holds both.
    assert by_nhs_number(store, NUMBER) == {"gp-1", "cc-1"}
    store.create(observation("cc-obs", "cc-1"), res_id="cc-obs")
    everything, _ = store.everything("gp-1")
    assert {"gp-1", "cc-1", "cc-obs"} <= {s.res_id for s in everything}


def test_a_changed_surname_and_a_transposed_date_of_birth_link(trained):
    store = trained
    store.create(patient("gp-1", nhs=NUMBER), res_id="gp-1")
    moved = patient("cc-1", family="Haigh", dob="1941-07-03", code="C1")
    moved["name"].append({"use": "old", "family": "Oldroyd", "given": ["Margaret"]})
    store.create(moved, res_id="cc-1")
    assert person_of(store, "cc-1") == person_of(store, "gp-1")


def test_twins_go_to_review_and_two_people_at_one_address_stay_apart(trained):
    store = trained
    store.create(patient("gp-1", nhs=NUMBER), res_id="gp-1")
    store.create(patient("cc-twin", given="Ruth", code="C1"), res_id="cc-twin")
    store.create(
        patient("cc-neighbour", given="Kevin", family="Briggs", dob="1979-11-30", sex="male",
                code="C1"), res_id="cc-neighbour",
    )  # fmt: skip
    assert how_of(store, "cc-twin") == "review"
    assert person_of(store, "cc-twin") != person_of(store, "gp-1")
    [item] = open_reviews(store)
    assert (item.patient_id, item.candidate_person, item.matched_id) == (
        "cc-twin", person_of(store, "gp-1"), "gp-1",
    )  # fmt: skip
    assert item.reason == "first-names-differ"
    assert how_of(store, "cc-neighbour") == "new"
    assert len({person_of(store, p) for p in ("gp-1", "cc-twin", "cc-neighbour")}) == 3
    assert nhs_identifiers(store, "cc-twin") == []


def test_an_update_re_decides_and_a_deleted_record_leaves_the_index(trained):
    store = trained
    store.create(patient("gp-1", nhs=NUMBER), res_id="gp-1")
    store.create(patient("cc-1", code="C1"), res_id="cc-1")
    assert person_of(store, "cc-1") == person_of(store, "gp-1")
    # The council corrects the record: it was someone else entirely.
    store.update("Patient", "cc-1", patient("cc-1", given="Arthur", family="Dyson",
                                            dob="1930-05-05", sex="male", code="C1"))  # fmt: skip
    assert person_of(store, "cc-1") != person_of(store, "gp-1")
    assert nhs_identifiers(store, "cc-1") == []  # the number it was given went with the link
    store.delete("Patient", "cc-1")
    with store.read_conn() as conn:
        assert conn.execute(select(MR).where(MR.c.patient_id == "cc-1")).first() is None
        pl = schema.person_link
        assert conn.execute(select(pl).where(pl.c.patient_id == "cc-1")).first() is None


def test_a_client_cannot_forge_or_keep_an_index_assigned_number(trained):
    store = trained
    store.create(patient("gp-1", nhs=NUMBER), res_id="gp-1")
    store.create(patient("cc-1", code="C1"), res_id="cc-1")
    # Writing back what it read (with the assigned number) changes nothing about the link ...
    doc = store.read("Patient", "cc-1").json()
    store.update("Patient", "cc-1", doc)
    assert person_of(store, "cc-1") == person_of(store, "gp-1")
    assert len(nhs_identifiers(store, "cc-1")) == 1
    # ... and an "assigned" number on someone else is stripped, not trusted.
    forged = patient("cc-2", given="Arthur", family="Dyson", dob="1930-05-05", code="C1")
    forged["identifier"] = [dict(doc["identifier"][0])]
    store.create(forged, res_id="cc-2")
    assert nhs_identifiers(store, "cc-2") == []
    assert person_of(store, "cc-2") != person_of(store, "gp-1")


# -- the bulk path --------------------------------------------------------------------------------
def test_bulk_load_links_and_a_reload_changes_nothing(trained):
    store = trained
    items = [
        patient("gp-1", nhs=NUMBER),
        patient("gp-2", given="Arthur", family="Dyson", dob="1930-05-05", sex="male",
                nhs=OTHER_NUMBER, line="9 Mill Lane", postcode="YX11 2AB"),
        patient("cc-1", code="C1"),
        patient("cc-2", given="Arthur", family="Dyson", dob="1930-05-05", sex="male",
                line="9 Mill Lane", postcode="YX11 2AB", code="C1"),
        observation("cc-obs", "cc-1"),
    ]  # fmt: skip
    first = store.bulk_load(items, workers=0)
    assert (first.created, first.errors) == (5, [])
    assert person_of(store, "cc-1") == person_of(store, "gp-1")
    assert person_of(store, "cc-2") == person_of(store, "gp-2")
    assert [i["value"] for i in nhs_identifiers(store, "cc-2")] == [OTHER_NUMBER]
    assert by_nhs_number(store, OTHER_NUMBER) == {"gp-2", "cc-2"}
    again = store.bulk_load(items, workers=0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)
    assert store.read("Patient", "cc-2").version_id == 1


# -- over HTTP: review, split, Person, the model, and the log ------------------------------------
def principal(username, role, code=None, **kw):
    return Principal(
        username=username,
        role=role,
        organization_id=f"{code}-org" if code else None,
        organization_code=code,
        scopes=frozenset({"user/*.read", "user/*.write"}),
        **kw,
    )


PEOPLE = {
    "dq": principal("dq", Role.DATA_QUALITY),
    "admin": principal("admin", Role.ADMIN),
    "gp": principal("gp", Role.GP, "G1"),
    "patient": principal(NUMBER, Role.PATIENT, patient_id="gp-1", nhs_number=NUMBER),
}


class Api:
    def __init__(self, client):
        self.client = client
        self.tokens = {k: bearer_token(client.app, p) for k, p in PEOPLE.items()}

    def get(self, who, path, **kw):
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"}, **kw)

    def post(self, who, path, body):
        return self.client.post(
            path, headers={"Authorization": f"Bearer {self.tokens[who]}"}, json=body
        )

    def link_entries(self, patient_id):
        log = self.client.app.state.trail.log
        entries = [orjson.loads(e) for _, e in log.entries_for_patient(patient_id)]
        return [e for e in entries if any(c.get("code") == "link" for c in e.get("subtype", []))]


@pytest.fixture
def api(trained, tmp_path):
    from carelight.server import create_app

    store = trained
    store.create(patient("gp-1", nhs=NUMBER, gp="G1"), res_id="gp-1")
    store.create(patient("tr-1", nhs=NUMBER, code="T1"), res_id="tr-1")
    settings = Settings(home=tmp_path / "home", database_url="unused", base_url="http://t/fhir")
    with TestClient(create_app(store=store, settings=settings)) as client:
        yield Api(client), store


def test_writes_through_the_server_log_each_linkage_decision(api):
    api, store = api
    store.create(patient("cc-1", code="C1"), res_id="cc-1")
    [entry] = api.link_entries("cc-1")
    assert entry["outcome"] == "0"
    assert "probabilistic" in entry["outcomeDesc"]
    text = orjson.dumps(entry).decode()
    assert "Margaret" not in text and "Oldroyd" not in text and "YX10" not in text


def test_the_review_queue_accept(api):
    api, store = api
    store.create(patient("cc-twin", given="Ruth", code="C1"), res_id="cc-twin")
    assert api.get("gp", "/mpi/review").status_code == 403
    queue = api.get("dq", "/mpi/review").json()
    [item] = queue["items"]
    assert item["patient"] == "Patient/cc-twin" and item["matched"] == "Patient/gp-1"
    compared = api.get("dq", f"/mpi/review/{item['id']}").json()
    assert compared["record"]["names"][0]["text"] == "Ruth Oldroyd"
    assert compared["candidate"]["nhsNumbers"] == [NUMBER]
    levels = {c["comparison"]: c["level"] for c in compared["comparisons"]}
    assert levels["dob"] == "exact" and levels["first_name"] != "exact"
    r = api.post("dq", f"/mpi/review/{item['id']}", {"decision": "accept", "note": "same person"})
    assert r.status_code == 200, r.text
    assert person_of(store, "cc-twin") == person_of(store, "gp-1")
    assert how_of(store, "cc-twin") == "reviewed"
    assert [i["value"] for i in nhs_identifiers(store, "cc-twin")] == [NUMBER]
    assert api.get("dq", "/mpi/review").json()["items"] == []
    assert api.post("dq", f"/mpi/review/{item['id']}", {"decision": "accept"}).status_code == 409
    # A reviewer's decision stands when the record changes again.
    store.update("Patient", "cc-twin", patient("cc-twin", given="Ruth", code="C1", line="5 Row"))
    assert person_of(store, "cc-twin") == person_of(store, "gp-1")
    assert any(e["agent"][0]["who"]["identifier"]["value"] == "dq"
               for e in api.link_entries("cc-twin"))  # fmt: skip


def test_the_review_queue_reject_is_remembered(api):
    api, store = api
    store.create(patient("cc-twin", given="Ruth", code="C1"), res_id="cc-twin")
    [item] = api.get("dq", "/mpi/review").json()["items"]
    bad = api.post("dq", f"/mpi/review/{item['id']}", {"decision": "maybe"})
    assert bad.status_code == 400 and "accept" in bad.text
    r = api.post("dq", f"/mpi/review/{item['id']}", {"decision": "reject"})
    assert r.status_code == 200
    assert person_of(store, "cc-twin") != person_of(store, "gp-1")
    store.update("Patient", "cc-twin", patient("cc-twin", given="Ruth", code="C1", line="5 Row"))
    assert api.get("dq", "/mpi/review").json()["items"] == []  # not asked again


def test_a_split_undoes_exactly_one_link(api):
    api, store = api
    store.create(patient("cc-1", code="C1"), res_id="cc-1")
    person = person_of(store, "gp-1")
    assert {person_of(store, p) for p in ("gp-1", "tr-1", "cc-1")} == {person}
    assert api.post("gp", "/mpi/split", {"patient": "Patient/cc-1"}).status_code == 403
    assert api.post("dq", "/mpi/split", {"patient": "cc-1"}).status_code == 400
    r = api.post("dq", "/mpi/split", {"patient": "Patient/cc-1", "note": "wrong person"})
    assert r.status_code == 200, r.text
    assert person_of(store, "cc-1") != person
    assert person_of(store, "gp-1") == person_of(store, "tr-1") == person  # the rest stay
    assert how_of(store, "cc-1") == "split"
    assert nhs_identifiers(store, "cc-1") == []  # what depended on the link follows
    everything, _ = store.everything("gp-1")
    assert "cc-1" not in {s.res_id for s in everything}
    # Automatic matching does not put it back, and a lone record cannot be split.
    store.update("Patient", "cc-1", patient("cc-1", code="C1", line="4 Calder Row"))
    assert person_of(store, "cc-1") != person
    assert api.post("dq", "/mpi/split", {"patient": "Patient/cc-1"}).status_code == 409
    assert len(api.link_entries("cc-1")) >= 2  # the automatic link, then the split


def test_person_resources_show_the_records_the_caller_may_see(api):
    api, store = api
    store.create(patient("cc-1", code="C1"), res_id="cc-1")
    person = person_of(store, "gp-1")
    bundle = api.get("gp", "/fhir/Person", params={"patient": "gp-1"}).json()
    [entry] = bundle["entry"]
    resource = entry["resource"]
    assert resource["id"] == person
    assert resource["identifier"] == [{"system": NHS, "value": NUMBER}]
    links = {lk["target"]["reference"]: lk["assurance"] for lk in resource["link"]}
    assert links == {"Patient/gp-1": "level2", "Patient/tr-1": "level4",
                     "Patient/cc-1": "level3"}  # fmt: skip
    assert api.get("gp", f"/fhir/Person/{person}").json()["id"] == person
    by_number = api.get("gp", "/fhir/Person", params={"identifier": f"{NHS}|{NUMBER}"}).json()
    assert [e["resource"]["id"] for e in by_number["entry"]] == [person]
    assert api.get("gp", "/fhir/Person", params={"name": "x"}).status_code == 400
    assert api.client.put(f"/fhir/Person/{person}", json={}).status_code == 405
    assert api.get("patient", f"/fhir/Person/{person}").status_code == 200
    # $everything over HTTP holds every record of the person.
    ids = {
        e["resource"]["id"]
        for e in api.get("patient", "/fhir/Patient/gp-1/$everything").json()["entry"]
    }
    assert {"gp-1", "tr-1", "cc-1"} <= ids


def test_the_model_is_viewable_by_administrators(api):
    api, _ = api
    assert api.get("gp", "/mpi/model").status_code == 403
    model = api.get("admin", "/mpi/model").json()
    assert model["version"] == 1 and model["thresholds"] == {"upper": 0.995, "lower": 0.5}
    assert any(p["comparison"] == "dob" and p["match_weight"] > 5
               for p in model["parameters"])  # fmt: skip
    chart = api.get("admin", "/mpi/model/chart")
    assert chart.status_code == 200 and "<svg" in chart.text and "dob" in chart.text
    spec = api.get("admin", "/mpi/model/chart", params={"format": "vega-lite"}).json()
    assert "$schema" in spec and "vega-lite" in spec["$schema"]


def test_the_gate_follows_linkage_and_a_split(api):
    """The GP (registration with gp-1) sees the council's record of the same person once it
    is linked without an NHS number, and no longer once a data-quality officer splits it."""
    api, store = api
    store.create(patient("cc-1", code="C1"), res_id="cc-1")
    store.create(observation("cc-obs", "cc-1"), res_id="cc-obs")
    assert api.get("gp", "/fhir/Observation/cc-obs").status_code == 200
    ids = {
        e["resource"]["id"] for e in api.get("gp", "/fhir/Patient/gp-1/$everything").json()["entry"]
    }
    assert "cc-obs" in ids
    assert api.post("dq", "/mpi/split", {"patient": "Patient/cc-1"}).status_code == 200
    assert api.get("gp", "/fhir/Observation/cc-obs").status_code == 403
    assert api.get("patient", "/fhir/Observation/cc-obs").status_code == 403
