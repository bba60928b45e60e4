"""The care app's pure parts: presenting resources, charts, tolerant matching, the forms."""

from __future__ import annotations

from carelight.access.principal import Principal, Role
from carelight.apps.care import charts, find, forms
from carelight.apps.care.present import entry, human_date, observation_value, once_each
from carelight.fhir.validation import validate_resource
from carelight.identity.linkage.features import features
from carelight.synth.questionnaire import questionnaire

SOCIAL_WORKER = Principal(
    "socialworker", Role.SOCIAL_WORKER, "Demo social worker", "X99LB-org", "X99LB",
    "Calderbrook Council Adult Social Care",
)  # fmt: skip


def bp(when: str, systolic: float, diastolic: float, source: str = "https://x/A/fhir") -> dict:
    def part(code, value):
        return {"code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "valueQuantity": {"value": value, "unit": "mmHg"}}  # fmt: skip

    return {
        "resourceType": "Observation", "id": when, "meta": {"source": source}, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}], "text": "Blood pressure"},
        "effectiveDateTime": when, "component": [part("8480-6", systolic), part("8462-4", diastolic)],
    }  # fmt: skip


def test_dates_read_as_people_write_them():
    assert human_date("2024-09-27") == "27 Sep 2024"
    assert human_date("2024-09-27T10:00:00+00:00") == "27 Sep 2024"
    assert human_date("2024-09") == "Sep 2024"
    assert human_date("2024") == "2024"
    assert human_date(None) == ""


def test_every_entry_names_the_system_that_recorded_it():
    names = {"https://x/A/fhir": "Practice A"}.get
    e = entry(bp("2024-01-02", 140, 90), lambda s: names(s, s or "?"))
    assert e is not None and e.source == "Practice A" and e.when_text == "2 Jan 2024"
    assert e.category == "results" and "140/90 mmHg" in e.detail
    assert observation_value(bp("2024-01-02", 120.5, 80)) == "120.5/80 mmHg"


def test_the_same_problem_from_several_systems_is_listed_once_naming_them_all():
    def condition(rid, source, onset):
        return entry(
            {"resourceType": "Condition", "id": rid, "meta": {"source": source},
             "code": {"text": "Heart failure"}, "onsetDateTime": onset},
            lambda s: s,
        )  # fmt: skip

    merged = once_each([condition("a", "GP", "2020"), condition("b", "Trust", "2021")])
    assert len(merged) == 1 and merged[0].source == "Trust" and merged[0].also == ("GP",)


def test_blood_pressure_is_charted_as_two_lines_with_a_text_alternative():
    series = charts.series_of([bp("2024-03-01", 150, 95), bp("2024-01-01", 140, 90)], str)
    assert len(series) == 1 and series[0].name == "Blood pressure"
    assert [p[1] for p in series[0].points] == [140, 150]  # oldest first
    drawing = str(charts.svg(series[0], "c1"))
    assert 'role="img"' in drawing and '<title id="c1-title">' in drawing
    assert drawing.count("<polyline") == 2 and "style=" not in drawing  # CSP allows no inline style
    assert series[0].latest == "150/95 mmHg on 1 Mar 2024"


def test_a_single_value_is_no_trend():
    assert charts.series_of([bp("2024-01-01", 140, 90)], str) == []


def test_tolerant_matching_forgives_typos_nicknames_and_postcode_spacing():
    wanted = features({"resourceType": "Patient", "id": "w", "name": [{"given": ["Peggy"], "family": "Smtih"}],
                       "address": [{"postalCode": "yx12ab"}]})  # fmt: skip
    candidate = features({"resourceType": "Patient", "id": "c", "name": [{"given": ["Margaret"], "family": "Smith"}],
                          "address": [{"postalCode": "YX1 2AB"}]})  # fmt: skip
    score, reasons = find._score(wanted, candidate)
    assert reasons == ["date of birth", "surname", "first name", "postcode"] and score == 4
    stranger = features(
        {"resourceType": "Patient", "id": "s", "name": [{"given": ["John"], "family": "Jones"}]}
    )
    assert find._score(wanted, stranger) == (0.0, [])


def test_nhs_numbers_are_checked_before_searching():
    assert find.clean_nhs_number("943 476 5919") == "9434765919"
    for bad in ("943 476 5918", "12345", "abcdefghij"):
        try:
            find.clean_nhs_number(bad)
        except find.FindError as exc:
            assert exc.field == "nhs"
        else:
            raise AssertionError(bad)


def test_the_assessment_form_is_the_questionnaire_and_saves_a_valid_response():
    q = questionnaire()
    sections = forms.questions(q)
    assert sections[0][0]["linkId"] == "outcomes" and len(sections[0][1]) == 10
    answers = {qq.link_id: "some-help" for qq in sections[0][1]}
    answers |= {"wellbeing-impact": "yes", "carer": "no", "summary": "Needs help with meals"}
    response, errors = forms.assessment_response(q, answers, "P1", SOCIAL_WORKER)
    assert not errors and response is not None
    validate_resource(response)
    assert response["questionnaire"] == q["url"]
    assert response["author"]["reference"] == "Organization/X99LB-org"
    outcomes = response["item"][0]["item"]
    assert outcomes[0]["answer"][0]["valueCoding"]["code"] == "some-help"


def test_a_care_plan_and_its_goals_are_one_transaction():
    form = {
        "title": "Plan",
        "description": "Daily visits",
        "goal1": "Stay at home",
        "goal2": "See friends",
    }
    bundle, errors = forms.care_plan(form, "P1", SOCIAL_WORKER)
    assert not errors and bundle is not None and bundle["type"] == "transaction"
    goals = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Goal"]
    plan = bundle["entry"][-1]["resource"]
    assert [g["reference"] for g in plan["goal"]] == [g["fullUrl"] for g in goals]
    _, missing = forms.care_plan({}, "P1", SOCIAL_WORKER)
    assert set(missing.fields) == {"title", "description", "goal1"}


def test_a_visit_note_is_a_document_with_its_words():
    note, errors = forms.visit_note({"note": "Well today"}, "P1", SOCIAL_WORKER)
    assert not errors and note is not None
    validate_resource(note)
    assert entry(note, str).text == "Well today"


def test_an_active_flag_is_an_alert():
    flag = {
        "resourceType": "Flag", "id": "f1", "meta": {"source": "S"}, "status": "active",
        "category": [{"text": "Safety"}], "code": {"text": "Lives alone; key safe 1234"},
        "subject": {"reference": "Patient/P1"}, "period": {"start": "2025-01-02"},
    }  # fmt: skip
    e = entry(flag, str)
    assert e.category == "alerts" and e.active and e.detail == "Safety" and e.source == "S"
