"""The patient app's pages in process: sign-in, my record through the gate and the log, the
downloads, who has looked (with verification), data choices, and every way of reaching
another person's data refused."""

from __future__ import annotations

import re

import orjson
from patient_app_support import csrf_of, sign_in_patient, sign_in_professional

from care_support import CarePopulation, Person
from carelight.access.accounts import principal_for
from carelight.access.optout import may_use
from carelight.access.services import access_services
from carelight.audit.events import patients_in_entry
from clients import bearer_token
from patient_support import patient_account

TRUST = "Brackenfold and Harrowgill Teaching Hospitals NHS Trust"
COUNCIL = "Calderbrook Council Adult Social Care"
GP = "Brackenfold Medical Centre"


def own_entries(app, patient_id: str, n: int = 5) -> list[bytes]:
    return [leaf for _, leaf in app.state.trail.log.entries_for_patient(patient_id, 0, n)]


def test_pages_need_a_signed_in_patient(web):
    response = web.get("/patient/record", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/patient/signin?next=%2Fpatient%2Frecord"
    sign_in_professional(web, "gp")
    refused = web.get("/patient/record")
    assert refused.status_code == 403 and "This is for patients" in refused.text


def test_sign_in_explains_what_to_fix(web, care_patient: Person):
    page = web.get("/patient/signin")
    form = {"csrf": csrf_of(page.text), "next": "/patient", "password": "carelight-demo"}
    for nhs, message in (
        ("", "Enter your NHS number"),
        ("12345", "Your NHS number is 10 digits"),
        ("1234567890", "not a valid NHS number"),
    ):
        bad = web.post("/patient/signin", data={**form, "nhs": nhs})
        assert bad.status_code == 400 and message in bad.text
    wrong = web.post(
        "/patient/signin",
        data={**form, "nhs": care_patient.nhs_number, "password": "not-it-at-all"},
    )
    assert wrong.status_code == 400 and "The NHS number or password is not right" in wrong.text
    stale = web.post("/patient/signin", data={**form, "csrf": "x", "nhs": care_patient.nhs_number})
    assert stale.status_code == 400 and "expired" in stale.text
    # Only pages of this app are places to go after signing in.
    elsewhere = web.post(
        "/patient/signin",
        data={**form, "nhs": care_patient.nhs_number, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert elsewhere.headers["location"] == "/patient"


def test_my_record_comes_from_every_source_through_the_gate_and_is_logged_first(
    web, patient_app, care_patient: Person
):
    sign_in_patient(web, care_patient.nhs_number)
    page = web.get("/patient/record")
    assert page.status_code == 200
    for source in (GP, TRUST, COUNCIL):
        assert source in page.text
    assert care_patient.name in page.text
    assert page.headers["cache-control"] == "no-store"
    newest = orjson.loads(own_entries(patient_app, care_patient.patient_id, 1)[0])
    assert newest["purposeOfEvent"][0]["coding"][0]["code"] == "PATRQT"
    assert newest["agent"][0]["who"] == {"reference": f"Patient/{care_patient.patient_id}"}
    results = web.get("/patient/record/results")
    assert "Normal range" in results.text and "svg" in results.text
    assert "than the normal range" in results.text  # at least one flagged result
    medicines = web.get("/patient/record/medicines")
    assert (
        "Medicines you take now" in medicines.text and "Medicines you took before" in medicines.text
    )
    assert web.get("/patient/record/nothing").status_code == 404


def test_the_downloads_hold_the_whole_record_and_only_it(web, patient_app, care_patient: Person):
    sign_in_patient(web, care_patient.nhs_number)
    response = web.get("/patient/download/record.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.headers["content-disposition"].startswith("attachment;")
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    resources = [e["resource"] for e in bundle["entry"]]
    patients = {r["id"] for r in resources if r["resourceType"] == "Patient"}
    assert care_patient.patient_id in patients
    nhs = {
        i["value"] for r in resources if r["resourceType"] == "Patient"
        for i in r.get("identifier", ()) if i["system"] == "https://fhir.nhs.uk/Id/nhs-number"
    }  # fmt: skip
    assert nhs == {care_patient.nhs_number}  # nobody else's record
    sources = {r.get("meta", {}).get("source", "") for r in resources}
    assert {"/Y99101/", "/X9A/", "/X99LB/"} <= {
        s for src in sources for s in re.findall(r"/[A-Z0-9]+/", src)
    }
    newest = own_entries(patient_app, care_patient.patient_id, 1)[0]
    assert b'"code":"export"' in newest
    document = web.get("/patient/download/record.html")
    assert document.status_code == 200 and "attachment" in document.headers["content-disposition"]
    assert care_patient.name in document.text and "Normal range" in document.text
    assert "<script" not in document.text


def test_a_gp_look_is_listed_for_the_patient_and_verifies(web, patient_app, care_patient: Person):
    sign_in_professional(web, "gp")
    assert web.get(f"/care/patient/{care_patient.patient_id}").status_code == 200
    web.cookies.clear()
    sign_in_patient(web, care_patient.nhs_number)
    web.get("/patient/record")  # the patient's own look is not listed
    page = web.get("/patient/accesses")
    assert page.status_code == 200
    first = page.text.index('class="app-entry')
    assert f"GP, {GP} (Y99101)" in page.text[first:]
    assert "Your care" in page.text and "Looked at your record" in page.text
    assert "Your own request" not in page.text
    index = re.search(r'href="/patient/accesses/(\d+)"', page.text).group(1)
    check = web.get(f"/patient/accesses/{index}")
    assert check.status_code == 200
    assert "Verified: this entry is in the log, unchanged" in check.text
    assert "/audit/proof/inclusion?index=" in check.text


def test_another_persons_log_entry_is_refused_and_the_refusal_logged(
    web, patient_app, care_patient: Person, care_population: CarePopulation
):
    other = care_population.stranger_to_trust
    sign_in_professional(web, "gp")
    web.get(f"/care/patient/{other.patient_id}")
    theirs = patient_app.state.trail.log.entries_for_patient(other.patient_id, 0, 1)[0][0]
    web.cookies.clear()
    sign_in_patient(web, care_patient.nhs_number)
    refused = web.get(f"/patient/accesses/{theirs}")
    assert refused.status_code == 404 and "not in your list" in refused.text
    assert "Verified" not in refused.text
    latest = own_entries(patient_app, other.patient_id, 1)[0]
    assert b"audit-read" in latest and b"the entry is about someone else" in latest
    for bad in ("99999999", "-1", "abc"):
        assert web.get(f"/patient/accesses/{bad}").status_code == 404


def test_the_opt_out_is_set_at_once_and_removed(web, patient_app, care_population: CarePopulation):
    # Someone of their own: the browser test sets the care patient's choices meanwhile.
    person = patient_account(care_population, care_population.social_care)
    engine = patient_app.state.store.engine
    sign_in_patient(web, person.nhs_number)
    page = web.get("/patient/choices")
    assert "Your care is not affected" in page.text
    csrf = csrf_of(page.text)
    assert web.post("/patient/choices", data={"research": "opt-out"}).status_code == 400
    missing = web.post("/patient/choices", data={"csrf": csrf, "research": "opt-out"})
    assert missing.status_code == 400 and "for planning" in missing.text
    saved = web.post(
        "/patient/choices", data={"csrf": csrf, "research": "opt-out", "planning": "allow"}
    )
    assert saved.status_code == 200 and "Your choices are saved" in saved.text
    assert "Research: your data will not be used" in saved.text
    assert not may_use(engine, person.patient_id, "HRESCH")
    assert may_use(engine, person.patient_id, "HOPERAT")
    assert may_use(engine, person.patient_id, "TREAT")
    web.post("/patient/choices", data={"csrf": csrf, "research": "allow", "planning": "allow"})
    assert may_use(engine, person.patient_id, "HRESCH")
    assert "How your data is used" in web.get("/patient/data-use").text


def test_the_patients_token_reaches_no_one_elses_data(
    web, patient_app, care_patient: Person, care_population: CarePopulation
):
    account = access_services(patient_app).accounts.get(care_patient.nhs_number)
    token = bearer_token(patient_app, principal_for(account))
    headers = {"Authorization": f"Bearer {token}"}
    other = care_population.social_care.patient_id
    assert web.get(f"/fhir/Patient/{care_patient.patient_id}", headers=headers).status_code == 200
    for path in (
        f"/fhir/Patient/{other}",
        f"/fhir/Patient/{other}/$everything",
        f"/audit/patient/{other}/entries",
    ):
        assert web.get(path, headers=headers).status_code in (403, 404), path
    searched = web.get(f"/fhir/Observation?subject=Patient/{other}", headers=headers).json()
    assert searched.get("total", 0) == 0 and not searched.get("entry")
    theirs = patient_app.state.trail.log.entries_for_patient(other, 0, 1)
    if theirs and care_patient.patient_id not in patients_in_entry(theirs[0][1]):
        assert web.get(f"/audit/entries/{theirs[0][0]}", headers=headers).status_code == 403
    # The app's pages take no one's id: the session is what says whose record it is.
    sign_in_patient(web, care_patient.nhs_number)
    mine = web.get(f"/patient/download/record.json?patient={other}").json()
    ids = {e["resource"]["id"] for e in mine["entry"] if e["resource"]["resourceType"] == "Patient"}
    assert other not in ids and care_patient.patient_id in ids
    # And a bearer token is no way into the app's pages (they use the web session only).
    web.cookies.clear()
    assert web.get("/patient/record", headers=headers, follow_redirects=False).status_code == 303
