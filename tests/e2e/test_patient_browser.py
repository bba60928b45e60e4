"""The patient app in a real browser against a real server (issue 7's scenarios), on a
phone-sized screen:

- a patient signs in with their NHS number and sees their record from their GP, the hospital
  and social care, each item saying where it came from; results have normal ranges and charts;
- they download the whole record as a FHIR Bundle (parsed here) and as a summary document;
- a GP looks at their record in the shared care record; the look appears in "Who has looked
  at your record", and checking it verifies it against a signed checkpoint;
- they set the national data opt-out and remove it again;
- every way of reaching another person's data is refused: ids in the app's URLs, the API with
  the patient's own token, the downloads;
- axe-core finds no WCAG 2.2 A/AA violation on any page (and the summary document).
"""

from __future__ import annotations

import json

import pytest
from browser_support import (
    api,
    assert_accessible,
    local_only,
    operator_token,
    sign_in,
    sign_in_patient,
)

from care_support import CarePopulation, Person
from carelight.apps.patient.record import PARTS

TRUST = "Brackenfold and Harrowgill Teaching Hospitals NHS Trust"
COUNCIL = "Calderbrook Council Adult Social Care"
GP = "Brackenfold Medical Centre"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser):
    # axe-core is injected as a script, which the pages' Content-Security-Policy forbids.
    ctx = local_only(browser.new_context(bypass_csp=True, viewport=PHONE, accept_downloads=True))
    page = ctx.new_page()
    page.set_default_timeout(10_000)
    yield page
    ctx.close()


def test_a_patient_sees_their_record_from_every_source_and_downloads_it(
    phone, care_server, care_patient: Person, tmp_path
):
    page = phone
    page.goto(f"{care_server}/patient/record")  # not signed in: to the sign-in page
    assert page.url.startswith(f"{care_server}/patient/signin")
    assert_accessible(page)
    page.get_by_role("button", name="Sign in").click()  # nothing typed: what to fix
    assert page.locator(".nhsuk-error-summary").is_visible()
    assert_accessible(page)
    sign_in_patient(page, care_server, care_patient.nhs_number)
    assert_accessible(page)

    page.get_by_role("link", name="Your record", exact=True).click()
    page.wait_for_url(f"{care_server}/patient/record")
    body = page.inner_text("main")
    for source in (GP, TRUST, COUNCIL):
        assert source in body, source
    assert_accessible(page)
    seen = set()
    for slug, (heading, _, _) in PARTS.items():
        page.goto(f"{care_server}/patient/record/{slug}")
        assert page.locator("h1").inner_text() == heading
        seen |= {s for s in (GP, TRUST, COUNCIL) if f"From {s}" in page.inner_text("main")}
        if slug == "results":
            assert page.locator("svg.care-chart").count() >= 1
            assert "Normal range" in page.inner_text("main")
        assert_accessible(page)
    assert seen == {GP, TRUST, COUNCIL}  # items from all three say where they came from

    page.goto(f"{care_server}/patient/download")
    assert_accessible(page)
    with page.expect_download() as got:
        page.get_by_role("link", name="Download your record as a FHIR file (JSON)").click()
    bundle = json.loads(got.value.path().read_text())
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    resources = [e["resource"] for e in bundle["entry"]]
    assert len(resources) > 50
    assert any("/X9A/" in r.get("meta", {}).get("source", "") for r in resources)
    assert any("/X99LB/" in r.get("meta", {}).get("source", "") for r in resources)
    with page.expect_download() as got:
        page.get_by_role("link", name="Download your record as a document (HTML)").click()
    document = got.value.path().read_text()
    assert care_patient.name in document and "Normal range" in document
    page.set_content(document)  # the document is accessible too
    assert_accessible(page)


