"""Helpers for the job sandbox tests (fixtures are in conftest.py): small limits, backend
selection and a helper that runs Python code in a real sandbox.

Every test here runs real subprocesses in real namespaces. Under ``CI=true`` a missing
namespace backend fails the test instead of skipping it (``make test`` installs bubblewrap).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from care_support import skip_or_fail
from carelight.sde.jobs.capabilities import Capabilities, detect_capabilities
from carelight.sde.jobs.sandbox import (
    Limits,
    Mount,
    Outcome,
    Sandbox,
    python_executable,
    runtime_mounts,
)

STANDIN = "carelight.sde.jobs.standin:produce_dataset"
PEOPLE = 40

#: Small limits keep the suite quick; tests that hit a limit shrink the one they test.
QUICK = Limits(
    cpu_seconds=20,
    memory_bytes=1536 * 2**20,
    processes=48,
    file_size_bytes=16 * 2**20,
    wall_seconds=30,
    capture_bytes=64 * 1024,
)


def namespace_capabilities(backend: str) -> Capabilities:
    """Capabilities that select ``backend`` ("bwrap" or "unshare"), or skip/fail the test."""
    caps = detect_capabilities()
    if backend == "bwrap":
        if not caps.bwrap:
            skip_or_fail("bubblewrap unusable: " + "; ".join(caps.notes))
        return caps
    if not caps.unshare:
        skip_or_fail("unshare backend unusable: " + "; ".join(caps.notes))
    return dataclasses.replace(caps, bwrap=None)


@dataclass
class FakeHome:
    """A CARELIGHT_HOME with an operational database, keys, and another job's outputs."""

    root: Path
    secrets: dict[str, Path]  # label -> a planted file the job must not be able to read
    token: str  # the planted files' content

    @property
    def jobs(self) -> Path:
        return self.root / "sde" / "jobs"


@dataclass
class Ran:
    outcome: Outcome
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout.strip().splitlines()[-1])


def run_python(
    code: str,
    job: Path,
    *,
    limits: Limits = QUICK,
    isolation: str = "auto",
    caps: Capabilities | None = None,
    mounts: tuple[Mount, ...] = (),
) -> Ran:
    """Run ``code`` with the job's Python in a sandbox whose writable folder is ``job``
    (seen at /job). Returns the outcome and the captured output."""
    job.mkdir(parents=True, exist_ok=True)
    logs = job.parent / f"{job.name}-logs"
    logs.mkdir(exist_ok=True)
    box = Sandbox(
        [*runtime_mounts(), *mounts, Mount(job, "/job", writable=True)],
        limits,
        isolation=isolation,  # type: ignore[arg-type]
        capabilities=caps,
    )
    out = box.run(
        [python_executable(), "-I", "-c", code],
        cwd="/job",
        stdout_path=logs / "stdout",
        stderr_path=logs / "stderr",
    )
    return Ran(out, (logs / "stdout").read_text(), (logs / "stderr").read_text())
