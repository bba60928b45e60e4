"""The seam between jobs and automatic disclosure control (``carelight.sde.disclosure``):
:func:`control` gives the safe version of one aggregate output and its evidence record.

The output's bytes come from the runner's one read path (``read_for_checking``: aggregate
files only, hash re-checked, no symlinks) and are copied, with the outputs API's sidecar if
the job wrote one, into the run's own ``checking/`` folder, where ``check_output`` runs with
the environment's policy (``CARELIGHT_SDC_POLICY``, default nhs-england) and the project's
already released tables (so no redacted cell can be recovered from another release).

Outcomes: ``pass`` → passed, ``pass-with-changes`` → modified (the safe version is redacted,
rounded, totals recomputed), ``needs-review`` → review (a document or image: no automatic
rule applies; the checkers read it as written), ``fail`` → blocked (never checked, never
released). The evidence names rules and cells by their labels, never unpublished values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

STATUS = {
    "pass": "passed",
    "pass-with-changes": "modified",
    "needs-review": "review",
    "fail": "blocked",
}


@dataclass(frozen=True)
class Controlled:
    status: str  # passed | modified | review | blocked
    safe: bytes | None  # what checkers see and researchers may receive; None if blocked
    evidence: dict = field(default_factory=dict)


def control(run_dir: Path, name: str, data: bytes, released: list[dict]) -> Controlled:
    """Disclosure control of the aggregate output ``name`` (its verified bytes ``data``)."""
    from carelight.sde.disclosure import check_output
    from carelight.sde.disclosure.metadata import SUFFIX
    from carelight.sde.jobs.outputs import OutputRefused, read_for_checking

    rel = PurePosixPath(name)
    scratch = run_dir / "checking"
    target = scratch / "files" / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    try:
        sidecar = read_for_checking(run_dir, name + SUFFIX)
    except (OutputRefused, FileNotFoundError):
        sidecar = None
    if sidecar is not None:
        target.with_name(target.name + SUFFIX).write_bytes(sidecar)
    result = check_output(target, released=released, out_dir=scratch / "checked" / rel.parent)
    evidence = result.evidence.to_dict()
    status = STATUS[result.outcome]
    if status == "blocked":
        return Controlled(status, None, evidence)
    safe = result.safe_path.read_bytes() if result.safe_path is not None else data
    return Controlled(status, safe, evidence)
