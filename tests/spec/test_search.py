"""Spec: search (R4 3.1.1), on every engine: types, modifiers, prefixes, chains, includes."""

from __future__ import annotations

import pytest
from fhirdata import NHS, condition, observation, organization, patient


def post(client, resource) -> dict:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert r.status_code == 201, r.text
    return r.json()


def ids(bundle: dict, mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def search(client, path: str, **params) -> dict:
    r = client.get(f"/fhir/{path}", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
    return body


@pytest.fixture
def people(client):
    jane = post(client, patient("Smith", "Jane", "9990000018", "1950-03-04", "female", "LS1 4AP"))
    zoe = post(client, patient("Brontë", "Zoë", "9990000026", "1988-11-30", "female", "BD7 1DP"))
    bob = post(client, patient("Smithson", "Robert", "9990000034", "2001-07-15", "male", "LS6 2AB"))
    return {"jane": jane["id"], "zoe": zoe["id"], "bob": bob["id"]}


def test_token_identifier(client, people):
    b = search(client, "Patient", identifier=f"{NHS}|9990000026")
    assert ids(b) == [people["zoe"]] and b["total"] == 1
    assert ids(search(client, "Patient", identifier="9990000026")) == [people["zoe"]]
    assert ids(search(client, "Patient", identifier="http://other|9990000026")) == []
    assert sorted(ids(search(client, "Patient", identifier=f"{NHS}|"))) == sorted(people.values())


def test_token_or_and_not(client, people):
    assert sorted(ids(search(client, "Patient", gender="male,female"))) == sorted(people.values())
    assert ids(search(client, "Patient", **{"gender:not": "female"})) == [people["bob"]]


def test_token_text(client, people):
    p = people["jane"]
    post(client, observation(p))
    creatinine = observation(p)
    creatinine["code"] = {"text": "Creatinine"}
    post(client, creatinine)
    b = search(client, "Observation", **{"code:text": "haemoglobin"})
    assert len(ids(b)) == 1


def test_string_default_exact_contains(client, people):
    assert sorted(ids(search(client, "Patient", family="smith"))) == sorted(
        [people["jane"], people["bob"]]
    )
    assert ids(search(client, "Patient", **{"family:exact": "Smith"})) == [people["jane"]]
    assert ids(search(client, "Patient", **{"family:exact": "smith"})) == []
    assert ids(search(client, "Patient", **{"family:contains": "ONT"})) == [people["zoe"]]
    assert ids(search(client, "Patient", name="zoe")) == [people["zoe"]]  # accents ignored
    assert ids(search(client, "Patient", given="rob")) == [people["bob"]]


def test_string_address_postcode(client, people):
    assert sorted(ids(search(client, "Patient", **{"address-postalcode": "LS"}))) == sorted(
        [people["jane"], people["bob"]]
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("1950-03-04", ["jane"]),
        ("1950", ["jane"]),
        ("eq1950-03", ["jane"]),
        ("ne1950-03-04", ["zoe", "bob"]),
        ("gt1988-11-30", ["bob"]),
        ("ge1988-11-30", ["zoe", "bob"]),
        ("lt1988-11-30", ["jane"]),
        ("le1988-11-30", ["jane", "zoe"]),
        ("sa1988", ["bob"]),
        ("eb1988", ["jane"]),
    ],
)
def test_date_prefixes(client, people, query, expected):
    assert sorted(ids(search(client, "Patient", birthdate=query))) == sorted(
        people[n] for n in expected
    )


def test_date_and_by_repetition(client, people):
    r = client.get("/fhir/Patient?birthdate=ge1950&birthdate=lt2000")
    assert sorted(ids(r.json())) == sorted([people["jane"], people["zoe"]])


def test_date_ap(client, people):
    assert ids(search(client, "Patient", birthdate="ap1950-03-06")) == [people["jane"]]


def test_quantity_and_number_prefixes(client, people):
    p = people["jane"]
    low = post(client, observation(p, value=40))
    high = post(client, observation(p, value=60))
    assert ids(search(client, "Observation", **{"value-quantity": "gt50"})) == [high["id"]]
    assert ids(search(client, "Observation", **{"value-quantity": "le40"})) == [low["id"]]
    assert ids(search(client, "Observation", **{"value-quantity": "40||mmol/mol"})) == [low["id"]]
    unit = "40|http://unitsofmeasure.org|mmol/mol"
    assert ids(search(client, "Observation", **{"value-quantity": unit})) == [low["id"]]
    assert ids(search(client, "Observation", **{"value-quantity": "40||%"})) == []
    assert ids(search(client, "Observation", **{"value-quantity": "ne40"})) == [high["id"]]
    assert ids(search(client, "Observation", **{"value-quantity": "ap58"})) == [high["id"]]


def test_reference_forms(client, people):
    p = people["jane"]
    obs = post(client, observation(p))
    post(client, observation(people["bob"]))
    for q in ({"subject": f"Patient/{p}"}, {"subject": p}, {"patient": p},
              {"subject:Patient": p}, {"subject": f"http://testserver/fhir/Patient/{p}"}):  # fmt: skip
        assert ids(search(client, "Observation", **q)) == [obs["id"]], q


def test_missing_modifier(client, people):
    p = people["jane"]
    with_date = post(client, observation(p))
    no_date = observation(p)
    del no_date["effectiveDateTime"]
    without = post(client, no_date)
    assert ids(search(client, "Observation", **{"date:missing": "true"})) == [without["id"]]
    assert ids(search(client, "Observation", **{"date:missing": "false"})) == [with_date["id"]]


def test_id_and_last_updated(client, people):
    assert ids(search(client, "Patient", _id=people["bob"])) == [people["bob"]]
    assert len(ids(search(client, "Patient", _lastUpdated="gt2000-01-01"))) == 3
    assert ids(search(client, "Patient", _lastUpdated="lt2000-01-01")) == []


def test_chaining(client, people):
    p = people["zoe"]
    obs = post(client, observation(p))
    post(client, observation(people["jane"]))
    b = search(client, "Observation", **{"subject:Patient.identifier": f"{NHS}|9990000026"})
    assert ids(b) == [obs["id"]]
    assert ids(search(client, "Observation", **{"patient.family": "bronte"})) == [obs["id"]]


def test_has(client, people):
    post(client, observation(people["zoe"], code="4548-4"))
    post(client, observation(people["bob"], code="2160-0"))
    b = search(client, "Patient", **{"_has:Observation:patient:code": "4548-4"})
    assert ids(b) == [people["zoe"]]


def test_include_and_revinclude(client, people):
    org = post(client, organization())
    gp_patient = post(client, patient("Ng", "Amy", "9990000042", generalPractitioner=[
        {"reference": f"Organization/{org['id']}"}]))  # fmt: skip
    obs = post(client, observation(gp_patient["id"]))
    b = search(client, "Observation", _id=obs["id"], _include="Observation:subject")
    assert ids(b) == [obs["id"]] and ids(b, "include") == [gp_patient["id"]]
    b2 = search(client, "Observation", _id=obs["id"], _include="Observation:subject",
                **{"_include:iterate": "Patient:general-practitioner"})  # fmt: skip
    assert sorted(ids(b2, "include")) == sorted([gp_patient["id"], org["id"]])
    b3 = search(client, "Patient", _id=gp_patient["id"], _revinclude="Observation:subject")
    assert ids(b3, "include") == [obs["id"]]


def test_derived_parameters(client, people):
    """combo-code, combo-value-quantity and patient have no index rows of their own: they read
    code/component-code, value-quantity/component-value-quantity and subject (a Patient)."""
    p, other = people["jane"], people["bob"]
    bp = {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
          "valueQuantity": {"value": 131, "unit": "mm[Hg]",
                            "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}  # fmt: skip
    panel = post(client, observation(p, code="85354-9", value=1, component=[bp]))
    plain = post(client, observation(other, code="8480-6", value=120, unit="mm[Hg]"))
    group = post(client, {"resourceType": "Group", "type": "person", "actual": True})
    of_group = post(client, observation(p, subject={"reference": f"Group/{group['id']}"}))
    assert sorted(ids(search(client, "Observation", **{"combo-code": "8480-6"}))) == sorted(
        [panel["id"], plain["id"]]
    )
    assert ids(search(client, "Observation", **{"combo-code": "85354-9"})) == [panel["id"]]
    assert ids(search(client, "Observation", **{"combo-value-quantity": "ge130"})) == [panel["id"]]
    b = search(client, "Observation", **{"combo-code:missing": "true"})
    assert ids(b) == []
    b = search(client, "Observation", **{"patient:missing": "true"})
    assert ids(b) == [of_group["id"]]  # its subject is a Group: no patient
    assert ids(search(client, "Observation", patient=other)) == [plain["id"]]
    b = search(client, "Observation", _id=plain["id"], _include="Observation:patient")
    assert ids(b, "include") == [other]
    b = search(client, "Observation", _id=of_group["id"], _include="Observation:patient")
    assert ids(b, "include") == []
    b = search(client, "Patient", _id=other, _revinclude="Observation:patient")
    assert ids(b, "include") == [plain["id"]]
    b = search(client, "Patient", **{"_has:Observation:patient:combo-code": "8480-6"})
    assert sorted(ids(b)) == sorted([p, other])
    b = search(client, "Observation", _id=f"{panel['id']},{plain['id']}", _sort="-combo-code")
    assert ids(b) == [panel["id"], plain["id"]]  # 85354-9 sorts after 8480-6


def test_sort_and_paging(client, people):
    b = search(client, "Patient", _sort="-birthdate")
    assert ids(b) == [people["bob"], people["zoe"], people["jane"]]
    b = search(client, "Patient", _sort="family,given")
    assert ids(b) == [people["zoe"], people["jane"], people["bob"]]
    page1 = search(client, "Patient", _sort="birthdate", _count=2, _total="accurate")
    assert ids(page1) == [people["jane"], people["zoe"]] and page1["total"] == 3
    links = {link["relation"]: link["url"] for link in page1["link"]}
    assert "next" in links and "previous" not in links
    page2 = client.get(links["next"].replace("http://testserver", "")).json()
    assert ids(page2) == [people["bob"]]
    assert "previous" in {link["relation"] for link in page2["link"]}
    assert "next" not in {link["relation"] for link in page2["link"]}


def test_summary_count_and_elements(client, people):
    b = search(client, "Patient", _summary="count")
    assert b["total"] == 3 and "entry" not in b
    b = search(client, "Patient", _elements="gender", _id=people["jane"])
    res = b["entry"][0]["resource"]
    assert res["gender"] == "female" and "name" not in res
    assert any(t["code"] == "SUBSETTED" for t in res["meta"]["tag"])


def test_post_search(client, people):
    r = client.post("/fhir/Patient/_search", data={"family": "smithson"})
    assert r.status_code == 200
    assert ids(r.json()) == [people["bob"]]


def test_compartment_search_by_category_and_status(client, people):
    p = people["jane"]
    post(client, condition(p))
    b = search(client, "Condition", patient=p, **{"clinical-status": "active"})
    assert len(ids(b)) == 1
    assert ids(search(client, "Condition", patient=p, **{"clinical-status": "resolved"})) == []


@pytest.mark.parametrize(
    "query",
    [
        "Patient?colour=blue",  # unknown parameter
        "Patient?birthdate=not-a-date",
        "Patient?family:fuzzy=x",  # unknown modifier
        "Observation?value-quantity=abc",
        "Patient?_count=lots",
        "Patient?_sort=colour",
        "Observation?subject.name=x",  # ambiguous chain target
        "Patient?_include=Observation:subject",  # include must start at Patient
        "Patient?_summary=maybe",
        "Patient?gender:missing=perhaps",
        "Patient?_has:Observation:patient=1",
    ],
)
def test_bad_searches_are_400(client, query):
    r = client.get(f"/fhir/{query}")
    assert r.status_code == 400, query
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["diagnostics"]


def test_everything(client, people):
    org = post(client, organization())
    p = post(client, patient("Ng", "Amy", "9990000042", generalPractitioner=[
        {"reference": f"Organization/{org['id']}"}]))  # fmt: skip
    obs = [post(client, observation(p["id"], value=v)) for v in (40, 41, 42)]
    cond = post(client, condition(p["id"]))
    post(client, observation(people["jane"]))  # another patient's: must not appear
    b = client.get(f"/fhir/Patient/{p['id']}/$everything").json()
    got = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in b["entry"]}
    want = {("Patient", p["id"]), ("Organization", org["id"]), ("Condition", cond["id"])}
    want |= {("Observation", o["id"]) for o in obs}
    assert got == want
    assert client.get("/fhir/Patient/nobody/$everything").status_code == 404


def test_everything_pages_hold_each_resource_once(client):
    org = post(client, organization())
    p = post(client, patient("Ng", "Amy", "9990000042", generalPractitioner=[
        {"reference": f"Organization/{org['id']}"}]))  # fmt: skip
    for v in (40, 41, 42):
        obs = observation(p["id"], value=v)
        obs["performer"] = [{"reference": f"Organization/{org['id']}"}]
        post(client, obs)
    seen: list[tuple[str, str]] = []
    url = f"/fhir/Patient/{p['id']}/$everything?_count=2"
    while url:
        page = client.get(url).json()
        seen += [(e["resource"]["resourceType"], e["resource"]["id"]) for e in page["entry"]]
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = nxt[0].replace("http://testserver", "") if nxt else None
    assert len(seen) == len(set(seen)) == 5  # the patient, 3 observations, the organisation once
    assert ("Organization", org["id"]) in seen
