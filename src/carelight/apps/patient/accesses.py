"""Who has looked at my record: the transparency log's entries about a person, as lines a
patient reads (who, their role and organisation, when, what they did, why).

An entry is the AuditEvent the gate wrote (``audit.events``); this module only reads it. The
person's own use of the app is left out: they want to see what *others* did.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from carelight.audit.events import CARELIGHT_ACTION, ODS_CODE
from carelight.audit.log import TransparencyLog

try:
    LONDON: dt.tzinfo = ZoneInfo("Europe/London")
except ZoneInfoNotFoundError:  # no time zone data installed: UTC, and the page says so
    LONDON = dt.UTC

ROLES = {
    "gp": "GP",
    "nurse": "Nurse",
    "doctor": "Doctor",
    "social-worker": "Social worker",
    "care-home-staff": "Care home staff",
    "system": "Computer system",
    "admin": "Administrator or auditor",
    "data-quality": "Records linkage team",
    "researcher": "Researcher",
    "analyst": "Analyst",
    "output-checker": "Output checker",
    "data-access-committee": "Data access committee",
}
PURPOSES = {
    "TREAT": "Your care",
    "ETREAT": "Emergency access without a care relationship (break-glass)",
    "PATRQT": "Your own request",
    "HRESCH": "Research",
    "HOPERAT": "Planning services",
    "HSYSADMIN": "Running and checking the system",
    "INGEST": "Adding records from a care system",
}
_READS = {"read", "search", "history", "everything", "export"}
_WRITES = {"create", "update", "patch", "delete", "transaction", "batch"}
_OWN_AGENT = b'"code":"PAT"'  # the agent type of a patient acting for themselves
SCAN_LIMIT = 20_000  # entries looked through per listing; a person with more sees the newest


@dataclass(frozen=True, slots=True)
class Access:
    index: int  # the entry's leaf index in the log
    when: str  # in words, UK time
    recorded: str  # the entry's own timestamp (FHIR instant, UTC)
    who: str
    role: str
    organisation: str
    what: str
    why: str
    reason: str  # a break-glass reason, or why the access was refused
    break_glass: bool
    refused: bool


def is_own(entry: bytes) -> bool:
    """Whether the entry records the patient's own action (their app, their download)."""
    return _OWN_AGENT in entry


def when_text(instant: str) -> str:
    try:
        moment = dt.datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(LONDON)
    except ValueError:
        return instant
    zone = "" if LONDON is not dt.UTC else " UTC"
    return f"{moment.day} {moment.strftime('%B %Y')} at {moment.strftime('%H:%M')}{zone}"


def _codes(concepts: list[dict] | None, system: str | None = None) -> list[str]:
    return [
        c.get("code", "")
        for concept in concepts or ()
        for c in concept.get("coding") or ()
        if system is None or c.get("system") == system
    ]


_SPECIAL = {
    "login-failed": "Tried to sign in to your account, and was refused",
    "break-glass": "Opened your record in an emergency (break-glass)",
    "audit-read": "Looked at the list of who has seen your record",
    "opt-out": "Changed your data choices",
    "link": "Matched records from different systems as being yours",
}


def _what(action: str, refused: bool, failed: bool) -> str:
    if action in _SPECIAL:
        return _SPECIAL[action]
    if action in _WRITES:
        done, tried = "Added to or changed your record", "Tried to change your record"
    elif action == "export":
        done, tried = "Copied your record", "Tried to copy your record"
    elif action in _READS:
        done, tried = "Looked at your record", "Tried to look at your record"
    else:
        done, tried = "Used your record", "Tried to use your record"
    if refused:
        return f"{tried}, and was refused"
    return f"{done} (it failed)" if failed else done


def access_of(index: int, entry: bytes) -> Access:
    event = orjson.loads(entry)
    action = next(iter(_codes([{"coding": event.get("subtype", [])}], CARELIGHT_ACTION)), "")
    outcome = event.get("outcome", "0")
    agents = event.get("agent") or [{}]
    person = agents[0]
    who_ref = person.get("who") or {}
    username = (who_ref.get("identifier") or {}).get("value", "")
    role_code = next(iter(_codes(person.get("role"))), "")
    org = next((a for a in agents[1:] if a.get("who")), {}).get("who") or {}
    org_name = org.get("display") or (org.get("identifier") or {}).get("value", "")
    if org.get("display") and (org.get("identifier") or {}).get("system") == ODS_CODE:
        org_name = f"{org['display']} ({org['identifier']['value']})"
    if action == "login-failed" or username.startswith("Patient/"):
        who = "Someone using your NHS number"
    elif role_code == "system":
        who = f"{org.get('display') or 'A care'} computer system"
    else:
        who = person.get("name") or who_ref.get("display") or username or "Unknown"
    purposes = _codes(event.get("purposeOfEvent"))
    reason = ""
    for entity in event.get("entity") or ():
        for detail in entity.get("detail") or ():
            if detail.get("type") == "break-glass-reason":
                reason = detail.get("valueString", "")
    if not reason:
        reason = event.get("outcomeDesc", "")
    break_glass = any(
        s.get("code") == "BTG" for s in (event.get("meta") or {}).get("security") or ()
    )
    return Access(
        index=index,
        when=when_text(event.get("recorded", "")),
        recorded=event.get("recorded", ""),
        who=who,
        role=ROLES.get(role_code, role_code.replace("-", " ").capitalize() if role_code else ""),
        organisation=org_name,
        what=_what(action, outcome == "4", outcome == "8"),
        why="; ".join(PURPOSES.get(p, p) for p in dict.fromkeys(purposes)) or "Not given",
        reason=reason,
        break_glass=break_glass,
        refused=outcome == "4",
    )


@dataclass(frozen=True, slots=True)
class AccessList:
    accesses: list[Access]
    total: int  # accesses by others found
    scanned_all: bool  # False when the person has more entries than SCAN_LIMIT


def accesses_by_others(
    log: TransparencyLog, patient_ids: list[str], offset: int = 0, limit: int = 50
) -> AccessList:
    """The entries about any of the person's records made by someone else, newest first."""
    chosen: list[tuple[int, bytes]] = []
    total = scanned = 0
    batch = 500
    while scanned < SCAN_LIMIT:
        rows = log.entries_for_patients(patient_ids, scanned, batch)
        scanned += len(rows)
        for index, entry in rows:
            if is_own(entry):
                continue
            if offset <= total < offset + limit:
                chosen.append((index, entry))
            total += 1
        if len(rows) < batch:
            return AccessList([access_of(i, e) for i, e in chosen], total, True)
    return AccessList([access_of(i, e) for i, e in chosen], total, False)
