"""What the gate hands to the transparency log: one :class:`AccessEvent` per decision.

Never put patient data here beyond references: ``query`` holds parameter *names* only and
``reason`` is the professional's stated reason (shown to the patient concerned).
"""

from __future__ import annotations

import base64
import functools
import time
from dataclasses import dataclass, field

import orjson

from carelight.access.principal import CARELIGHT_PURPOSE_SYSTEM, Principal, Purpose, Role

ACTIONS = frozenset(
    {
        "read",  # read, vread
        "search",
        "history",
        "create",
        "update",
        "patch",
        "delete",
        "export",
        "everything",
        "transaction",  # a transaction Bundle (its entries are named as resources)
        "batch",  # a batch Bundle
        "login",
        "login-failed",
        "logout",
        "token",
        "break-glass",
        "opt-out",  # a national data opt-out set or removed
        "audit-read",  # an auditor or patient reading log entries
        "link",  # record linkage decisions (issue 5)
        "sde-project",  # a research project created, changed or decided (issue 8)
        "sde-accredit",  # a researcher's accreditation recorded
        "sde-extract",  # a research store made for a project
        "sde-job",  # a job submitted to, or finished in, the secure data environment (issue 9)
        "sde-review",  # an output checker's vote on an output file
        "sde-release",  # an output file released to a project's researchers
    }
)
OUTCOMES = frozenset({"success", "refused", "failed"})


@dataclass(frozen=True, slots=True)
class AccessEvent:
    action: str
    outcome: str
    username: str  # who asked, even when sign-in failed (then there is no principal)
    principal: Principal | None = None
    purpose: str | None = None  # a Purpose value
    patients: tuple[str, ...] = ()  # Patient logical ids whose data was touched or asked for
    resources: tuple[str, ...] = ()  # "Type/id" of what was returned or written
    query: str | None = None  # e.g. "Observation?code,date": names only, never values
    reason: str | None = None  # break-glass reason, or why it was refused
    break_glass: bool = False
    recorded: float = field(default_factory=time.time)  # epoch seconds, UTC


# -- the AuditEvent (IHE Basic Audit Log Patterns, FHIR R4) -----------------------------------

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ODS_CODE = "https://fhir.nhs.uk/Id/ods-organization-code"
CARELIGHT_ACTION = "https://fhir.carelight.example/CodeSystem/audit-action"
CARELIGHT_ROLE = "https://fhir.carelight.example/CodeSystem/role"
USERNAME_SYSTEM = "https://fhir.carelight.example/Id/username"

