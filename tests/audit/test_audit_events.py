"""AccessEvent → IHE BALP-shaped FHIR R4 AuditEvent → canonical leaf bytes."""

from __future__ import annotations

import base64

import orjson
import pytest
from audit_support import ADMIN, GP, PATIENT, read_event
from fhir.resources.R4B.auditevent import AuditEvent
from hypothesis import given
from hypothesis import strategies as st

from carelight.access.principal import CARELIGHT_PURPOSE_SYSTEM, PURPOSE_SYSTEM
from carelight.audit.events import (
    ACTIONS,
    DCM,
    OBJECT_ROLE,
    RESTFUL,
    AccessEvent,
    audit_event,
    entry_bytes,
    entry_names_patients,
    patients_in_entry,
)


def codes(codings) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in codings]


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("outcome", ["success", "refused", "failed"])
def test_every_action_is_a_valid_r4_audit_event(action, outcome):
    event = read_event(action=action, outcome=outcome, query="Observation?code,date")
    resource = audit_event(event)
    AuditEvent.model_validate(resource)  # raises if not valid FHIR
    assert resource["action"] in {"C", "R", "U", "D", "E"}
    assert resource["subtype"][-1]["code"] == action
    expected = {"success": "0", "refused": "4", "failed": "8"}[outcome]
    if action == "login-failed" and outcome == "success":
        expected = "4"
    assert resource["outcome"] == expected


def test_a_read_by_a_gp():
    resource = audit_event(read_event())
    assert resource["type"]["code"] == "rest"
    assert codes(resource["subtype"][:1]) == [(RESTFUL, "read")]
    assert resource["action"] == "R"
    assert resource["recorded"] == "2026-09-21T14:13:20.000Z"
    assert codes(resource["purposeOfEvent"][0]["coding"]) == [(PURPOSE_SYSTEM, "TREAT")]
    user, organization = resource["agent"]
    assert user["who"]["identifier"]["value"] == "gp"
    assert user["requestor"] is True
    assert user["name"] == GP.display
    assert user["role"][0]["coding"][0]["code"] == "gp"
    assert codes(user["purposeOfUse"][0]["coding"]) == [(PURPOSE_SYSTEM, "TREAT")]
    assert organization["who"]["identifier"] == {
        "system": "https://fhir.nhs.uk/Id/ods-organization-code",
        "value": "Y99101",
    }
    assert organization["who"]["reference"] == "Organization/Y99101-org"
    assert organization["requestor"] is False
    assert resource["source"]["observer"]["display"] == "Carelight"
    patient, observation = resource["entity"]
    assert patient["what"] == {"reference": "Patient/pat-1"}
    assert (patient["role"]["system"], patient["role"]["code"]) == (OBJECT_ROLE, "1")
    assert observation["what"] == {"reference": "Observation/obs-0"}


def test_sign_in_shapes():
    ok = audit_event(AccessEvent("login", "success", "gp", GP))
    assert (ok["type"]["system"], ok["type"]["code"]) == (DCM, "110114")
    assert codes(ok["subtype"][:1]) == [(DCM, "110122")]
    failed = audit_event(AccessEvent("login-failed", "refused", "nobody", reason="bad password"))
    assert failed["outcome"] == "4"
    assert failed["agent"] == [
        {
            "type": failed["agent"][0]["type"],
            "who": {
                "identifier": {
                    "system": "https://fhir.carelight.example/Id/username",
                    "value": "nobody",
                }
            },
            "requestor": True,
        }
    ]
    assert failed["outcomeDesc"] == "bad password"
    assert "entity" not in failed


