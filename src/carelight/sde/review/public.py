"""What the public register shows of jobs and releases: every job (project, person, code
hashes, engine, data, times, status, isolation) and every release (file name, hash, size,
when, by whom approved). Never an output's contents, never a checker's comment.

``jobs_section`` and ``releases_section`` are the register's ``SECTIONS`` for a project's
entry; :func:`public_jobs` and :func:`public_releases` feed ``/register/jobs.json`` and
``/register/releases.json``. Only jobs of public projects (submitted or later) appear.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Engine, select

from carelight.sde.governance.rules import PUBLIC_STATUSES
from carelight.sde.review.tables import sde_job as J
from carelight.sde.review.tables import sde_release as R
from carelight.sde.tables import sde_project as P


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    when = dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")
    return when.replace("+00:00", "Z")


def job_entry(r) -> dict:
    return {
        "id": r["id"],
        "project": r["project_id"],
        "title": r["title"],
        "person": r["username"],
        "definition_sha256": r["definition_sha256"],
        "script_sha256": r["script_sha256"],
        "engine": r["engine"],
        "data": r["data"],
        "code_of_job": r["code_of"],
        "extract": r["extract_id"],
        "status": r["status"],
        "submitted": _iso(r["submitted"]),
        "started": _iso(r["started"]),
        "finished": _iso(r["finished"]),
        "isolation": r["isolation"],
        "exit_status": r["exit_status"],
        "log_index": r["log_index"],
    }


def release_entry(r) -> dict:
    return {
        "id": r["id"],
        "project": r["project_id"],
        "job": r["job_id"],
        "file": r["path"],
        "sha256": r["sha256"],
        "bytes": r["size"],
        "released": _iso(r["released"]),
        "approved_by": r["checkers"].split(","),
        "log_index": r["log_index"],
    }


def jobs_section(conn: Connection, p) -> tuple[str, list[dict]]:
    rows = conn.execute(select(J).where(J.c.project_id == p.id).order_by(J.c.id)).mappings()
    return "jobs", [job_entry(r) for r in rows]


def releases_section(conn: Connection, p) -> tuple[str, list[dict]]:
    rows = conn.execute(select(R).where(R.c.project_id == p.id).order_by(R.c.id)).mappings()
    return "releases", [release_entry(r) for r in rows]


def _public(table):
    public = select(P.c.id).where(P.c.status.in_(sorted(PUBLIC_STATUSES)))
    return select(table).where(table.c.project_id.in_(public)).order_by(table.c.id)


def public_jobs(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [job_entry(r) for r in conn.execute(_public(J)).mappings()]


def public_releases(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [release_entry(r) for r in conn.execute(_public(R)).mappings()]
