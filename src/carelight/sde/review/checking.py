"""Two-person output checking: the review, the security boundary between a job's outputs
and their release.

Each aggregate output of a real run that passed disclosure control waits (``pending``) for
two output checkers. The rules, all enforced here (the API, the pages and the CLI call these
functions and nothing else):

- only accounts with the ``output-checker`` role vote; the job's author and every member of
  the project are refused, whatever their role;
- one vote per checker per file (also a unique constraint in the database);
- **blind**: until both have voted, a checker sees only their own vote (:func:`votes_seen_by`);
- when the second vote lands the outcome is the most restrictive of the two: any reject →
  ``rejected``; any request for changes → ``changes-requested``; both approve → ``approved``,
  and the safe (redacted) version is released in the same transaction (``release``).

Every vote is appended to the transparency log inside its transaction (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, insert, select, update

from carelight.access.accounts import write_transaction
from carelight.access.principal import Principal, Role
from carelight.sde.governance.errors import Conflict, GovernanceError, NotAllowed, NotFound
from carelight.sde.jobs.records import Job, Jobs, Output, job_reference, output_of
from carelight.sde.review.release import make_release
from carelight.sde.review.tables import sde_job as J
from carelight.sde.review.tables import sde_job_output as O
from carelight.sde.review.tables import sde_review_vote as V
from carelight.sde.transparency import project_reference, record_sde_event

DECISIONS = ("approve", "request-changes", "reject")
VOTES_NEEDED = 2
MAX_COMMENT = 5000


@dataclass(frozen=True)
class Vote:
    checker: str
    decision: str
    comment: str
    at: float
    log_index: int | None


def outcome(decisions: list[str]) -> str:
    """The most restrictive of the votes."""
    if "reject" in decisions:
        return "rejected"
    if "request-changes" in decisions:
        return "changes-requested"
    return "approved"


def require_checker(who: Principal) -> None:
    if who.role is not Role.OUTPUT_CHECKER:
        raise NotAllowed(f"Only output checkers check outputs; your role is {who.role}.")


def _conflict_of_interest(jobs: Jobs, who: Principal, job: Job) -> str | None:
    if who.username == job.username:
        return "you submitted this job"
    if who.username in jobs.governance.get(job.project_id).members:
        return f"you are a member of project {job.project_id}"
    return None


def queue(jobs: Jobs, who: Principal) -> list[tuple[Job, Output]]:
    """Files waiting for this checker: pending, not yet voted on by them, not their own."""
    require_checker(who)
    with jobs.engine.connect() as conn:
        voted = select(V.c.output_id).where(V.c.checker == who.username)
        rows = conn.execute(
            select(O).where(O.c.review == "pending", O.c.id.not_in(voted)).order_by(O.c.id)
        ).mappings()
        outputs = [output_of(r) for r in rows]
    found = []
    for out in outputs:
        job = jobs.get(out.job_id)
        if _conflict_of_interest(jobs, who, job) is None:
            found.append((job, out))
    return found


def get_output(jobs: Jobs, output_id: object) -> tuple[Job, Output]:
    try:
        key = int(str(output_id))
    except ValueError:
        raise NotFound(f"There is no output {output_id!r}; outputs are numbered.") from None
    with jobs.engine.connect() as conn:
        row = conn.execute(select(O).where(O.c.id == key)).mappings().first()
    if row is None:
        raise NotFound(f"There is no output {output_id}.")
    out = output_of(row)
    return jobs.get(out.job_id), out


def for_checking(jobs: Jobs, who: Principal, output_id: object) -> tuple[Job, Output, bytes]:
    """A file's safe version, for a checker who may check it (never a row-level file)."""
    require_checker(who)
    job, out = get_output(jobs, output_id)
    reason = _conflict_of_interest(jobs, who, job)
    if reason:
        raise NotAllowed(f"You cannot check output {out.id}: {reason}.")
    if out.kind != "aggregate" or out.review is None or out.safe_sha256 is None:
        raise NotAllowed(f"Output {out.id} is not for checking (it is {out.kind}).")
    return job, out, read_safe(jobs, job, out)


