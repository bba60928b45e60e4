"""Which research projects a person's data went to: for the patient's "how my data is used"
page. Read from the operational record of each extract's included Patient records (never from a
research store, which holds no one's identity)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from carelight.sde.governance import Governance
from carelight.sde.register import project_summary
from carelight.sde.tables import sde_extract as X
from carelight.sde.tables import sde_extract_person as XP


def projects_including(engine: Engine, patient_ids: list[str]) -> list[dict]:
    """The projects whose completed extracts included any of these Patient records (one
    person's), newest extract first, each with the public summary and the extracts' dates."""
    if not patient_ids:
        return []
    with engine.connect() as conn:
        rows = conn.execute(
            select(X.c.project_id, func.count(func.distinct(X.c.id)), func.max(X.c.started))
            .select_from(XP.join(X, X.c.id == XP.c.extract_id))
            .where(XP.c.patient_id.in_(list(patient_ids)), X.c.status == "completed")
            .group_by(X.c.project_id)
            .order_by(func.max(X.c.started).desc())
        ).all()
    governance = Governance(engine, None)
    out = []
    for project_id, extracts, latest in rows:
        summary = project_summary(governance.get(project_id))
        out.append(summary | {"extracts_including_you": extracts, "latest_extract": latest})
    return out
