"""Break-glass: a professional without a care relationship opens a person's record, saying why.

A grant is time-limited (``CARELIGHT_BREAK_GLASS_HOURS``, default 4), for one person, for the
user who asked. It is recorded in the transparency log (flagged), every access made under it
is logged with the purpose ETREAT, the organisation's privacy officer lists the grants
(``GET /access/break-glass``), and the patient sees them with the reason among the accesses to
their record.
"""

from __future__ import annotations

import os
import secrets
import time

from sqlalchemy import BigInteger, Column, Float, MetaData, String, Table, Text, select

from carelight.access.principal import PROFESSIONAL_ROLES, Principal
from carelight.fhir.errors import bad_request, error

metadata = MetaData()
break_glass = Table(  # created by migration 0006
    "break_glass",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("username", String(128), nullable=False),
    Column("role", String(32), nullable=False),
    Column("organization_id", String(64)),
    Column("organization_code", String(16)),
    Column("patient_id", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created", Float(precision=53), nullable=False),
    Column("expires", Float(precision=53), nullable=False),
    Column("audit_index", BigInteger),
)

MIN_REASON = 10
MAX_REASON = 500


def grant_hours() -> float:
    return float(os.environ.get("CARELIGHT_BREAK_GLASS_HOURS", "4"))


def check_reason(reason: object) -> str:
    if not isinstance(reason, str) or len(reason.strip()) < MIN_REASON:
        raise bad_request(
            f"Say why you need this record (at least {MIN_REASON} characters): the reason is "
            "shown to the patient and to your organisation's privacy officer.",
            "reason",
        )
    reason = " ".join(reason.split())
    if len(reason) > MAX_REASON:
        raise bad_request(f"The reason is too long (at most {MAX_REASON} characters).", "reason")
    return reason


def open_grant(engine, principal: Principal, patient_id: str, reason: str) -> dict:
    if principal.role not in PROFESSIONAL_ROLES:
        raise error(403, "forbidden", "Only health and care professionals may break glass.")
    now = time.time()
    row = {
        "id": secrets.token_urlsafe(16),
        "username": principal.username,
        "role": str(principal.role),
        "organization_id": principal.organization_id,
        "organization_code": principal.organization_code,
        "patient_id": patient_id,
        "reason": check_reason(reason),
        "created": now,
        "expires": now + grant_hours() * 3600.0,
    }
    with engine.begin() as conn:
        conn.execute(break_glass.insert().values(**row))
    return row


def set_audit_index(engine, grant_id: str, index: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            break_glass.update().where(break_glass.c.id == grant_id).values(audit_index=index)
        )


def has_active_grant(engine, username: str) -> bool:
    with engine.connect() as conn:
        row = conn.execute(
            select(break_glass.c.id)
            .where(break_glass.c.username == username, break_glass.c.expires > time.time())
            .limit(1)
        ).first()
    return row is not None


def list_grants(engine, organization_code: str | None = None, limit: int = 500) -> list[dict]:
    """Grants, newest first (for a privacy officer: one organisation's)."""
    stmt = select(break_glass).order_by(break_glass.c.created.desc()).limit(limit)
    if organization_code is not None:
        stmt = stmt.where(break_glass.c.organization_code == organization_code)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]
