"""The care app's pages in process: sign-in, roles, the gate and the log, forms and CSRF."""

from __future__ import annotations

from care_app_support import csrf_of, sign_in

from care_support import CarePopulation


def log_count(app, patient_id: str) -> int:
    return app.state.trail.log.count_for_patient(patient_id)


def test_pages_need_a_signed_in_professional(web):
    response = web.get("/care", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fcare"
    sign_in(web, "researcher")
    refused = web.get("/care")
    assert refused.status_code == 403
    assert "for health and care professionals" in refused.text


def test_the_summary_is_read_through_the_gate_and_logged_first(
    web, care_app, care_population: CarePopulation
):
    person = care_population.shared
    sign_in(web, "gp")
    before = log_count(care_app, person.patient_id)
    page = web.get(f"/care/patient/{person.patient_id}")
    assert page.status_code == 200
    assert "Calderbrook Council Adult Social Care" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert log_count(care_app, person.patient_id) > before
    entries = care_app.state.trail.log.entries_for_patient(person.patient_id, 0, 5)
    assert any(b'"TREAT"' in leaf for _, leaf in entries)


def test_without_a_relationship_the_record_is_refused_and_the_refusal_logged(
    web, care_app, care_population: CarePopulation
):
    person = care_population.another_stranger
    sign_in(web, "nurse")
    before = log_count(care_app, person.patient_id)
    page = web.get(f"/care/patient/{person.patient_id}/problems")
    assert page.status_code == 403
    assert "no current care relationship" in page.text
    assert "Break glass and open the record" in page.text
    assert "Active problems" not in page.text
    leaves = [
        leaf for _, leaf in care_app.state.trail.log.entries_for_patient(person.patient_id, 0, 5)
    ]
    assert log_count(care_app, person.patient_id) >= before + 2  # the trace read and the refusal
    assert any(b"no care relationship" in leaf for leaf in leaves)


def test_break_glass_needs_the_session_csrf_token_and_a_reason(
    web, care_population: CarePopulation
):
    person = care_population.another_stranger
    sign_in(web, "carehome")
    url = f"/care/patient/{person.patient_id}/break-glass"
    stale = web.post(url, data={"reason": "Fell at the home, need medicines", "csrf": "x"})
    assert stale.status_code == 400 and "had expired" in stale.text
    refusal = web.get(f"/care/patient/{person.patient_id}")
    short = web.post(url, data={"reason": "because", "csrf": csrf_of(refusal.text)})
    assert short.status_code == 400 and "at least 10 characters" in short.text
    assert web.get(f"/care/patient/{person.patient_id}").status_code == 403  # still closed


def test_only_social_care_staff_record_assessments(web, care_population: CarePopulation):
    sign_in(web, "gp")
    page = web.get(f"/care/patient/{care_population.social_care.patient_id}/record/assessment")
    assert page.status_code == 403
    assert "social workers and care home staff" in page.text


def test_an_answer_the_questionnaire_does_not_offer_is_refused(
    web, care_app, care_population: CarePopulation
):
    person = care_population.social_care
    sign_in(web, "socialworker")
    form_page = web.get(f"/care/patient/{person.patient_id}/record/assessment")
    assert form_page.status_code == 200
    assert "Managing and maintaining nutrition" in form_page.text  # rendered from the Questionnaire
    answers = {"csrf": csrf_of(form_page.text), "nutrition": "made-up", "wellbeing-impact": "yes"}
    page = web.post(f"/care/patient/{person.patient_id}/record/assessment", data=answers)
    assert page.status_code == 400
    assert "Choose one of the answers offered for: Managing and maintaining nutrition" in page.text
    assert "Answer: Maintaining personal hygiene" in page.text


def test_find_explains_what_to_fix(web):
    sign_in(web, "gp")
    bad = web.get("/care/find", params={"nhs": "1234567890"})
    assert bad.status_code == 400 and "not a valid NHS number" in bad.text
    no_postcode = web.get(
        "/care/find", params={"name": "Ann Smith", "day": "1", "month": "2", "year": "1950"}
    )
    assert no_postcode.status_code == 400 and "Enter the person" in no_postcode.text
    no_date = web.get(
        "/care/find",
        params={
            "name": "Ann Smith",
            "day": "31",
            "month": "2",
            "year": "1950",
            "postcode": "YX1 1AA",
        },
    )
    assert no_date.status_code == 400 and "real date of birth" in no_date.text


def test_an_unknown_part_of_the_record_is_not_found(web, care_population: CarePopulation):
    sign_in(web, "gp")
    assert web.get(f"/care/patient/{care_population.shared.patient_id}/nothing").status_code == 404


def test_the_frontend_assets_are_served(web):
    css = web.get("/static/nhsuk/nhsuk.min.css")
    assert css.status_code == 200 and "nhsuk" in css.text
    assert web.get("/static/apps/apps.css").status_code == 200
