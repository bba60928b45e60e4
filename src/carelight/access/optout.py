"""The national data opt-out: one function answers "may this person's data be used for this?".

An opt-out is a Consent about the person with scope ``patient-privacy``, status ``active``,
``provision.type = deny`` and the purposes it covers in ``provision.purpose``: HRESCH
(research) and HOPERAT (planning). A patient sets and removes it through the API (the gate
lets a patient write exactly this); their GP practice may have recorded it too. Any of a
person's records carrying one counts for the person.

It applies where data leaves direct care (the secure data environment's extract, population
dashboards), in this one place; direct care (TREAT, ETREAT) and the patient's own access are
never affected. Exemptions: explicit consent for the specific use, and a legal requirement.
Nothing is cached: a change takes effect for the next use.
"""

from __future__ import annotations

import orjson
from sqlalchemy import Connection, select

from carelight.access.gate import PRIVACY_SCOPE, same_person
from carelight.access.principal import Purpose
from carelight.fhir import schema

R, C, PL = schema.resource, schema.compartment, schema.person_link
OPT_OUT_PURPOSES = (Purpose.HRESCH, Purpose.HOPERAT)
EXEMPT_BASES = frozenset({"explicit-consent", "legal-requirement"})
LEGAL_BASES = EXEMPT_BASES | {"none", "public-task", "legitimate-interest"}


def _denied_purposes(content: str) -> set[str]:
    doc = orjson.loads(content)
    if doc.get("status") != "active":
        return set()
    codes = {(c.get("system"), c.get("code")) for c in (doc.get("scope") or {}).get("coding", [])}
    if PRIVACY_SCOPE not in codes:
        return set()
    provision = doc.get("provision") or {}
    if provision.get("type") != "deny":
        return set()
    return {p.get("code") for p in provision.get("purpose") or [] if isinstance(p, dict)}


def opted_out_purposes(conn: Connection, patient_id: str) -> set[str]:
    """The purposes (HRESCH, HOPERAT) this person has opted out of, from any of their records."""
    c = C.alias()
    rows = conn.execute(
        select(R.c.content).where(
            R.c.res_type == "Consent",
            R.c.deleted.is_(False),
            select(c.c.res_pk)
            .where(c.c.res_pk == R.c.pk, c.c.patient_id.in_(same_person([patient_id])))
            .exists(),
        )
    ).scalars()
    out: set[str] = set()
    for content in rows:
        out |= _denied_purposes(content)
    return out & {p.value for p in OPT_OUT_PURPOSES}


def choices_of(engine, patient_id: str) -> set[str]:
    """The purposes this person has opted out of, read now (the patient's own view)."""
    with engine.connect() as conn:
        return opted_out_purposes(conn, patient_id)


def may_use(
    engine_or_conn, patient_id: str, purpose: Purpose | str, legal_basis: str | None = None
) -> bool:
    """May this person's data be used for ``purpose`` under ``legal_basis``?"""
    purpose = Purpose(purpose)
    if legal_basis is not None and legal_basis not in LEGAL_BASES:
        raise ValueError(
            f"Unknown legal basis {legal_basis!r}; use one of {', '.join(sorted(LEGAL_BASES))}."
        )
    if purpose not in OPT_OUT_PURPOSES:
        return True  # direct care and the patient's own access: opt-outs do not apply
    if legal_basis in EXEMPT_BASES:
        return True
    if isinstance(engine_or_conn, Connection):
        return purpose.value not in opted_out_purposes(engine_or_conn, patient_id)
    with engine_or_conn.connect() as conn:
        return purpose.value not in opted_out_purposes(conn, patient_id)


def opted_out_patients(conn: Connection, purpose: Purpose | str) -> set[str]:
    """Every Patient id (all of each person's records) opted out of ``purpose``; for extracts."""
    purpose = Purpose(purpose)
    c = C.alias()
    rows = conn.execute(
        select(c.c.patient_id, R.c.content)
        .join(c, c.c.res_pk == R.c.pk)
        .where(R.c.res_type == "Consent", R.c.deleted.is_(False))
    )
    direct = {pid for pid, content in rows if purpose.value in _denied_purposes(content)}
    if not direct:
        return set()
    return set(conn.execute(same_person(sorted(direct))).scalars())


def opt_out_consent(patient_id: str, purposes: list[Purpose], when: str) -> dict:
    """The Consent that records a patient's opt-out of ``purposes`` (set by themselves)."""
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {"system": PRIVACY_SCOPE[0], "code": PRIVACY_SCOPE[1], "display": "Privacy Consent"}
            ]
        },
        "category": [
            {
                "coding": [
                    {"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}
                ],
                "text": "National data opt-out",
            }
        ],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": when,
        "policy": [{"uri": "https://digital.nhs.uk/services/national-data-opt-out"}],
        "provision": {
            "type": "deny",
            "purpose": [
                {"system": p.system, "code": p.value, "display": _PURPOSE_TEXT[p]} for p in purposes
            ],
        },
    }


_PURPOSE_TEXT = {Purpose.HRESCH: "healthcare research", Purpose.HOPERAT: "healthcare operations"}
