"""The shared care record in a real browser against a real server (issue 6's scenarios):

- a GP finds a patient (by NHS number, and by name, date of birth and postcode with typos) and
  sees hospital and social care entries; the record reads without JavaScript;
- a GP sees social care that arrived without an NHS number, linked by the master patient index;
- a GP sees social care that arrived without an NHS number, linked by the master patient index;
- a social worker records a needs assessment, a care plan and a visit note; the GP sees them;
- a nurse with no care relationship is refused, breaks glass with a reason, sees the record
  marked as break-glass, and the event is in the transparency log;
- axe-core finds no WCAG 2.2 A/AA violation on any page along the way.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from browser_support import assert_accessible, local_only, sign_in

from care_support import CarePopulation
from carelight.apps.care.present import CATEGORIES

TRUST = "Brackenfold and Harrowgill Teaching Hospitals NHS Trust"
COUNCIL = "Calderbrook Council Adult Social Care"


def test_a_gp_finds_a_person_and_sees_hospital_and_social_care(
    page, browser, care_server, care_population: CarePopulation
):
    person = care_population.shared
    page.goto(f"{care_server}/care")  # not signed in: to the sign-in page, and back after
    assert page.url.startswith(f"{care_server}/signin")
    assert_accessible(page)
    sign_in(page, care_server, "gp")
    assert_accessible(page)

    # Tolerant matching: a typo in the surname, the postcode in lower case without its space.
    family = person.name.split()[-1]
    typo = family[:-2] + family[-1] + family[-2]
    page.fill("#name", f"{person.name.split()[0]} {typo}")
    y, m, d = person.birth_date.split("-")
    page.fill("#dob-day", str(int(d)))
    page.fill("#dob-month", str(int(m)))
    page.fill("#dob-year", y)
    page.fill("#postcode", person.postcode.replace(" ", "").lower())
    page.get_by_role("button", name="Search by details").click()
    # Waits for the results page: a count taken at once can see the page before it loads.
    from playwright.sync_api import expect  # here: without Playwright the fixtures skip

    expect(page.locator(f"a[href='/care/patient/{person.patient_id}']")).to_have_count(1)
    assert_accessible(page)

    page.goto(f"{care_server}/care")
    page.fill("#nhs", f"{person.nhs_number[:3]} {person.nhs_number[3:6]} {person.nhs_number[6:]}")
    page.get_by_role("button", name="Search by NHS number").click()
    assert_accessible(page)
    page.click(f"a[href='/care/patient/{person.patient_id}']")
    page.wait_for_url(f"{care_server}/care/patient/{person.patient_id}")
    body = page.inner_text("main")
    assert "Registered GP" in body and "Brackenfold Medical Centre" in body
    assert f"{TRUST} (" in body and f"{COUNCIL} (" in body  # "Records from", with counts
    assert f"Recorded by {COUNCIL}" in body  # the care package, the care plan
    assert page.locator("svg.care-chart").count() >= 1  # blood pressure at least
    assert "Break-glass" not in page.inner_text("body")
    assert_accessible(page)

    page.get_by_role("link", name="Timeline", exact=True).click()
    timeline = page.inner_text("main")
    assert f"Recorded by {TRUST}" in timeline and f"Recorded by {COUNCIL}" in timeline
    assert_accessible(page)
    for slug in CATEGORIES:
        page.goto(f"{care_server}/care/patient/{person.patient_id}/{slug}")
        assert page.locator("h1").inner_text() == CATEGORIES[slug][0]
        assert_accessible(page)

    # Reading works without JavaScript.
    cookies = page.context.cookies()
    plain = local_only(browser.new_context(java_script_enabled=False))
    try:
        plain.add_cookies(cookies)
        no_js = plain.new_page()
        no_js.goto(f"{care_server}/care/patient/{person.patient_id}")
        assert "Active problems" in no_js.inner_text("main")
        assert f"Recorded by {COUNCIL}" in no_js.inner_text("main")
    finally:
        plain.close()


def test_a_social_worker_records_an_assessment_and_the_gp_sees_it(
    browser, care_server, care_population: CarePopulation
):
    person = care_population.social_care
    record = f"{care_server}/care/patient/{person.patient_id}"
    worker = local_only(browser.new_context(bypass_csp=True))
    try:
        page = worker.new_page()
        sign_in(page, care_server, "socialworker")
        page.goto(record)
        page.get_by_role("link", name="Record a needs assessment").click()
        assert_accessible(page)
        page.get_by_role(
            "button", name="Save the assessment"
        ).click()  # nothing answered: every required question
        assert page.locator(".nhsuk-error-summary").is_visible()
        assert page.title().startswith("Error:")
        assert_accessible(page)
        for radio in page.locator("fieldset").all():
            options = radio.locator("input[type=radio]")
            options.nth(
                options.count() - 1 if "caring" in (radio.get_attribute("id") or "") else 1
            ).check()
        page.fill("#summary", "Needs help with meals and washing; e2e-assessment-marker")
        page.get_by_role("button", name="Save the assessment").click()
        page.wait_for_url(f"{record}?recorded=assessment")
        assert "Saved" in page.inner_text("main")
        assert_accessible(page)

        page.get_by_role("link", name="Record a care and support plan").click()
        assert_accessible(page)
        page.fill("#description", "Two home care visits a day; e2e-plan-marker")
        page.fill("#goal1", "Stay at home safely")
        page.get_by_role("button", name="Save the care plan").click()
        page.wait_for_url(f"{record}?recorded=care-plan")

        page.get_by_role("link", name="Record a visit note").click()
        assert_accessible(page)
        page.fill("#note", "Visited at home, well in herself; e2e-note-marker")
        page.get_by_role("button", name="Save the note").click()
        page.wait_for_url(f"{record}?recorded=visit-note")
    finally:
        worker.close()

    gp = local_only(browser.new_context(bypass_csp=True))
    try:
        page = gp.new_page()
        sign_in(page, care_server, "gp")
        page.goto(f"{record}/assessments")
        text = page.inner_text("main")
        assert "e2e-assessment-marker" in text and f"Recorded by {COUNCIL}" in text
        page.goto(f"{record}/care-plans")
        text = page.inner_text("main")
        assert "e2e-plan-marker" in text and "Goal: Stay at home safely" in text
        page.goto(f"{record}/notes")
        assert "e2e-note-marker" in page.inner_text("main")
        assert_accessible(page)
    finally:
        gp.close()


def test_a_nurse_without_a_relationship_is_refused_and_can_break_glass(
    page, care_server, care_population: CarePopulation
):
    person = care_population.stranger_to_trust
    record = f"{care_server}/care/patient/{person.patient_id}"
    sign_in(page, care_server, "nurse")
    response = page.goto(record)
    assert response is not None and response.status == 403
    assert "no current care relationship" in page.inner_text("main")
    assert "Active problems" not in page.inner_text("main")
    assert_accessible(page)

    page.fill("#reason", "short")
    page.get_by_role("button", name="Break glass and open the record").click()
    assert page.locator(".nhsuk-error-summary").is_visible()
    assert_accessible(page)

    reason = "Collapsed on the ward, need allergies and medicines (e2e)"
    page.fill("#reason", reason)
    page.get_by_role("button", name="Break glass and open the record").click()
    page.wait_for_url(record)
    assert "Break-glass access" in page.inner_text("body")
    assert "Active problems" in page.inner_text("main")
    assert_accessible(page)

    entries = audit_entries(care_server, care_population, person.patient_id)
    texts = [json.dumps(e["entry"]) for e in entries]
    assert any(reason in t for t in texts), "the break-glass grant is not in the log"
    assert any("ETREAT" in t and "everything" in t.lower() for t in texts), (
        "the record read under break-glass is not in the log"
    )


def test_a_gp_sees_social_care_that_arrived_without_an_nhs_number_once_linked(
    page, care_server, care_population: CarePopulation
):
    """The council's system sends a new Patient record with no NHS number, and a note about
    them; the master patient index links the record to the person, so the note is in the
    person's shared record for their GP."""
    person = care_population.stranger_to_trust  # registered at the GP; no council record yet
    gp_record = fhir(care_server, bearer(care_server, care_population, "gp"), "GET",
                     f"Patient/{person.patient_id}")  # fmt: skip
    council = bearer(care_server, care_population, "source-council")
    council_patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": "https://fhir.carelight.example/X99LB/patient-id", "value": "e2e-unnumbered"}
        ],
        **{
            k: gp_record[k]
            for k in ("name", "gender", "birthDate", "address", "telecom")
            if k in gp_record
        },
    }
    created = fhir(care_server, council, "POST", "Patient", council_patient)
    note = {
        "resourceType": "DocumentReference", "status": "current", "docStatus": "final",
        "type": {"text": "Progress note"}, "subject": {"reference": f"Patient/{created['id']}"},
        "date": "2026-01-05T10:00:00+00:00", "description": "Referral received (e2e-linked-marker)",
        "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "data": "UmVmZXJyYWw="}}],
    }  # fmt: skip
    fhir(care_server, council, "POST", "DocumentReference", note)

    sign_in(page, care_server, "gp")
    page.goto(f"{care_server}/care/patient/{person.patient_id}/notes")
    text = page.inner_text("main")
    assert "e2e-linked-marker" in text and f"Recorded by {COUNCIL}" in text
    assert_accessible(page)


def bearer(base: str, population: CarePopulation, username: str) -> str:
    """A bearer token for a demo account (``carelight token``, the operator's tool)."""
    script = Path(sys.executable).parent / "carelight"
    env = {**population.env, "CARELIGHT_BASE_URL": f"{base}/fhir"}
    done = subprocess.run(
        [str(script), "token", "--user", username], env=env, capture_output=True, text=True, check=True
    )  # fmt: skip
    return done.stdout.strip()


def fhir(base: str, token: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{base}/fhir/{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/fhir+json",
            "Accept": "application/fhir+json",
        },
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def audit_entries(base: str, population: CarePopulation, patient_id: str) -> list[dict]:
    """The log's entries about a person, read as the auditor (``admin``) through the API."""
    request = urllib.request.Request(
        f"{base}/audit/patient/{patient_id}/entries?_count=100",
        headers={"Authorization": f"Bearer {bearer(base, population, 'admin')}"},
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())["entries"]
