"""The public register's content: every project past draft, with the fields the NHS Data Uses
Register publishes, its decisions and the extracts taken (when, how many people, opt-outs).

One function builds the entry, and the web page and the JSON both render it, so they cannot
disagree. Issue 9 adds jobs and releases to an entry through ``SECTIONS``: each is a function
``(conn, project) -> (key, list of dicts)``, appended to the entry in order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import orjson
from sqlalchemy import Connection, Engine, select

from carelight.sde import model
from carelight.sde.governance import Governance, Project
from carelight.sde.governance.rules import PUBLIC_STATUSES
from carelight.sde.tables import sde_extract as X

_STATUS_TEXT = {
    "submitted": "Under review by the data access committee",
    "approved": "Approved, not yet started",
    "rejected": "Rejected",
    "active": "Active",
    "closed": "Closed",
    "draft": "Draft (not public)",
}


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return (
        dt.datetime.fromtimestamp(epoch, dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def project_summary(p: Project) -> dict:
    """The project's published fields (no member names: people are listed by organisation)."""
    approved = p.decided("approve")
    rejected = p.decided("reject")
    return {
        "id": p.id,
        "reference": f"sde-project-{p.id}",
        "organisation": p.organisation,
        "title": p.title,
        "lay_summary": p.lay_summary,
        "purpose": p.purpose,
        "legal_basis": p.legal_basis,
        "confidentiality_basis": p.confidentiality_basis,
        "national_data_opt_outs_applied": p.opt_outs_apply,
        "commercial": p.commercial,
        "datasets": [{"table": t, "description": model.BY_NAME[t].description} for t in p.tables],
        "start_date": p.start_date.isoformat(),
        "end_date": p.end_date.isoformat(),
        "status": p.status,
        "status_text": _STATUS_TEXT[p.status],
        "submitted": _iso(e.at) if (e := p.decided("submit")) else None,
        "decision": (
            {
                "outcome": "approved" if approved else "rejected",
                "date": _iso((approved or rejected).at),
                "reason": (approved or rejected).reason,
            }
            if (approved or rejected)
            else None
        ),
        "history": [
            {
                "event": e.transition,
                "status": e.to_status,
                "at": _iso(e.at),
                "log_index": e.log_index,
            }
            for e in p.events
            if e.transition != "edit"
        ],
    }


def _extracts(conn: Connection, p: Project) -> tuple[str, list[dict]]:
    rows = conn.execute(
        select(X).where(X.c.project_id == p.id, X.c.status == "completed").order_by(X.c.started)
    ).mappings()
    return "extracts", [
        {
            "id": r["id"],
            "taken": _iso(r["started"]),
            "finished": _iso(r["finished"]),
            "engine": r["engine"],
            "tables": orjson.loads(r["tables"]),
            "people": r["people"],
            "rows": orjson.loads(r["table_rows"] or "{}"),
            "opt_outs_applied": bool(r["opt_outs_applied"]),
            "people_opted_out": r["opted_out"],
            "log_checkpoint": {"tree_size": r["log_tree_size"], "root_hash": r["log_root_hash"]},
            "log_index": r["log_index"],
        }
        for r in rows
    ]


SECTIONS: list[Callable[[Connection, Project], tuple[str, list[dict]]]] = [_extracts]


def register_entry(conn: Connection, p: Project) -> dict:
    entry = project_summary(p)
    for section in SECTIONS:
        key, items = section(conn, p)
        entry[key] = items
    return entry


def public_register(engine: Engine) -> list[dict]:
    """Every public project (submitted or later), oldest first."""
    projects = Governance(engine, None).list(statuses=sorted(PUBLIC_STATUSES))
    with engine.connect() as conn:
        return [register_entry(conn, p) for p in projects]


def public_entry(engine: Engine, project_id: object) -> dict | None:
    """One public project's entry; None for a draft or an unknown project (not announced)."""
    from carelight.sde.governance import NotFound

    try:
        p = Governance(engine, None).get(project_id)
    except NotFound:
        return None
    if not p.public:
        return None
    with engine.connect() as conn:
        return register_entry(conn, p)


# Issue 9: every job and every release of a project, in its entry.
from carelight.sde.review.public import jobs_section, releases_section  # noqa: E402

SECTIONS += [jobs_section, releases_section]
