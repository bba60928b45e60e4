"""Jobs as records, on SQLite and PostgreSQL: who may submit, what is recorded (never the
outputs' contents), the sandboxed run on dummy then real data, and every job in the log."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from records_support import DEFINITION, SCRIPT, active_project, make_jobs, ran, research_store
from sde_support import project_fields
from sqlalchemy import func, select

from carelight.sde.governance import Conflict, NotAllowed
from carelight.sde.review.tables import sde_job


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(sde_job)).scalar()


def _log_entry(world, index: int) -> dict:
    return orjson.loads(world.trail.log.leaf(index))


def test_jobs_are_refused_outside_active_projects_and_to_non_members(world):
    jobs = make_jobs(world)
    g = world.governance
    draft = g.create(world.who("researcher"), project_fields())
    submitted = g.create(world.who("researcher"), project_fields())
    g.transition(world.who("researcher"), submitted.id, "submit")
    approved = g.create(world.who("researcher"), project_fields())
    g.transition(world.who("researcher"), approved.id, "submit")
    g.transition(world.who("dac"), approved.id, "approve")
    for p in (draft, submitted, approved):
        with pytest.raises(Conflict, match="jobs run only in an active project"):
            jobs.submit(world.who("researcher"), p.id, "A job", DEFINITION, SCRIPT)
    active = active_project(world)
    with pytest.raises(NotAllowed, match="not a member"):
        jobs.submit(world.who("outsider"), active.id, "A job", DEFINITION, SCRIPT)
    for role_holder in ("checker1", "dac", "admin"):
        with pytest.raises(NotAllowed, match="Only researchers run jobs"):
            jobs.submit(world.who(role_holder), active.id, "A job", DEFINITION, SCRIPT)
    closed = g.transition(world.who("dac"), active.id, "close")
    with pytest.raises(Conflict, match="closed"):
        jobs.submit(world.who("researcher"), closed.id, "A job", DEFINITION, SCRIPT)
    with pytest.raises(Exception, match="needs a dataset definition"):
        jobs.submit(world.who("researcher"), active.id, "A job", " ", SCRIPT)
    assert _count(world.store.engine) == 0  # nothing recorded for any refusal


def test_a_job_is_recorded_run_on_dummy_then_real_data_and_logged(world):
    p = active_project(world)
    jobs = make_jobs(world)
    with pytest.raises(Conflict, match="no research store"):
        first = jobs.execute(jobs.submit(world.who("researcher"), p.id, "x", DEFINITION, SCRIPT).id)
        jobs.run_real(world.who("researcher"), first.id)
    extract = research_store(world, jobs, p.id)
    dummy, real = ran(jobs, world.who("researcher"), p.id)
    for job in (dummy, real):
        assert job.status == "succeeded" and job.exit_status == 0
        assert job.isolation in ("namespaces", "fallback") and job.backend
        assert job.started >= job.submitted and job.finished >= job.started
        assert job.project_id == p.id and job.username == "researcher"
        assert len(job.definition_sha256) == 64 and len(job.script_sha256) == 64
    assert (dummy.data, real.data) == ("dummy", "real")
    assert real.code_of == dummy.id and real.extract_id == extract
    assert (real.definition_sha256, real.script_sha256) == (
        dummy.definition_sha256,
        dummy.script_sha256,
    )
    outputs = {o.path: o for o in jobs.outputs(real.id)}
    assert outputs["people.csv"].kind == "row_level"
    assert outputs["people.csv"].review is None and outputs["people.csv"].safe_sha256 is None
    counts = outputs["counts.csv"]
    assert counts.kind == "aggregate" and counts.review == "pending"
    assert counts.disclosure == "modified"
    rules = {r["rule"]: r for r in counts.evidence["rules"]}
    # The evidence names the cell by its labels, never its count.
    assert [h["cell"] for h in rules["threshold"]["hits"]] == [{"sex": "male"}]
    assert counts.evidence["policy"]["name"] == "nhs-england"
    assert '"5"' not in orjson.dumps(rules["threshold"]).decode()
    assert outputs["notes.txt"].disclosure == "review"  # text: read by the checkers
    # Dummy outputs are for testing code: never queued for checking.
    assert all(o.review is None for o in jobs.outputs(dummy.id))
    # The database holds no output contents: the safe file is in the job folder only.
    with world.store.engine.connect() as conn:
        stored = repr(conn.execute(select(sde_job)).all())
    assert "female" not in stored
    # A second real run of the same code is refused; so is changing the data kind.
    with pytest.raises(Conflict, match="already has a real run"):
        jobs.run_real(world.who("researcher"), dummy.id)
    with pytest.raises(Conflict, match="already ran on real data"):
        jobs.run_real(world.who("researcher"), real.id)
    # Submission and finish of each job are in the transparency log, about the job.
    for job in (dummy, real):
        for index in (job.log_index, job.finish_log_index):
            entry = _log_entry(world, index)
            assert entry["subtype"][-1]["code"] == "sde-job"
            refs = [e["what"]["reference"] for e in entry["entity"] if "what" in e]
            assert f"Task/sde-job-{job.id}" in refs


def test_a_failing_job_is_recorded_as_failed_and_a_real_run_refused(world):
    p = active_project(world)
    jobs = make_jobs(world)
    research_store(world, jobs, p.id)
    job = jobs.submit(world.who("researcher"), p.id, "Broken", DEFINITION, "raise SystemExit(3)")
    job = jobs.execute(job.id)
    assert job.status == "failed" and job.failed_step == "analysis" and job.exit_status == 3
    with pytest.raises(Conflict, match="succeeded on dummy data first"):
        jobs.run_real(world.who("researcher"), job.id)


def test_the_background_queue_runs_a_job_after_the_request_returns(world):
    from carelight.sde.jobs.records import JobQueue

    p = active_project(world)
    jobs = make_jobs(world)
    queue = JobQueue(jobs)
    try:
        job = jobs.submit(world.who("researcher"), p.id, "Counts", DEFINITION, SCRIPT)
        assert job.status == "queued"
        queue.start(job.id)
        assert queue.wait(job.id).status == "succeeded"
    finally:
        queue.shutdown()


def test_a_member_whose_accreditation_lapsed_cannot_run_jobs(world):
    from sqlalchemy import update

    from carelight.sde.tables import sde_accreditation

    p = active_project(world)
    jobs = make_jobs(world)
    with world.store.engine.begin() as conn:  # the accreditation ended yesterday
        conn.execute(
            update(sde_accreditation).values(
                valid_to=dt.date.today() - dt.timedelta(days=1),
                valid_from=dt.date.today() - dt.timedelta(days=400),
            )
        )
    with pytest.raises(NotAllowed, match="not accredited today"):
        jobs.submit(world.who("researcher"), p.id, "A job", DEFINITION, SCRIPT)
    assert _count(world.store.engine) == 0
