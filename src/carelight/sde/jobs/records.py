"""Jobs as records: who submitted what code to which project, how it ran and what it wrote.

``Jobs(engine, trail, settings)`` is the one place jobs are submitted and recorded:

- :meth:`Jobs.submit` checks the researcher may (a member of an **active** project, accredited
  today), stores the code beside the job's folder, records the job (project, person, SHA-256
  of the definition and the script, engine, dummy or real, status ``queued``) and appends it
  to the transparency log, all before anything runs. A real run (:meth:`Jobs.run_real`) reuses
  a dummy job's frozen code; the runner refuses it unless that dummy run succeeded.
- :meth:`Jobs.execute` runs it through the sandboxed runner (``carelight.sde.jobs.runner``),
  then records the isolation the sandbox reported, the exit status, and each output's
  classification; every aggregate output goes through disclosure control
  (``carelight.sde.review.disclosure``), whose safe version is kept in the job's folder and
  whose evidence is stored. Outputs of a real run then wait for two output checkers.
- :class:`JobQueue` runs jobs in a background thread, so a web request returns at once.

The database holds the record, never an output's contents.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import queue
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import orjson
from sqlalchemy import Engine, insert, select, update

from carelight.access.accounts import write_transaction
from carelight.access.principal import Principal, Role
from carelight.sde import model
from carelight.sde.governance import Governance
from carelight.sde.governance.accreditation import accredited_on
from carelight.sde.governance.errors import Conflict, GovernanceError, NotAllowed, NotFound
from carelight.sde.governance.rules import OVERSIGHT_ROLES
from carelight.sde.jobs.dataset import DEFAULT_PRODUCER
from carelight.sde.review.tables import sde_job as J
from carelight.sde.review.tables import sde_job_output as O
from carelight.sde.tables import sde_extract as X
from carelight.sde.transparency import project_reference, record_sde_event

ENGINES = ("duckdb",)  # the runner's dataset step reads the DuckDB store; Spark: see docs
MAX_CODE = 200_000  # characters of a definition or a script
STANDIN_PRODUCER = "carelight.sde.jobs.standin:produce_dataset"
DUMMY_PEOPLE = 500


def job_reference(job_id: int) -> str:
    return f"Task/sde-job-{job_id}"


@dataclass(frozen=True)
class Output:
    id: int
    job_id: int
    path: str
    kind: str  # row_level | aggregate | disallowed
    size: int
    sha256: str | None
    reasons: tuple[str, ...]
    disclosure: str | None  # passed | modified | blocked
    evidence: dict | None
    safe_sha256: str | None
    safe_size: int | None
    review: str | None  # pending | approved | changes-requested | rejected
    decided: float | None


@dataclass(frozen=True)
class Job:
    id: int
    project_id: int
    username: str
    title: str
    definition_sha256: str
    script_sha256: str
    engine: str
    data: str
    code_of: int | None
    extract_id: str | None
    producer: str
    status: str
    submitted: float
    started: float | None
    finished: float | None
    isolation: str | None
    backend: str | None
    exit_status: int | None
    failed_step: str | None
    error: str | None
    log_index: int | None
    finish_log_index: int | None

    @property
    def code_job(self) -> int:
        """The job whose folder holds the frozen code (a real run uses its dummy job's)."""
        return self.code_of or self.id

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed")


class Jobs:
    """Submitting, running and reading jobs, over the operational database and the log."""

    def __init__(
        self, engine: Engine, trail, settings, *, isolation="auto", limits=None, clock=time.time,
        producer: str | None = None,
    ) -> None:  # fmt: skip
        self.engine = engine
        self.trail = trail
        self.settings = settings
        self.isolation = isolation
        self.limits = limits
        self.clock = clock
        self.producer = producer or DEFAULT_PRODUCER
        self.governance = Governance(engine, trail, clock)

    # -- where things are --------------------------------------------------------------------
    def project_dir(self, project_id: int) -> Path:
        return Path(self.settings.home) / "sde" / "projects" / str(project_id)

    def job_dir(self, job: Job) -> Path:
        return self.project_dir(job.project_id) / "jobs" / str(job.code_job)

    def run_dir(self, job: Job) -> Path:
        return self.job_dir(job) / "runs" / job.data

    def safe_path(self, job: Job, output_path: str) -> Path:
        """Where the safe (disclosure-controlled) version of an output is kept."""
        return self.run_dir(job) / "safe" / PurePosixPath(output_path)

    def _submission(self, job_id: int, project_id: int) -> Path:
        return self.project_dir(project_id) / "submissions" / str(job_id)

    # -- reading -----------------------------------------------------------------------------
    def get(self, job_id: object) -> Job:
        try:
            key = int(str(job_id))
        except ValueError:
            raise NotFound(f"There is no job {job_id!r}; jobs are numbered.") from None
        with self.engine.connect() as conn:
            row = conn.execute(select(J).where(J.c.id == key)).mappings().first()
        if row is None:
            raise NotFound(f"There is no job {job_id}.")
        return Job(**dict(row))

    def list(self, project_id: int | None = None) -> list[Job]:
        stmt = select(J).order_by(J.c.id)
        if project_id is not None:
            stmt = stmt.where(J.c.project_id == project_id)
        with self.engine.connect() as conn:
            return [Job(**dict(r)) for r in conn.execute(stmt).mappings()]

    def visible_to(self, who: Principal, project_id: int | None = None) -> list[Job]:
        """Members see their projects' jobs; the committee, checkers and administrators all."""
        jobs = self.list(project_id)
        if who.role in OVERSIGHT_ROLES:
            return jobs
        mine = {p.id for p in self.governance.list() if who.username in p.members}
        return [j for j in jobs if j.project_id in mine]

    def require_visible(self, who: Principal, job_id: object) -> Job:
        job = self.get(job_id)
        if who.role in OVERSIGHT_ROLES:
            return job
        if who.username in self.governance.get(job.project_id).members:
            return job
        raise NotFound(f"There is no job {job_id}.")

    def outputs(self, job_id: int) -> list[Output]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(O).where(O.c.job_id == job_id).order_by(O.c.path))
            return [output_of(r) for r in rows.mappings()]

    def outputs_seen_by(self, who: Principal, job: Job) -> list[Output]:
        """The job's outputs as ``who`` may see them. The disclosure evidence of a real run
        names the cells each rule hit: which counts were small, and which cells were hidden
        only to protect them. That is for output checkers, the committee and administrators;
        the project's researchers see the outcome and the policy, until and after release, so
        the evidence cannot undo secondary suppression or reveal an unreleased table."""
        outputs = self.outputs(job.id)
        if job.data == "dummy" or who.role in EVIDENCE_ROLES:
            return outputs
        return [
            dataclasses.replace(o, evidence=_outcome_only(o.evidence)) if o.evidence else o
            for o in outputs
        ]

    def code(self, job: Job) -> tuple[str, str]:
        """The definition and the script, as submitted (for the job's page)."""
        base = self._submission(job.code_job, job.project_id)
        return (base / "definition.py").read_text(), (base / "analysis.py").read_text()

    # -- submitting --------------------------------------------------------------------------
    def submit(
        self, who: Principal, project_id: object, title: str, definition: str, script: str,
        *, engine: str = "duckdb",
    ) -> Job:  # fmt: skip
        """Record a new job (run first on dummy data) or refuse it with nothing recorded."""
        title = (title or "").strip()
        if not title or len(title) > 200:
            raise GovernanceError("Give the job a title (up to 200 characters).")
        for name, text in (("dataset definition", definition), ("analysis script", script)):
            if not isinstance(text, str) or not text.strip():
                raise GovernanceError(f"The job needs a {name} (Python code).")
            if len(text) > MAX_CODE:
                raise GovernanceError(f"The {name} is longer than {MAX_CODE:,} characters.")
        if engine not in ENGINES:
            raise GovernanceError(f"Unknown engine {engine!r}; jobs run on: {', '.join(ENGINES)}.")
        project = self._require_may_run(who, project_id)
        now = self.clock()
        def_bytes, script_bytes = definition.encode(), script.encode()
        with write_transaction(self.engine) as conn:
            job_id = conn.execute(
                insert(J).values(
                    project_id=project.id, username=who.username, title=title,
                    definition_sha256=hashlib.sha256(def_bytes).hexdigest(),
                    script_sha256=hashlib.sha256(script_bytes).hexdigest(),
                    engine=engine, data="dummy", producer=self.producer, status="queued",
                    submitted=now,
                )
            ).inserted_primary_key[0]  # fmt: skip
            base = self._submission(job_id, project.id)
            base.mkdir(parents=True, exist_ok=True)
            (base / "definition.py").write_bytes(def_bytes)
            (base / "analysis.py").write_bytes(script_bytes)
            index = self._log_submit(who, project.id, job_id, "dummy", def_bytes, script_bytes,
                                     engine, now)  # fmt: skip
            conn.execute(update(J).where(J.c.id == job_id).values(log_index=index))
        return self.get(job_id)

    def run_real(self, who: Principal, job_id: object) -> Job:
        """A new job: the same frozen code as a succeeded dummy job, on the real research
        store (the project's latest completed extract)."""
        dummy = self.require_visible(who, job_id)
        if dummy.data != "dummy":
            raise Conflict(f"Job {dummy.id} already ran on real data; run its dummy job again.")
        if dummy.status != "succeeded":
            raise Conflict(
                f"Job {dummy.id} is {dummy.status} on dummy data; a real run needs the same "
                "code to have succeeded on dummy data first."
            )
        project = self._require_may_run(who, dummy.project_id)
        extract = self.latest_extract(project.id)
        if extract is None:
            raise Conflict(
                f"Project {project.id} has no research store yet: the committee extracts it "
                "with `carelight sde extract --project ID`."
            )
        with self.engine.connect() as conn:
            earlier = conn.execute(
                select(J.c.id).where(J.c.code_of == dummy.id, J.c.status != "failed")
            ).first()
        if earlier is not None:
            raise Conflict(
                f"Job {dummy.id}'s code already has a real run (job {earlier[0]}); submit a new "
                "job to run again."
            )
        now = self.clock()
        with write_transaction(self.engine) as conn:
            new_id = conn.execute(
                insert(J).values(
                    project_id=project.id, username=who.username, title=dummy.title,
                    definition_sha256=dummy.definition_sha256,
                    script_sha256=dummy.script_sha256, engine=dummy.engine, data="real",
                    code_of=dummy.id, extract_id=extract, producer=dummy.producer,
                    status="queued", submitted=now,
                )
            ).inserted_primary_key[0]  # fmt: skip
            index = record_sde_event(
                self.trail, who, "sde-job", (project_reference(project.id), job_reference(new_id)),
                f"submit job {new_id}: real run of job {dummy.id}'s code (definition "
                f"{dummy.definition_sha256}, script {dummy.script_sha256}) on extract "
                f"{extract}, engine {dummy.engine}", None, now,
            )  # fmt: skip
            conn.execute(update(J).where(J.c.id == new_id).values(log_index=index))
        return self.get(new_id)

    def _log_submit(self, who, project_id, job_id, data, def_bytes, script_bytes, engine, now):
        return record_sde_event(
            self.trail, who, "sde-job", (project_reference(project_id), job_reference(job_id)),
            f"submit job {job_id}: {data} run, definition "
            f"{hashlib.sha256(def_bytes).hexdigest()}, script "
            f"{hashlib.sha256(script_bytes).hexdigest()}, engine {engine}", None, now,
        )  # fmt: skip

    def _require_may_run(self, who: Principal, project_id: object):
        """The project, if ``who`` may run jobs in it: a researcher, a member, the project
        active, accredited today."""
        if who.role is not Role.RESEARCHER:
            raise NotAllowed(f"Only researchers run jobs; your role is {who.role}.")
        project = self.governance.get(project_id)
        if who.username not in project.members:
            raise NotAllowed(f"You are not a member of project {project.id}.")
        if project.status != "active":
            raise Conflict(
                f"Project {project.id} is {project.status}; jobs run only in an active project."
            )
        with self.engine.connect() as conn:
            if not accredited_on(conn, who.username, dt.date.today()):
                raise NotAllowed(
                    f"{who.username} is not accredited today; only accredited researchers run jobs."
                )
        return project

    def latest_extract(self, project_id: int) -> str | None:
        """The newest completed extract whose research store is on disk."""
        with self.engine.connect() as conn:
            ids = conn.execute(
                select(X.c.id)
                .where(X.c.project_id == project_id, X.c.status == "completed")
                .order_by(X.c.started.desc())
            ).scalars()
            for extract_id in ids:
                if self.extract_dir(project_id, extract_id).is_dir():
                    return extract_id
        return None

    def extract_dir(self, project_id: int, extract_id: str) -> Path:
        return self.project_dir(project_id) / "extracts" / extract_id

    def dummy_store(self, project_id: int) -> Path:
        """The store a dummy run mounts (made once per project): every table of the data model,
        random values of each column's type, nobody real. The dataset step does not read it: on
        a dummy run it makes its dataset from the definition (``carelight.sde.query.produce``);
        this is for an analysis script that reads the store itself."""
        folder = self.project_dir(project_id) / "dummy-store"
        if (folder / "research.duckdb").is_file():
            return folder
        import shutil

        tmp = folder.with_name(f".dummy-store-{threading.get_ident()}")
        shutil.rmtree(tmp, ignore_errors=True)
        _write_dummy_store(tmp, _dummy_rows(DUMMY_PEOPLE, seed=project_id))
        try:
            tmp.rename(folder)
        except OSError:  # made by another thread meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
        return folder

    # -- running -----------------------------------------------------------------------------
    def execute(self, job_id: int) -> Job:
        """Run a queued job to the end and record what happened (never raises for a job that
        fails: the failure is its record)."""
        from carelight.sde.jobs.runner import JobError, run_job

        job = self.get(job_id)
        if job.status != "queued":
            raise Conflict(f"Job {job.id} is {job.status}, not queued.")
        started = self.clock()
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(J).where(J.c.id == job.id).values(status="running", started=started)
            )
        code = self._submission(job.code_job, job.project_id)
        error, result = None, None
        try:
            if job.data == "real":
                store = self.extract_dir(job.project_id, job.extract_id or "")
                if not store.is_dir():
                    raise JobError(f"the research store of extract {job.extract_id} is missing")
            else:
                store = self.dummy_store(job.project_id)
            result = run_job(
                job_dir=self.job_dir(job), definition=code / "definition.py",
                script=code / "analysis.py", store=store, data=job.data, limits=self.limits,
                isolation=self.isolation, producer=job.producer,
            )  # fmt: skip
        except (JobError, OSError, ValueError) as exc:
            error = str(exc)[:2000]
        outputs = self._controlled_outputs(job) if result is not None else []
        return self._finish(job, result, error, outputs)

    def _controlled_outputs(self, job: Job) -> list[dict]:
        """Each output's classification and, for aggregate files, disclosure control (with
        the project's released tables, for suppression across tables)."""
        from carelight.sde.jobs.outputs import read_for_checking, read_manifest
        from carelight.sde.review.disclosure import control

        run_dir = self.run_dir(job)
        released = self.released_evidence(job.project_id)
        rows = []
        for f in read_manifest(run_dir).files:
            row = {
                "path": f.path, "kind": f.kind, "size": f.size, "sha256": f.sha256,
                "reasons": orjson.dumps(list(f.reasons)).decode(),
            }  # fmt: skip
            if f.kind == "aggregate":
                controlled = control(run_dir, f.path, read_for_checking(run_dir, f.path), released)
                row["disclosure"] = controlled.status
                row["evidence"] = orjson.dumps(controlled.evidence).decode()
                if controlled.safe is not None:
                    safe = self.safe_path(job, f.path)
                    safe.parent.mkdir(parents=True, exist_ok=True)
                    safe.write_bytes(controlled.safe)
                    row["safe_sha256"] = hashlib.sha256(controlled.safe).hexdigest()
                    row["safe_size"] = len(controlled.safe)
                    # Only outputs of real data go to the checkers; dummy outputs are for
                    # testing the code.
                    row["review"] = "pending" if job.data == "real" else None
            rows.append(row)
        return rows

    def released_evidence(self, project_id: int) -> list[dict]:
        """The evidence records of the project's released outputs (their published tables)."""
        from carelight.sde.review.tables import sde_release as R

        with self.engine.connect() as conn:
            rows = conn.execute(
                select(O.c.evidence)
                .join(R, R.c.output_id == O.c.id)
                .where(R.c.project_id == project_id, O.c.evidence.is_not(None))
            ).scalars()
            return [orjson.loads(e) for e in rows]

    def _finish(self, job: Job, result, error: str | None, outputs: list[dict]) -> Job:
        now = self.clock()
        values: dict = {"finished": now}
        if result is None:
            values |= {"status": "failed", "error": error}
        else:
            last = result.steps[-1].outcome if result.steps else None
            values |= {
                "status": result.status, "isolation": result.isolation,
                "backend": result.backend, "failed_step": result.failed_step,
                "exit_status": last.exit_code if last else None,
                "error": None if result.status == "succeeded" else (
                    f"the {result.failed_step} step failed"
                    + (f" ({last.limit_hit} limit)" if last and last.limit_hit else "")
                    + "; its log is in the job's folder"
                ),
            }  # fmt: skip
        with write_transaction(self.engine) as conn:
            for row in outputs:
                conn.execute(insert(O).values(job_id=job.id, **row))
            index = record_sde_event(
                self.trail, _system(job.username), "sde-job",
                (project_reference(job.project_id), job_reference(job.id)),
                f"job {job.id} {values['status']}: {job.data} run, isolation "
                f"{values.get('isolation') or 'none'}, {len(outputs)} output file(s), "
                f"{sum(1 for o in outputs if o['kind'] == 'row_level')} row-level kept inside",
                None, now,
            )  # fmt: skip
            conn.execute(update(J).where(J.c.id == job.id).values(**values, finish_log_index=index))
        return self.get(job.id)