def test_break_glass_is_flagged_and_its_reason_shown_to_the_patient():
    event = read_event(break_glass=True, purpose="TREAT", reason="unconscious in A&E")
    resource = audit_event(event)
    assert resource["meta"]["security"][0]["code"] == "BTG"
    purposes = [c["coding"][0]["code"] for c in resource["purposeOfEvent"]]
    assert purposes == ["TREAT", "ETREAT"]
    assert [c["coding"][0]["code"] for c in resource["agent"][0]["purposeOfUse"]] == purposes
    assert resource["entity"][0]["detail"] == [
        {"type": "break-glass-reason", "valueString": "unconscious in A&E"}
    ]
    override = audit_event(read_event(action="break-glass", purpose=None))
    assert codes(override["subtype"][:1]) == [(DCM, "110127")]
    assert override["meta"]["security"][0]["code"] == "BTG"


def test_a_refusal_carries_its_reason():
    resource = audit_event(read_event(outcome="refused", reason="no legitimate relationship"))
    assert resource["outcome"] == "4"
    assert resource["outcomeDesc"] == "no legitimate relationship"


def test_query_names_only_and_ingest_purpose():
    resource = audit_event(
        read_event(action="search", purpose="INGEST", query="Observation?patient,code")
    )
    query = resource["entity"][-1]
    assert query["role"]["code"] == "24"
    assert base64.b64decode(query["query"]) == b"Observation?patient,code"
    assert codes(resource["purposeOfEvent"][0]["coding"]) == [(CARELIGHT_PURPOSE_SYSTEM, "INGEST")]


def test_a_patients_own_access_refers_to_the_patient_not_their_nhs_number():
    event = AccessEvent(
        "read", "success", PATIENT.username, PATIENT, "PATRQT", ("pat-1",), ("Patient/pat-1",)
    )
    entry = entry_bytes(event)
    assert PATIENT.nhs_number.encode() not in entry
    assert PATIENT.display.encode() not in entry
    resource = orjson.loads(entry)
    assert resource["agent"][0]["who"] == {"reference": "Patient/pat-1"}
    assert resource["agent"][0]["type"]["coding"][0]["code"] == "PAT"
    assert len(resource["entity"]) == 1  # Patient/pat-1 once, as the patient


def test_entry_bytes_are_canonical_and_name_their_patients():
    event = read_event(patients=("pat-2", "pat-1", "pat-2"))
    entry = entry_bytes(event)
    assert entry == orjson.dumps(orjson.loads(entry), option=orjson.OPT_SORT_KEYS)
    assert entry == entry_bytes(read_event(patients=("pat-2", "pat-1", "pat-2")))
    assert patients_in_entry(entry) == ["pat-2", "pat-1"]
    assert patients_in_entry(entry_bytes(AccessEvent("login", "success", "admin", ADMIN))) == []


def test_unknown_actions_and_outcomes_are_refused():
    with pytest.raises(ValueError, match="unknown audit action"):
        audit_event(read_event(action="peek"))
    with pytest.raises(ValueError, match="unknown audit outcome"):
        audit_event(read_event(outcome="maybe"))


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_recorded_is_a_fhir_instant_in_milliseconds(epoch):
    recorded = audit_event(read_event(recorded=epoch))["recorded"]
    AuditEvent.model_validate({**audit_event(read_event()), "recorded": recorded})
    assert len(recorded) == 24 and recorded.endswith("Z")


@given(
    st.lists(st.from_regex(r"[A-Za-z0-9\-.]{1,12}", fullmatch=True), max_size=4),
    st.booleans(),
    st.sampled_from(sorted(ACTIONS)),
)
def test_the_fast_patient_check_agrees_with_parsing(patients, break_glass, action):
    event = read_event(
        action=action,
        patients=tuple(patients),
        resources=tuple(f"Patient/{p}x" for p in patients),  # look-alikes in another role
        break_glass=break_glass,
        reason="a reason with \"quotes\" and 'role'" if break_glass else None,
    )
    entry = entry_bytes(event)
    about = patients_in_entry(entry)
    assert about == list(dict.fromkeys(patients))
    assert entry_names_patients(entry, about)
    assert not entry_names_patients(entry, [*about, "someone-else"])
    if about:
        assert not entry_names_patients(entry, about[1:])
        assert not entry_names_patients(entry, [f"{about[0]}x", *about[1:]])
