"""``carelight sde sandbox …``: run a job in the sandbox and show what isolation this machine has.

The lead wires :data:`app` into ``carelight sde`` (``sde_app.add_typer(app, name="jobs")``).
Output is the result record as JSON (never the job's own output, which stays in its folder).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from carelight.sde.jobs.capabilities import detect_capabilities
from carelight.sde.jobs.dataset import DEFAULT_PRODUCER
from carelight.sde.jobs.runner import JobError, run_job
from carelight.sde.jobs.sandbox import Limits, SandboxUnavailable

app = typer.Typer(
    help="Run researchers' jobs in the sandbox (see docs/sde-jobs.md).",
    no_args_is_help=True,
)


@app.command("run")
def run(
    script: Path = typer.Argument(..., exists=True, dir_okay=False, help="The analysis script"),
    definition: Path = typer.Option(
        ..., "--definition", exists=True, dir_okay=False, help="The dataset definition"
    ),
    store: Path = typer.Option(
        ..., "--store", exists=True, file_okay=False, help="Research store folder (read-only)"
    ),
    data: str = typer.Option(..., "--data", help="dummy or real (real needs a dummy run first)"),
    job_dir: Path = typer.Option(..., "--job-dir", file_okay=False, help="The job's folder"),
    isolation: str = typer.Option(
        "auto", "--isolation", help="auto, namespaces (refuse without) or fallback"
    ),
    producer: str = typer.Option(
        DEFAULT_PRODUCER, "--producer", help="Dataset producer, module:function"
    ),
    cpu_seconds: int = typer.Option(Limits.cpu_seconds, min=1, help="CPU time limit"),
    memory_mb: int = typer.Option(Limits.memory_bytes // 2**20, min=64, help="Memory limit"),
    wall_seconds: float = typer.Option(Limits.wall_seconds, min=1, help="Wall-clock limit"),
) -> None:
    """Run SCRIPT on the dataset DEFINITION produces, inside the sandbox; print the result."""
    if data not in ("dummy", "real"):
        typer.echo(f"error: --data must be dummy or real, not {data!r}", err=True)
        raise typer.Exit(2)
    if isolation not in ("auto", "namespaces", "fallback"):
        typer.echo("error: --isolation must be auto, namespaces or fallback", err=True)
        raise typer.Exit(2)
    limits = Limits(
        cpu_seconds=cpu_seconds, memory_bytes=memory_mb * 2**20, wall_seconds=wall_seconds
    )
    try:
        result = run_job(
            job_dir=job_dir,
            definition=definition,
            script=script,
            store=store,
            data=data,  # type: ignore[arg-type]
            limits=limits,
            isolation=isolation,  # type: ignore[arg-type]
            producer=producer,
        )
    except (JobError, SandboxUnavailable, ValueError) as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(3) from None
    if result.isolation == "fallback":
        typer.echo(
            "WARNING: ran without namespaces (fallback): no network or filesystem isolation",
            err=True,
        )
    typer.echo(result.to_json(), nl=False)
    raise typer.Exit(0 if result.status == "succeeded" else 1)


@app.command("capabilities")
def capabilities() -> None:
    """Show which isolation this machine gives jobs (bubblewrap, unshare or the fallback)."""
    typer.echo(json.dumps(detect_capabilities().to_dict(), indent=2))


if __name__ == "__main__":
    app()
