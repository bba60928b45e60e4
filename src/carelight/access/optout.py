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
from sqlalchemy import Connection, String, and_, exists, false, select, union
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from carelight.access.gate import PRIVACY_SCOPE, same_person
from carelight.access.principal import Purpose
from carelight.fhir import schema

R, C, PL, TOKEN = schema.resource, schema.compartment, schema.person_link, schema.sp_token
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


class _provision_type(FunctionElement):
    """``provision.type`` of a resource's JSON text, in SQL (not a search parameter)."""

    type = String()
    inherit_cache = True


@compiles(_provision_type, "sqlite")
def _provision_type_sqlite(element, compiler, **kw):
    return f"json_extract({compiler.process(element.clauses, **kw)}, '$.provision.type')"


@compiles(_provision_type, "postgresql")
def _provision_type_postgresql(element, compiler, **kw):
    return f"(CAST({compiler.process(element.clauses, **kw)} AS jsonb) #>> '{{provision,type}}')"


def opted_out_records(purpose: Purpose | str):
    """SQL: every Patient id (all of each person's records) opted out of ``purpose``.

    The same rule as :func:`opted_out_purposes`, written as a sub-query so that it is applied
    inside the data layer's SQL (the research extract's gate condition): an active Consent with
    scope patient-privacy, ``provision.type = deny`` and the purpose, found through the search
    index, widened to every record of the same person through the master patient index.
    """
    purpose = Purpose(purpose)

    def token(param: str, code: str, system: str | None = None):
        t = TOKEN.alias()
        where = [t.c.res_pk == R.c.pk, t.c.res_type == "Consent", t.c.param == param]
        where.append(t.c.code == code)
        if system is not None:
            where.append(t.c.system == system)
        return exists(select(t.c.res_pk).where(and_(*where)))

    consents = select(R.c.pk).where(
        R.c.res_type == "Consent",
        R.c.deleted == false(),
        token("status", "active"),
        token("scope", PRIVACY_SCOPE[1], PRIVACY_SCOPE[0]),
        token("purpose", purpose.value),
        _provision_type(R.c.content) == "deny",
    )
    c = C.alias()
    direct = select(c.c.patient_id).where(c.c.res_pk.in_(consents))
    a, b = PL.alias(), PL.alias()
    linked = (
        select(b.c.patient_id)
        .select_from(a.join(b, b.c.person == a.c.person))
        .where(a.c.patient_id.in_(direct))
    )
    return union(direct, linked)


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