def _system(username: str) -> Principal:
    """The job's own finishing entry is made by the environment on the researcher's behalf."""
    return Principal(username=username, role=Role.RESEARCHER)


# Who sees a real run's full disclosure evidence (Jobs.outputs_seen_by).
EVIDENCE_ROLES = frozenset({Role.OUTPUT_CHECKER, Role.DATA_ACCESS_COMMITTEE, Role.ADMIN})


def _outcome_only(evidence: dict) -> dict:
    policy = evidence.get("policy")
    return {
        "outcome": evidence.get("outcome"),
        "policy": {"name": policy.get("name")} if isinstance(policy, dict) else policy,
        "withheld": "The cell-level evidence of a real run is for the output checkers.",
    }


def output_of(row) -> Output:
    values = dict(row)
    values["reasons"] = tuple(orjson.loads(values["reasons"] or "[]"))
    values["evidence"] = orjson.loads(values["evidence"]) if values["evidence"] else None
    return Output(**values)


def _write_dummy_store(folder: Path, tables: dict[str, list[dict]]) -> None:
    """The store's layout (``carelight.sde.query.store``), filled through DataFrames (fast)."""
    import duckdb
    import pandas as pd

    from carelight.sde.query.store import DUCKDB_FILE, create_tables, export_parquet

    folder.mkdir(parents=True)
    con = duckdb.connect(str(folder / DUCKDB_FILE))
    try:
        create_tables(con)
        for name, rows in tables.items():
            frame = pd.DataFrame(rows, columns=list(model.table(name).names))
            con.register("dummy_rows", frame)
            con.execute(f'INSERT INTO "{name}" SELECT * FROM dummy_rows')  # names from the model
            con.unregister("dummy_rows")
        export_parquet(con, folder)
    finally:
        con.close()