def read_safe(jobs: Jobs, job: Job, out: Output) -> bytes:
    """The safe version's bytes, checked against the hash recorded when it was made."""
    import hashlib

    if out.kind != "aggregate" or out.safe_sha256 is None:
        raise NotAllowed(f"{out.path} is {out.kind}: it stays inside the environment.")
    data = jobs.safe_path(job, out.path).read_bytes()
    if hashlib.sha256(data).hexdigest() != out.safe_sha256:
        raise Conflict(f"The safe version of {out.path} changed after it was made; refused.")
    return data


def votes_seen_by(jobs: Jobs, who: Principal, output_id: int) -> list[Vote]:
    """The votes ``who`` may see: their own until the file is decided, then all of them
    (members of the project see them once decided, too)."""
    job, out = get_output(jobs, output_id)
    votes = _votes(jobs, out.id)
    if out.review not in (None, "pending"):
        if who.role in (Role.OUTPUT_CHECKER, Role.ADMIN, Role.DATA_ACCESS_COMMITTEE) or (
            who.username in jobs.governance.get(job.project_id).members
        ):
            return votes
        return []
    return [v for v in votes if v.checker == who.username]


def _votes(jobs: Jobs, output_id: int) -> list[Vote]:
    with jobs.engine.connect() as conn:
        rows = conn.execute(
            select(V.c.checker, V.c.decision, V.c.comment, V.c.at, V.c.log_index)
            .where(V.c.output_id == output_id)
            .order_by(V.c.id)
        ).all()
    return [Vote(*r) for r in rows]


def vote(
    jobs: Jobs, who: Principal, output_id: object, decision: str, comment: str
) -> tuple[Output, Vote]:
    """Record one checker's vote, and the outcome and release when it is the second."""
    require_checker(who)
    if decision not in DECISIONS:
        raise GovernanceError(f"Unknown decision {decision!r}; use one of {', '.join(DECISIONS)}.")
    comment = (comment or "").strip()
    if not comment:
        raise GovernanceError("Give a comment with your decision (the researcher reads it).")
    if len(comment) > MAX_COMMENT:
        raise GovernanceError(f"The comment is longer than {MAX_COMMENT} characters.")
    job, out = get_output(jobs, output_id)
    reason = _conflict_of_interest(jobs, who, job)
    if reason:
        raise NotAllowed(f"You cannot check output {out.id}: {reason}.")
    now = jobs.clock()
    with write_transaction(jobs.engine) as conn:
        stmt = select(O.c.review).where(O.c.id == out.id)
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        state = conn.execute(stmt).scalar()
        if state != "pending":
            raise Conflict(
                f"Output {out.id} is not waiting for checking (it is {state or out.kind})."
            )
        already = conn.execute(
            select(V.c.id).where(V.c.output_id == out.id, V.c.checker == who.username)
        ).first()
        if already is not None:
            raise Conflict(f"You have already voted on output {out.id}; one vote each.")
        index = record_sde_event(
            jobs.trail, who, "sde-review",
            (project_reference(job.project_id), job_reference(job.id)),
            f"vote {decision} on output {out.id} ({out.path}) of job {job.id}", None, now,
        )  # fmt: skip
        conn.execute(
            insert(V).values(
                output_id=out.id, checker=who.username, decision=decision, comment=comment,
                at=now, log_index=index,
            )
        )  # fmt: skip
        count = conn.execute(select(func.count()).where(V.c.output_id == out.id)).scalar()
        if count >= VOTES_NEEDED:
            decisions = list(
                conn.execute(select(V.c.decision).where(V.c.output_id == out.id)).scalars()
            )
            result = outcome(decisions)
            conn.execute(update(O).where(O.c.id == out.id).values(review=result, decided=now))
            if result == "approved":
                checkers = list(
                    conn.execute(
                        select(V.c.checker).where(V.c.output_id == out.id).order_by(V.c.id)
                    ).scalars()
                )
                make_release(conn, jobs, job, out, checkers, now)
    _, out = get_output(jobs, out.id)
    return out, Vote(who.username, decision, comment, now, index)


def decided_outputs(jobs: Jobs, job_id: int) -> list[Output]:
    with jobs.engine.connect() as conn:
        rows = conn.execute(
            select(O).join(J, J.c.id == O.c.job_id).where(J.c.id == job_id).order_by(O.c.path)
        ).mappings()
        return [output_of(r) for r in rows]
