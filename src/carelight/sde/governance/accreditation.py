"""Researcher accreditation: who, by which body, valid from and to. Recorded by the data access
committee or an administrator, appended to the transparency log; only researchers accredited on
the day may be members of an active project (``Governance`` checks it)."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, and_, insert, select

from carelight.access.accounts import write_transaction
from carelight.access.principal import Principal, Role
from carelight.access.schema import account
from carelight.sde.governance.errors import GovernanceError, NotAllowed
from carelight.sde.governance.rules import ACCREDIT_ROLES
from carelight.sde.tables import sde_accreditation as A
from carelight.sde.transparency import record_sde_event


@dataclass(frozen=True)
class Accreditation:
    id: int
    username: str
    body: str
    valid_from: dt.date
    valid_to: dt.date
    recorded_by: str
    recorded: float
    log_index: int | None

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day <= self.valid_to


def _date(value: object, what: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise GovernanceError(f"{what} must be a date as YYYY-MM-DD, not {value!r}.") from None


def accredit(
    engine: Engine,
    trail,
    who: Principal,
    username: str,
    body: str,
    valid_from: object,
    valid_to: object,
    clock=time.time,
) -> Accreditation:
    """Record that ``username`` (a researcher) is accredited by ``body`` for the period."""
    if who.role not in ACCREDIT_ROLES:
        raise NotAllowed(
            "Only the data access committee or an administrator records accreditation; "
            f"your role is {who.role}."
        )
    username = username.strip().lower()
    body = (body or "").strip()
    if not body or len(body) > 200:
        raise GovernanceError("Name the accrediting body (up to 200 characters).")
    start, end = _date(valid_from, "valid_from"), _date(valid_to, "valid_to")
    if end < start:
        raise GovernanceError(f"valid_to ({end}) is before valid_from ({start}).")
    now = clock()
    with write_transaction(engine) as conn:
        role = conn.execute(select(account.c.role).where(account.c.username == username)).scalar()
        if role is None:
            raise GovernanceError(f"There is no account {username!r}.")
        if role != Role.RESEARCHER.value:
            raise GovernanceError(f"{username} is a {role}; only researchers are accredited.")
        index = record_sde_event(
            trail, who, "sde-accredit", (), f"accredit {username} by {body}: {start} to {end}",
            None, now,
        )  # fmt: skip
        new_id = conn.execute(
            insert(A).values(
                username=username, body=body, valid_from=start, valid_to=end,
                recorded_by=who.username, recorded=now, log_index=index,
            )
        ).inserted_primary_key[0]  # fmt: skip
    return Accreditation(new_id, username, body, start, end, who.username, now, index)


def accreditations(engine_or_conn, username: str | None = None) -> list[Accreditation]:
    stmt = select(A).order_by(A.c.username, A.c.valid_from)
    if username is not None:
        stmt = stmt.where(A.c.username == username.strip().lower())
    if isinstance(engine_or_conn, Connection):
        rows = engine_or_conn.execute(stmt).mappings().all()
    else:
        with engine_or_conn.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
    return [_row(r) for r in rows]


def accredited_on(conn: Connection, username: str, day: dt.date) -> bool:
    found = conn.execute(
        select(A.c.id).where(
            and_(A.c.username == username, A.c.valid_from <= day, A.c.valid_to >= day)
        )
    ).first()
    return found is not None


def _row(r) -> Accreditation:
    values = dict(r)
    for key in ("valid_from", "valid_to"):
        if isinstance(values[key], str):
            values[key] = dt.date.fromisoformat(values[key])
    return Accreditation(**values)