_REST = {"system": EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
_AUTHENTICATION = {"system": DCM, "code": "110114", "display": "User Authentication"}
_SECURITY_ALERT = {"system": DCM, "code": "110113", "display": "Security Alert"}
_APPLICATION = {"system": DCM, "code": "110100", "display": "Application Activity"}
_EXPORT = {"system": DCM, "code": "110106", "display": "Export"}
_LOGIN = {"system": DCM, "code": "110122", "display": "Login"}
_LOGOUT = {"system": DCM, "code": "110123", "display": "Logout"}
_OVERRIDE = {"system": DCM, "code": "110127", "display": "Emergency Override Started"}


def _rest(code: str) -> dict:
    return {"system": RESTFUL, "code": code}


# action → (AuditEvent.type, standard subtypes, AuditEvent.action: C/R/U/D/E)
_SHAPES: dict[str, tuple[dict, tuple[dict, ...], str]] = {
    "read": (_REST, (_rest("read"),), "R"),
    "search": (_REST, (_rest("search-type"),), "E"),
    "history": (_REST, (_rest("history"),), "R"),
    "create": (_REST, (_rest("create"),), "C"),
    "update": (_REST, (_rest("update"),), "U"),
    "patch": (_REST, (_rest("patch"),), "U"),
    "delete": (_REST, (_rest("delete"),), "D"),
    "export": (_EXPORT, (_rest("operation"),), "R"),  # DICOM Export reads data out
    "everything": (_REST, (_rest("operation"),), "E"),
    "transaction": (_REST, (_rest("transaction"),), "E"),
    "batch": (_REST, (_rest("batch"),), "E"),
    "login": (_AUTHENTICATION, (_LOGIN,), "E"),
    "login-failed": (_AUTHENTICATION, (_LOGIN,), "E"),
    "logout": (_AUTHENTICATION, (_LOGOUT,), "E"),
    "token": (_AUTHENTICATION, (_LOGIN,), "E"),
    "break-glass": (_SECURITY_ALERT, (_OVERRIDE,), "E"),
    "opt-out": (_APPLICATION, (), "U"),
    "audit-read": (_REST, (_rest("read"),), "R"),
    "link": (_APPLICATION, (), "E"),
    "sde-project": (_APPLICATION, (), "U"),
    "sde-accredit": (_APPLICATION, (), "U"),
    "sde-extract": (_EXPORT, (), "R"),
    "sde-job": (_APPLICATION, (), "E"),
    "sde-review": (_APPLICATION, (), "U"),
    "sde-release": (_EXPORT, (), "R"),
}
_OUTCOME = {"success": "0", "refused": "4", "failed": "8"}  # minor / serious failure
_WRITES = frozenset({"create", "update", "patch", "delete", "opt-out"})


def _coding(system: str, code: str, display: str | None = None) -> dict:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


# Codings every entry shares are built once; they are only ever read (by orjson).
_PAT = {"coding": [_coding(ROLE_CLASS, "PAT", "patient")]}
_AUTHOR = {"coding": [_coding(PARTICIPATION, "AUT", "author (originator)")]}
_RECIPIENT = {"coding": [_coding(PARTICIPATION, "IRCP", "information recipient")]}
_PROVIDER = {"coding": [_coding(ROLE_CLASS, "PROV", "healthcare provider")]}
_BREAK_GLASS = {"security": [_coding(ACT_CODE, "BTG", "break the glass")]}
_SOURCE = {"observer": {"display": "Carelight"}, "type": [_coding(SOURCE_TYPE, "4")]}
_PERSON, _SYSTEM_OBJECT = _coding(ENTITY_TYPE, "1"), _coding(ENTITY_TYPE, "2")
_PATIENT_ROLE, _RESOURCE_ROLE = _coding(OBJECT_ROLE, "1"), _coding(OBJECT_ROLE, "4")
_QUERY_ROLE = _coding(OBJECT_ROLE, "24")
_ACTION_CODINGS = {action: _coding(CARELIGHT_ACTION, action) for action in ACTIONS}


@functools.lru_cache(maxsize=64)
def _purpose(code: str) -> dict:
    try:
        system = Purpose(code).system
    except ValueError:
        system = CARELIGHT_PURPOSE_SYSTEM
    return {"coding": [_coding(system, code)]}


@functools.lru_cache(maxsize=64)
def _role(role: str) -> list[dict]:
    return [{"coding": [_coding(CARELIGHT_ROLE, role)]}]


@functools.lru_cache(maxsize=16)
def _second(seconds: int) -> str:
    y, mo, d, h, mi, s = time.gmtime(seconds)[:6]
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"


def _instant(epoch: float) -> str:
    """FHIR instant, UTC, to the millisecond: 2026-11-24T10:15:02.123Z."""
    seconds, ms = divmod(round(epoch * 1000), 1000)
    return f"{_second(seconds)}.{ms:03d}Z"


def _user_agent(event: AccessEvent, purposes: list[dict]) -> dict:
    p = event.principal
    if p is not None and p.role is Role.PATIENT:
        # A patient's account name is their NHS number: refer to the Patient instead.
        agent_type = _PAT
        who: dict = {"reference": f"Patient/{p.patient_id}"} if p.patient_id else {}
    else:
        agent_type = _AUTHOR if event.action in _WRITES else _RECIPIENT
        who = {"identifier": {"system": USERNAME_SYSTEM, "value": event.username}}
    agent: dict = {"type": agent_type, "who": who, "requestor": True}
    if p is not None:
        if p.display and p.role is not Role.PATIENT:
            agent["name"] = p.display
            who["display"] = p.display
        agent["role"] = _role(str(p.role))
    if purposes:
        agent["purposeOfUse"] = purposes
    return agent


def _organization_agent(p: Principal) -> dict | None:
    if not (p.organization_id or p.organization_code):
        return None
    who: dict = {}
    if p.organization_id:
        who["reference"] = p.organization_ref
    if p.organization_code:
        who["identifier"] = {"system": ODS_CODE, "value": p.organization_code}
    if p.organization_name:
        who["display"] = p.organization_name
    return {"type": _PROVIDER, "who": who, "requestor": False}


def _unique(values: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def audit_event(event: AccessEvent) -> dict:
    """The IHE BALP-shaped FHIR R4 AuditEvent for one access decision.

    Holds who (username or Patient reference, role, organisation with ODS code), why (purpose
    of use; break-glass is flagged ETREAT with the ``BTG`` security label), what (Patient and
    resource references, query parameter *names*), when and the outcome. Never any other
    patient data: references only.
    """
    if event.action not in ACTIONS:
        raise ValueError(
            f"unknown audit action {event.action!r}; expected one of {sorted(ACTIONS)}"
        )
    if event.outcome not in OUTCOMES:
        raise ValueError(
            f"unknown audit outcome {event.outcome!r}; expected one of {sorted(OUTCOMES)}"
        )
    event_type, subtypes, action_code = _SHAPES[event.action]
    outcome = _OUTCOME[event.outcome]
    if event.action == "login-failed" and outcome == "0":
        outcome = "4"  # a failed sign-in is never a success, whatever the caller said
    break_glass = event.break_glass or event.action == "break-glass"
    codes = [event.purpose] if event.purpose else []
    if break_glass and "ETREAT" not in codes:
        codes.append("ETREAT")
    purposes = [_purpose(code) for code in codes]

    resource: dict = {
        "resourceType": "AuditEvent",
        "type": event_type,
        "subtype": [*subtypes, _ACTION_CODINGS[event.action]],
        "action": action_code,
        "recorded": _instant(event.recorded),
        "outcome": outcome,
    }
    if break_glass:
        resource["meta"] = _BREAK_GLASS
    if purposes:
        resource["purposeOfEvent"] = purposes
    agents = [_user_agent(event, purposes)]
    if event.principal is not None and event.principal.role is not Role.PATIENT:
        organization = _organization_agent(event.principal)
        if organization:
            agents.append(organization)
    resource["agent"] = agents
    resource["source"] = _SOURCE

    patients = _unique(event.patients)
    reason_on_patient = bool(event.reason and break_glass and patients)
    entities = []
    for patient_id in patients:
        entity = {
            "what": {"reference": f"Patient/{patient_id}"},
            "type": _PERSON,
            "role": _PATIENT_ROLE,
        }
        if reason_on_patient:
            entity["detail"] = [{"type": "break-glass-reason", "valueString": event.reason}]
        entities.append(entity)
    for reference in _unique(event.resources):
        if reference.startswith("Patient/") and reference[8:] in patients:
            continue  # already there as the patient
        entities.append(
            {"what": {"reference": reference}, "type": _SYSTEM_OBJECT, "role": _RESOURCE_ROLE}
        )
    if event.query:
        query = base64.b64encode(event.query.encode()).decode()
        entities.append({"type": _SYSTEM_OBJECT, "role": _QUERY_ROLE, "query": query})
    if entities:
        resource["entity"] = entities
    if event.reason and not reason_on_patient:
        resource["outcomeDesc"] = event.reason
    return resource


def entry_bytes(event: AccessEvent) -> bytes:
    """The log entry (the Merkle leaf): the AuditEvent as canonical JSON, keys sorted."""
    return orjson.dumps(audit_event(event), option=orjson.OPT_SORT_KEYS)


def patients_in_entry(entry: bytes) -> list[str]:
    """The Patient ids an entry is about (its entities in the role Patient), in entry order."""
    resource = orjson.loads(entry)
    out = []
    for entity in resource.get("entity", ()):
        role = entity.get("role") or {}
        reference = (entity.get("what") or {}).get("reference", "")
        if (
            role.get("system") == OBJECT_ROLE
            and role.get("code") == "1"
            and reference.startswith("Patient/")
        ):
            out.append(reference[len("Patient/") :])
    return out


_PATIENT_MARK = b'"role":' + orjson.dumps(_PATIENT_ROLE, option=orjson.OPT_SORT_KEYS)
_PATIENT_ENTITY = _PATIENT_MARK + b',"type":' + orjson.dumps(_PERSON, option=orjson.OPT_SORT_KEYS)


def entry_names_patients(entry: bytes, patient_ids: list[str]) -> bool:
    """Whether a canonical entry's patient entities are exactly these distinct ids.

    A byte search, many times faster than parsing, for checking a whole log: ``True`` is
    exact (keys are sorted and JSON strings escape every quote, so the marks can only be
    structure); ``False`` means "not in the canonical form" and callers should fall back to
    :func:`patients_in_entry`.
    """
    if entry.count(_PATIENT_MARK) != len(patient_ids):
        return False
    for patient_id in patient_ids:
        reference = orjson.dumps(f"Patient/{patient_id}")
        if _PATIENT_ENTITY + b',"what":{"reference":' + reference + b"}}" not in entry:
            return False
    return True