def _dummy_rows(people: int, seed: int) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    ids = [f"dummy{n:06d}" for n in range(people)]
    start = dt.date(1930, 1, 1).toordinal()
    span = dt.date(2025, 12, 31).toordinal() - start

    def value(column: model.Column):
        if column.type == "date":
            return dt.date.fromordinal(start + rng.randrange(span))
        if column.type == "int":
            return rng.randrange(0, 100)
        if column.type == "float":
            return round(rng.uniform(0, 100), 2)
        if column.type == "bool":
            return rng.random() < 0.5
        if column.name == "sex":
            return rng.choice(("female", "male"))
        return f"{column.name}-{rng.randrange(10)}"

    out: dict[str, list[dict]] = {}
    for table in model.TABLES:
        n = people if table.kind == "patient" else people * 2
        rows = []
        for k in range(n):
            row = {c.name: value(c) for c in table.columns[1:]}
            row["patient_id"] = ids[k] if table.kind == "patient" else rng.choice(ids)
            if table.name == "patients":
                row["date_of_death"] = None if rng.random() < 0.9 else row["date_of_death"]
            rows.append(row)
        out[table.name] = rows
    return out


class JobQueue:
    """Runs jobs one at a time in a background (daemon) thread; :meth:`wait` is for tests and
    the CLI. The record, not the thread, is the truth: a job left ``running`` by a stopped
    server is visible as such, and a stopping server does not wait for a running job."""

    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs
        self._queue: queue.Queue[int] = queue.Queue()
        self._done: dict[int, threading.Event] = {}
        self._thread = threading.Thread(target=self._work, name="sde-jobs", daemon=True)
        self._thread.start()

    def start(self, job_id: int) -> None:
        self._done[job_id] = threading.Event()
        self._queue.put(job_id)

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id < 0:
                return
            try:
                self._run(job_id)
            finally:
                self._done[job_id].set()

    def _run(self, job_id: int) -> None:
        try:
            self.jobs.execute(job_id)
        except Exception:  # the record says failed; never log researchers' output
            import logging

            logging.getLogger("carelight.sde").exception("job %s could not be run", job_id)
            now = self.jobs.clock()
            with write_transaction(self.jobs.engine) as conn:
                conn.execute(
                    update(J)
                    .where(J.c.id == job_id, J.c.status.in_(("queued", "running")))
                    .values(status="failed", finished=now,
                            error="the environment could not run the job")
                )  # fmt: skip

    def wait(self, job_id: int, timeout: float = 300.0) -> Job:
        done = self._done.get(job_id)
        if done is not None and not done.wait(timeout):
            raise TimeoutError(f"job {job_id} did not finish within {timeout:.0f} s")
        return self.jobs.get(job_id)

    def shutdown(self) -> None:
        self._queue.put(-1)
        self._thread.join(timeout=600)
