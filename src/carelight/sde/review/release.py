"""Releases: the one door out of the environment.

A release is made only by the review (``checking.vote``, when both checkers approved) and
holds the **safe** version of an aggregate output: its hash, size, when, and who approved it;
it is appended to the transparency log in the same transaction. :func:`download` is the only
function that hands released bytes out: to researchers who are members of the project, after
checking the bytes still match the released hash. A row-level file can never be released
(``make_release`` refuses anything but an aggregate output with a safe version) and so never
downloaded; the raw (unredacted) output is never handed out either.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select

from carelight.access.principal import Principal, Role
from carelight.sde.governance.errors import Conflict, NotAllowed, NotFound
from carelight.sde.review.tables import sde_release as R
from carelight.sde.transparency import project_reference, record_sde_event


@dataclass(frozen=True)
class Release:
    id: int
    output_id: int
    job_id: int
    project_id: int
    path: str
    sha256: str
    size: int
    released: float
    checkers: tuple[str, ...]
    log_index: int | None


def _release(row) -> Release:
    values = dict(row)
    values["checkers"] = tuple(values["checkers"].split(","))
    return Release(**values)


def make_release(conn: Connection, jobs, job, out, checkers: list[str], now: float) -> int:
    """Record the release of ``out``'s safe version (inside the review's transaction)."""
    from carelight.sde.jobs.records import job_reference
    from carelight.sde.review.checking import read_safe

    if out.kind != "aggregate" or job.data != "real":
        raise NotAllowed(f"{out.path} is {out.kind}: only aggregate outputs are released.")
    data = read_safe(jobs, job, out)
    digest = hashlib.sha256(data).hexdigest()
    index = record_sde_event(
        jobs.trail, _environment(checkers[-1]), "sde-release",
        (project_reference(job.project_id), job_reference(job.id)),
        f"release output {out.id} ({out.path}) of job {job.id}: sha256 {digest}, "
        f"{len(data)} bytes, approved by {' and '.join(checkers)}", None, now,
    )  # fmt: skip
    return conn.execute(
        insert(R).values(
            output_id=out.id, job_id=job.id, project_id=job.project_id, path=out.path,
            sha256=digest, size=len(data), released=now, checkers=",".join(checkers),
            log_index=index,
        )
    ).inserted_primary_key[0]  # fmt: skip


def _environment(checker: str) -> Principal:
    return Principal(username=checker, role=Role.OUTPUT_CHECKER)


def releases(engine, project_id: int | None = None) -> list[Release]:
    stmt = select(R).order_by(R.c.id)
    if project_id is not None:
        stmt = stmt.where(R.c.project_id == project_id)
    with engine.connect() as conn:
        return [_release(r) for r in conn.execute(stmt).mappings()]


def get_release(engine, release_id: object) -> Release:
    try:
        key = int(str(release_id))
    except ValueError:
        raise NotFound(f"There is no release {release_id!r}; releases are numbered.") from None
    with engine.connect() as conn:
        row = conn.execute(select(R).where(R.c.id == key)).mappings().first()
    if row is None:
        raise NotFound(f"There is no release {release_id}.")
    return _release(row)


def visible_releases(jobs, who: Principal) -> list[Release]:
    """Releases of the projects ``who`` is a member of."""
    mine = {p.id for p in jobs.governance.list() if who.username in p.members}
    return [r for r in releases(jobs.engine) if r.project_id in mine]


def download(jobs, who: Principal, release_id: object) -> tuple[Release, bytes]:
    """The released bytes, for a researcher who is a member of the release's project."""
    from carelight.sde.review.checking import get_output, read_safe

    release = get_release(jobs.engine, release_id)
    project = jobs.governance.get(release.project_id)
    if who.role is not Role.RESEARCHER or who.username not in project.members:
        raise NotAllowed(
            f"Only researchers on project {project.id} may download its released outputs."
        )
    job, out = get_output(jobs, release.output_id)
    if out.kind != "aggregate" or out.review != "approved":
        raise NotAllowed(f"{out.path} is not released.")  # cannot happen: a release is made so
    data = read_safe(jobs, job, out)
    if hashlib.sha256(data).hexdigest() != release.sha256:
        raise Conflict(f"The released file {out.path} changed after release; refused.")
    return release, data
