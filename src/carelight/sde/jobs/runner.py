"""Run a job: freeze its code, run the dataset step and the analysis in the sandbox, classify
what it wrote, and return a result record.

A job folder holds::

    job.json                 the frozen code's hashes and each run's status (the runner's state)
    code/definition.py       the dataset definition, frozen (read-only)
    code/analysis.py         the analysis script, frozen (read-only)
    runs/dummy/              a run on dummy data, then runs/real/ the run on real data:
        dataset/dataset.csv  the dataset the definition produced
        outputs/             what the analysis wrote (its working directory)
        logs/                stdout and stderr of each step (capped)
        manifest.json        the classification of outputs/ (see .outputs)
        result.json          the JobResult

The first run freezes the code and records the SHA-256 of both files; every later run of the
job must bring byte-identical code (else :class:`CodeChangedError`) and runs the frozen copy.
A real run is refused (:class:`RealRunRefused`) unless a dummy run of the same hashes
succeeded. The job sees only ``/job/code`` (read-only), ``/job/dataset``, ``/job/outputs``
and ``/store``; ``job.json``, the logs and the other runs are outside its view.

Output of researchers' code (stdout, stderr, files) is written only inside the job folder and
never logged.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from carelight.config import Settings
from carelight.sde.jobs.capabilities import Backend, Isolation, detect_capabilities
from carelight.sde.jobs.dataset import DATASET_FILENAME, DEFAULT_PRODUCER, check_producer_name
from carelight.sde.jobs.outputs import Manifest, OutputRules, classify_outputs, write_manifest
from carelight.sde.jobs.sandbox import (
    IsolationRequest,
    Limits,
    Mount,
    Outcome,
    Sandbox,
    python_executable,
    runtime_mounts,
)

DataKind = Literal["dummy", "real"]
Status = Literal["succeeded", "failed"]
DATA_KINDS: tuple[DataKind, ...] = ("dummy", "real")

JOB_STATE = "job.json"
DEFINITION = "definition.py"
SCRIPT = "analysis.py"

# Where the job sees things (fixed, so researchers' code can rely on them; also in env vars).
IN_CODE = "/job/code"
IN_DATASET = "/job/dataset"
IN_OUTPUTS = "/job/outputs"
IN_STORE = "/store"


class JobError(Exception):
    """A job cannot run as asked; the message says why and what to do."""


class CodeChangedError(JobError):
    pass


class RealRunRefused(JobError):
    pass


class JobBusy(JobError):
    pass


@dataclass(frozen=True)
class StepResult:
    name: Literal["dataset", "analysis"]
    outcome: Outcome
    stdout_log: str  # relative to the run folder
    stderr_log: str


@dataclass(frozen=True)
class OutputSummary:
    path: str
    kind: str
    size: int
    sha256: str | None


@dataclass(frozen=True)
class JobResult:
    """The record of one run of a job, as stored in ``result.json``."""

    job_dir: str
    data: DataKind
    status: Status
    failed_step: str | None
    isolation: Isolation  # "fallback" means no namespaces: see docs/sde-jobs.md
    backend: Backend
    definition_sha256: str
    script_sha256: str
    producer: str
    store: str  # the research store folder mounted at /store (a dummy store for dummy runs)
    started_at: str
    finished_at: str
    steps: tuple[StepResult, ...]
    outputs: tuple[OutputSummary, ...]
    isolation_notes: tuple[str, ...]

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _read_state(job_dir: Path) -> dict | None:
    path = job_dir / JOB_STATE
    return json.loads(path.read_text()) if path.is_file() else None


def _write_state(job_dir: Path, state: dict) -> None:
    tmp = job_dir / f".{JOB_STATE}.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(job_dir / JOB_STATE)


@contextlib.contextmanager
def _locked(job_dir: Path) -> Iterator[None]:
    with open(job_dir / ".lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JobBusy(f"job {job_dir} is already running; wait for it to finish") from None
        yield


def _freeze(job_dir: Path, definition: Path, script: Path, data: DataKind) -> dict:
    """Freeze the code on the first run; afterwards check the same code was submitted."""
    def_bytes, script_bytes = definition.read_bytes(), script.read_bytes()
    hashes = {
        "definition_sha256": hashlib.sha256(def_bytes).hexdigest(),
        "script_sha256": hashlib.sha256(script_bytes).hexdigest(),
    }
    state = _read_state(job_dir)
    if state is None:
        if data == "real":
            raise RealRunRefused(
                "no dummy run of this code: run the job on dummy data first (data='dummy')"
            )
        code = job_dir / "code"
        tmp = job_dir / ".code.tmp"
        for leftover in (tmp, code):  # from a runner that died before job.json was written
            if leftover.exists():
                leftover.chmod(0o755)
                shutil.rmtree(leftover)
        tmp.mkdir()
        (tmp / DEFINITION).write_bytes(def_bytes)
        (tmp / SCRIPT).write_bytes(script_bytes)
        for f in tmp.iterdir():
            f.chmod(0o444)
        tmp.chmod(0o555)
        tmp.rename(code)
        state = {**hashes, "frozen_at": _now(), "runs": {}}
        _write_state(job_dir, state)
        return state
    frozen = {k: state[k] for k in hashes}
    if frozen != hashes:
        changed = [k.removesuffix("_sha256") for k in hashes if hashes[k] != frozen[k]]
        raise CodeChangedError(
            f"the {' and '.join(changed)} differ(s) from the code frozen for this job "
            f"(definition {frozen['definition_sha256'][:12]}…, script "
            f"{frozen['script_sha256'][:12]}…): submit changed code as a new job"
        )
    # The frozen copy is what runs; check it was not altered on disk either.
    code = job_dir / "code"
    on_disk = {
        "definition_sha256": sha256_file(code / DEFINITION),
        "script_sha256": sha256_file(code / SCRIPT),
    }
    if on_disk != hashes:
        raise CodeChangedError(f"the frozen code in {code} was modified; the job is void")
    return state


def _check_home_not_exposed(job_dir: Path, store: Path) -> None:
    """Refuse a layout in which a read-only mount would show CARELIGHT_HOME to the job (a
    runtime or the store that contains the operational database and keys)."""
    home = Settings.from_env().home
    for m in (*runtime_mounts(), Mount(store, IN_STORE)):
        if home == m.source or home.is_relative_to(m.source):
            raise ValueError(
                f"CARELIGHT_HOME ({home}) is inside {m.source}, which jobs see: move it out"
            )


def _check_real_allowed(state: dict) -> None:
    dummy = state["runs"].get("dummy")
    if not dummy or dummy.get("status") != "succeeded":
        raise RealRunRefused(
            "a real run needs a successful dummy run of the same code first "
            f"(dummy run: {dummy.get('status') if dummy else 'none'})"
        )
    if (dummy["definition_sha256"], dummy["script_sha256"]) != (
        state["definition_sha256"],
        state["script_sha256"],
    ):
        raise RealRunRefused("the successful dummy run was of different code")
    real = state["runs"].get("real")
    if real and real.get("status") == "succeeded":
        raise RealRunRefused("this job already ran on real data; submit a new job to run again")


def run_job(
    *,
    job_dir: Path,
    definition: Path,
    script: Path,
    store: Path,
    data: DataKind,
    limits: Limits | None = None,
    isolation: IsolationRequest = "auto",
    producer: str = DEFAULT_PRODUCER,
    rules: OutputRules | None = None,
) -> JobResult:
    """Run the job in ``job_dir`` on ``data`` ("dummy" or "real") with ``store`` mounted
    read-only, and return its result (also written to ``runs/<data>/result.json``).

    ``definition`` and ``script`` are the submitted files: frozen on the first run, compared
    with the frozen copy on later ones. ``isolation="namespaces"`` refuses to run without
    them; ``"fallback"`` forces the weaker mode (tests); ``"auto"`` picks the best, flagged
    in the result. Raises :class:`JobError` subclasses when the run is refused.
    """
    if data not in DATA_KINDS:
        raise ValueError(f"data must be 'dummy' or 'real', not {data!r}")
    check_producer_name(producer)
    for label, path in (("definition", definition), ("script", script)):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{label} file not found: {path}")
    store = Path(store).resolve()
    if not store.is_dir():
        raise FileNotFoundError(f"research store folder not found: {store}")
    limits = limits or Limits()
    job_dir = Path(job_dir).resolve()
    job_dir.mkdir(parents=True, exist_ok=True)
    if store == job_dir or store.is_relative_to(job_dir) or job_dir.is_relative_to(store):
        raise ValueError("the job folder and the research store must not contain each other")
    _check_home_not_exposed(job_dir, store)

    with _locked(job_dir):
        state = _freeze(job_dir, Path(definition), Path(script), data)
        if data == "real":
            _check_real_allowed(state)
        result = _run(job_dir, state, store, data, limits, isolation, producer, rules)
        state["runs"][data] = {
            "status": result.status,
            "definition_sha256": result.definition_sha256,
            "script_sha256": result.script_sha256,
            "isolation": result.isolation,
            "store": result.store,
            "finished_at": result.finished_at,
        }
        _write_state(job_dir, state)
        return result


def _run(
    job_dir: Path,
    state: dict,
    store: Path,
    data: DataKind,
    limits: Limits,
    isolation: IsolationRequest,
    producer: str,
    rules: OutputRules | None,
) -> JobResult:
    started_at = _now()
    run_dir = job_dir / "runs" / data
    if run_dir.exists():  # a rerun (never of a succeeded real run): keep the attempt
        n = 1
        while (previous := run_dir.with_name(f"{data}.attempt-{n}")).exists():
            n += 1
        run_dir.rename(previous)
    dataset_dir, outputs_dir, logs_dir = run_dir / "dataset", run_dir / "outputs", run_dir / "logs"
    for d in (dataset_dir, outputs_dir, logs_dir):
        d.mkdir(parents=True)
    code = Mount(job_dir / "code", IN_CODE)
    store_mount = Mount(store, IN_STORE)
    python = python_executable()
    env = {"CARELIGHT_DATA": data}

    steps: list[StepResult] = []
    dataset_box = Sandbox(
        [*runtime_mounts(), code, store_mount, Mount(dataset_dir, IN_DATASET, writable=True)],
        limits,
        isolation=isolation,
    )
    p = dataset_box.path
    env = {**env, "CARELIGHT_STORE": p(IN_STORE)}
    argv = [python, "-I", "-m", "carelight.sde.jobs.dataset", producer]
    argv += [p(f"{IN_CODE}/{DEFINITION}"), p(IN_STORE), p(f"{IN_DATASET}/{DATASET_FILENAME}")]
    steps.append(_step("dataset", dataset_box, argv, IN_DATASET, env, run_dir))

    if steps[-1].outcome.ok:
        box = Sandbox(
            [
                *runtime_mounts(),
                code,
                store_mount,
                Mount(dataset_dir, IN_DATASET),
                Mount(outputs_dir, IN_OUTPUTS, writable=True),
            ],
            limits,
            isolation=isolation,
        )
        p = box.path
        analysis_env = {
            **env,
            "CARELIGHT_STORE": p(IN_STORE),
            "CARELIGHT_DATASET": p(f"{IN_DATASET}/{DATASET_FILENAME}"),
            "CARELIGHT_OUTPUTS": p(IN_OUTPUTS),
        }
        argv = [python, "-I", p(f"{IN_CODE}/{SCRIPT}")]
        steps.append(_step("analysis", box, argv, IN_OUTPUTS, analysis_env, run_dir))

    manifest = classify_outputs(
        outputs_dir, dataset_path=dataset_dir / DATASET_FILENAME, store_dir=store, rules=rules
    )
    write_manifest(run_dir, manifest)
    failed = next((s.name for s in steps if not s.outcome.ok), None)
    outcome = steps[-1].outcome
    result = JobResult(
        job_dir=str(job_dir),
        data=data,
        status="failed" if failed else "succeeded",
        failed_step=failed,
        isolation=outcome.isolation,
        backend=outcome.backend,
        definition_sha256=state["definition_sha256"],
        script_sha256=state["script_sha256"],
        producer=producer,
        store=str(store),
        started_at=started_at,
        finished_at=_now(),
        steps=tuple(steps),
        outputs=_summary(manifest),
        isolation_notes=detect_capabilities().notes
        + (
            ("fallback: no network, filesystem or PID isolation",)
            if outcome.isolation == "fallback"
            else ()
        ),
    )
    (run_dir / "result.json").write_text(result.to_json())
    return result


def _summary(manifest: Manifest) -> tuple[OutputSummary, ...]:
    return tuple(OutputSummary(f.path, f.kind, f.size, f.sha256) for f in manifest.files)


def _step(
    name: Literal["dataset", "analysis"],
    box: Sandbox,
    argv: list[str],
    cwd: str,
    env: dict[str, str],
    run_dir: Path,
) -> StepResult:
    out, err = Path("logs", f"{name}.stdout"), Path("logs", f"{name}.stderr")
    outcome = box.run(argv, cwd=cwd, env=env, stdout_path=run_dir / out, stderr_path=run_dir / err)
    return StepResult(name, outcome, str(out), str(err))


def load_result(job_dir: Path, data: DataKind) -> dict:
    """The stored result of a run, as a dict (``result.json``)."""
    path = Path(job_dir) / "runs" / data / "result.json"
    if not path.is_file():
        raise FileNotFoundError(f"no {data} run recorded in {job_dir}")
    return json.loads(path.read_text())


def job_state(job_dir: Path) -> dict | None:
    """The job's frozen hashes and runs (``job.json``), or None for a new folder."""
    return _read_state(Path(job_dir))
