"""The patient app's pure parts: results in plain words, log entries as lines a patient
reads, the parts of the record, and the Bundle."""

from __future__ import annotations

import orjson

from carelight.access.principal import Principal, Role
from carelight.apps.patient import download
from carelight.apps.patient.accesses import access_of, is_own
from carelight.apps.patient.record import PARTS, flag_of, items, normal_range, result_of
from carelight.audit.events import AccessEvent, entry_bytes
from carelight.fhir.store import StoredResource

NURSE = Principal(
    username="nurse", role=Role.NURSE, display="Nurse Jo Bloggs", organization_id="X9A-org",
    organization_code="X9A", organization_name="Brackenfold Trust",
)  # fmt: skip
ME = Principal(username="9434765919", role=Role.PATIENT, display="Sam", patient_id="p1")


def name(source):
    return {"https://fhir.carelight.example/Y99101/fhir": "The GP"}.get(source, "Unknown")


def test_a_result_has_its_normal_range_flag_and_source():
    obs = {
        "resourceType": "Observation", "status": "final", "code": {"text": "Creatinine"},
        "effectiveDateTime": "2024-03-01T09:00:00Z",
        "valueQuantity": {"value": 130, "unit": "umol/L"},
        "interpretation": [{"coding": [{"code": "H"}]}],
        "referenceRange": [{"low": {"value": 45, "unit": "umol/L"}, "high": {"value": 104, "unit": "umol/L"}}],
        "meta": {"source": "https://fhir.carelight.example/Y99101/fhir"},
    }  # fmt: skip
    r = result_of(obs, name)
    assert (r.name, r.value, r.normal, r.flag, r.source) == (
        "Creatinine", "130 umol/L", "45 to 104 umol/L", "Higher than the normal range", "The GP",
    )  # fmt: skip
    assert r.when_text == "1 Mar 2024"


def test_normal_ranges_and_flags_in_words():
    assert normal_range([{"high": {"value": 41, "unit": "mmol/mol"}}]) == "41 mmol/mol or below"
    assert normal_range([{"low": {"value": 60, "unit": "mL"}}]) == "60 mL or above"
    assert normal_range([{"text": "Below 42", "high": {"value": 41}}]) == "Below 42"
    assert normal_range(None) == "" and flag_of(None) == ""
    assert flag_of([{"coding": [{"code": "N"}]}]) == ""
    assert flag_of([{"coding": [{"code": "L"}]}]) == "Lower than the normal range"


def test_every_resource_type_a_patient_looks_for_has_a_part():
    types = {t for _, _, ts in PARTS.values() for t in ts}
    assert {"Observation", "MedicationRequest", "Procedure", "CarePlan", "Immunization",
            "AllergyIntolerance", "Encounter", "DocumentReference"} <= types  # fmt: skip
    lines = items(
        [
            {"resourceType": "Procedure", "id": "a", "code": {"text": "Knee"}, "performedDateTime": "2020"},
            {"resourceType": "Appointment", "id": "b", "status": "booked", "start": "2026-12-01T10:00:00Z",
             "serviceType": [{"text": "Diabetes clinic"}]},
            {"resourceType": "Consent", "id": "c"},
        ],
        name,
    )  # fmt: skip
    assert [(i.part, i.line.title) for i in lines] == [
        ("appointments", "Diabetes clinic"), ("procedures", "Knee"),
    ]  # fmt: skip


def test_a_break_glass_entry_reads_as_who_when_why_with_the_reason():
    event = AccessEvent(
        "break-glass", "success", "nurse", NURSE, "ETREAT", patients=("p1",),
        reason="Unconscious in A&E, need allergies", recorded=1_790_000_000.0,
    )  # fmt: skip
    a = access_of(7, entry_bytes(event))
    assert (a.index, a.who, a.role) == (7, "Nurse Jo Bloggs", "Nurse")
    assert a.organisation == "Brackenfold Trust (X9A)"
    assert a.what == "Opened your record in an emergency (break-glass)"
    assert a.why.startswith("Emergency access") and a.break_glass
    assert a.reason == "Unconscious in A&E, need allergies"
    assert a.when == "21 September 2026 at 15:13"  # UK time (BST)
    assert not is_own(entry_bytes(event))


def test_refusals_failed_sign_ins_and_the_patients_own_use():
    refused = AccessEvent("everything", "refused", "nurse", NURSE, "TREAT", patients=("p1",),
                          reason="no care relationship")  # fmt: skip
    a = access_of(1, entry_bytes(refused))
    assert a.what == "Tried to look at your record, and was refused" and a.refused
    assert a.why == "Your care" and a.reason == "no care relationship"
    failed = AccessEvent(
        "login-failed", "refused", "Patient/p1", patients=("p1",), reason="wrong password"
    )
    assert access_of(2, entry_bytes(failed)).who == "Someone using your NHS number"
    own = AccessEvent("everything", "success", ME.username, ME, "PATRQT", patients=("p1",))
    assert is_own(entry_bytes(own))


def test_the_bundle_holds_every_resource_as_stored():
    stored = [
        StoredResource("Observation", "o1", 1, 0.0, False, '{"resourceType":"Observation","id":"o1"}'),
        StoredResource("Patient", "p1", 1, 0.0, False, '{"resourceType":"Patient","id":"p1"}'),
    ]  # fmt: skip
    bundle = orjson.loads(download.bundle(stored, "http://x/fhir"))
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert [e["fullUrl"] for e in bundle["entry"]] == [
        "http://x/fhir/Patient/p1",
        "http://x/fhir/Observation/o1",
    ]
    assert bundle["entry"][1]["resource"] == {"resourceType": "Observation", "id": "o1"}
