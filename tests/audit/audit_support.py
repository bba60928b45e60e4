"""Helpers shared by the transparency log's tests."""

from __future__ import annotations

from carelight.access.principal import Principal, Role
from carelight.audit.events import AccessEvent

GP = Principal(
    username="gp",
    role=Role.GP,
    display="Dr Ada Jones",
    organization_id="Y99101-org",
    organization_code="Y99101",
    organization_name="Riverside Surgery",
)
ADMIN = Principal(username="admin", role=Role.ADMIN, display="Privacy Officer")
PATIENT = Principal(
    username="9000000009",
    role=Role.PATIENT,
    display="Sam Example",
    patient_id="pat-1",
    nhs_number="9000000009",
)
OTHER_PATIENT = Principal(
    username="9000000017",
    role=Role.PATIENT,
    display="Alex Other",
    patient_id="pat-2",
    nhs_number="9000000017",
)


def read_event(patient: str = "pat-1", n: int = 0, **changes) -> AccessEvent:
    fields = {
        "action": "read",
        "outcome": "success",
        "username": "gp",
        "principal": GP,
        "purpose": "TREAT",
        "patients": (patient,),
        "resources": (f"Observation/obs-{n}",),
        "recorded": 1_790_000_000.0 + n,
    }
    fields.update(changes)
    return AccessEvent(**fields)