def test_a_gp_look_appears_in_the_list_and_verifies(
    browser, phone, care_server, care_patient: Person
):
    gp = local_only(browser.new_context())
    try:
        gp_page = gp.new_page()
        sign_in(gp_page, care_server, "gp")
        gp_page.goto(f"{care_server}/care/patient/{care_patient.patient_id}")
        assert "Active problems" in gp_page.inner_text("main")
    finally:
        gp.close()

    page = phone
    sign_in_patient(page, care_server, care_patient.nhs_number, "/patient/accesses")
    first = page.locator(".app-accesses .app-entry").first
    text = first.inner_text()
    assert f"GP, {GP} (Y99101)" in text and "Looked at your record" in text
    assert "Your care" in text
    assert_accessible(page)
    first.get_by_role("link", name="Check this entry").click()
    assert "Verified: this entry is in the log, unchanged" in page.inner_text("main")
    assert_accessible(page)


def test_the_patient_sets_and_removes_the_opt_out(
    phone, care_server, care_patient: Person, care_population: CarePopulation
):
    page = phone
    sign_in_patient(page, care_server, care_patient.nhs_number, "/patient/choices")
    assert "Your care is not affected" in page.inner_text("main")
    assert_accessible(page)
    page.check("#research-opt-out")
    page.check("#planning-opt-out")
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_url(f"{care_server}/patient/choices?saved=1")
    assert "Your choices are saved" in page.inner_text("main")
    assert_accessible(page)
    token = operator_token(care_server, care_population.env, care_patient.nhs_number)
    status, body = api(care_server, token, "/access/opt-out")
    assert status == 200 and json.loads(body)["research"] and json.loads(body)["planning"]

    page.check("#research")
    page.check("#planning")
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_url(f"{care_server}/patient/choices?saved=1")
    status, body = api(care_server, token, "/access/opt-out")
    assert not json.loads(body)["research"] and not json.loads(body)["planning"]

    page.goto(f"{care_server}/patient/data-use")
    assert "No research project has used your data" in page.inner_text("main")
    assert_accessible(page)


def test_every_way_to_another_persons_data_is_refused(
    phone, care_server, care_patient: Person, care_population: CarePopulation
):
    other = care_population.social_care
    admin = operator_token(care_server, care_population.env, "admin")
    status, body = api(care_server, admin, f"/audit/patient/{other.patient_id}/entries?_count=1")
    their_entry = json.loads(body)["entries"][0]["index"]

    # The API, with the patient's own token.
    token = operator_token(care_server, care_population.env, care_patient.nhs_number)
    assert api(care_server, token, f"/fhir/Patient/{care_patient.patient_id}")[0] == 200
    for path in (
        f"/fhir/Patient/{other.patient_id}",
        f"/fhir/Patient/{other.patient_id}/$everything",
        f"/fhir/Observation?subject=Patient/{other.patient_id}&_summary=count",
        f"/audit/patient/{other.patient_id}/entries",
        f"/audit/entries/{their_entry}",
    ):
        status, body = api(care_server, token, path)
        if status == 200:  # a search answers, but with nothing in it
            assert json.loads(body).get("total") == 0, path
        else:
            assert status in (403, 404), (path, status)

    # The app: its pages take no person's id; a log entry about someone else is not shown.
    page = phone
    sign_in_patient(page, care_server, care_patient.nhs_number)
    response = page.goto(f"{care_server}/patient/accesses/{their_entry}")
    assert response is not None and response.status == 404
    assert "Verified" not in page.inner_text("main")
    assert_accessible(page)
    response = page.goto(f"{care_server}/care/patient/{other.patient_id}")
    assert response is not None and response.status == 403
    with page.expect_download() as got:
        page.evaluate(
            "href => { const a = document.createElement('a'); a.href = href; a.download = '';"
            " document.body.appendChild(a); a.click(); }",
            f"/patient/download/record.json?patient={other.patient_id}",
        )
    bundle = json.loads(got.value.path().read_text())
    ids = {
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    }
    assert care_patient.patient_id in ids and other.patient_id not in ids
