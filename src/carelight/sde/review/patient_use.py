"""A patient's "how my data is used" page: every approved research project, and whether the
project's extracts included this person (any of their records, from any source system, as the
master patient index links them). Read from the operational tables only: the research store
holds pseudonyms, never who was included."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select

from carelight.fhir import schema
from carelight.sde.governance import Governance
from carelight.sde.tables import sde_extract as X
from carelight.sde.tables import sde_extract_person as XP

SHOWN = ("approved", "active", "closed")
PL = schema.person_link


def _day(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).date().isoformat()


def projects_for_patient(engine: Engine, patient_id: str) -> list[dict]:
    """Approved projects, each with ``included`` and the days of the extracts that did."""
    projects = Governance(engine, None).list(statuses=SHOWN)
    with engine.connect() as conn:
        person = select(PL.c.person).where(PL.c.patient_id == patient_id).scalar_subquery()
        mine = select(PL.c.patient_id).where(PL.c.person == person)
        rows = conn.execute(
            select(X.c.project_id, X.c.started)
            .where(
                X.c.status == "completed",
                X.c.id.in_(
                    select(XP.c.extract_id).where(
                        XP.c.patient_id.in_(mine) | (XP.c.patient_id == patient_id)
                    )
                ),
            )
            .order_by(X.c.started)
        ).all()
    used: dict[int, list[str]] = {}
    for project_id, started in rows:
        used.setdefault(project_id, []).append(_day(started))
    return [
        {
            "id": p.id,
            "title": p.title,
            "organisation": p.organisation,
            "status": p.status,
            "opt_outs_apply": p.opt_outs_apply,
            "included": p.id in used,
            "extracts": used.get(p.id, []),
        }
        for p in projects
    ]
