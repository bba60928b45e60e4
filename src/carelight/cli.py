"""The ``carelight`` command line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from carelight.config import Settings

app = typer.Typer(
    help="Carelight: an open platform for health and adult social care data.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


def _store(*, mmap: bool = True):
    from carelight.fhir.store import open_store

    settings = Settings.from_env()
    settings.ensure_home()
    return open_store(settings.database_url, settings.base_url, mmap=mmap)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for every non-blank line; the loader's workers parse them."""
    with path.open("rb") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                yield n, line


def read_ndjson(path: Path) -> Iterator[tuple[str, bytes]]:
    """(``name:line``, line) for every non-blank line of one NDJSON file."""
    for n, line in _lines(path):
        yield f"{path.name}:{n}", line


def ndjson_files(directory: Path) -> list[Path]:
    files = sorted(directory.rglob("*.ndjson"))
    # Load reference targets first so a reader never sees a dangling reference mid-load.
    first = ("Organization", "Location", "Practitioner", "PractitionerRole", "Patient")

    def rank(p: Path) -> tuple[int, str]:
        stem = p.stem
        return (first.index(stem) if stem in first else len(first), str(p))

    return sorted(files, key=rank)


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def _source_of(path: Path, directory: Path) -> str | None:
    """Files in DIR/<system>/ are written in that source system's name (when they don't say)."""
    parts = path.relative_to(directory).parts
    return f"urn:carelight:source:{parts[0]}" if len(parts) > 1 else None


@app.command()
def load(
    directory: Path = typer.Argument(
        ..., exists=True, file_okay=False, help="Folder of NDJSON files, one folder per source"
    ),
    workers: int = typer.Option(0, "--workers", min=0, help="Worker processes (0: one per core)"),
    batch_size: int = typer.Option(2000, "--batch-size", min=1, help="Resources per transaction"),
):
    """Bulk-load every *.ndjson file under DIRECTORY.

    Streaming and idempotent: loading the same data again changes nothing. Every refused line
    is reported with its file, line number and reason; every valid line still loads.
    """
    store = _store(mmap=False)
    from carelight.audit.trail import log_engine, open_trail

    settings = Settings.from_env()
    # Every linkage decision the load makes is recorded in the transparency log.
    store.mpi.trail = open_trail(log_engine(settings, store.engine), settings)
    files = ndjson_files(directory)
    if not files:
        console.print(f"[red]No .ndjson files under {directory}.[/red]")
        raise typer.Exit(1)
    total = sum(_count_lines(f) for f in files)

    def items():
        for f in files:
            source = _source_of(f, directory)
            label = str(f.relative_to(directory))
            for n, line in _lines(f):
                yield f"{label}:{n}", line, source

    with Progress(
        TextColumn("Loading"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("load", total=total, rate="")
        started = time.perf_counter()

        def advance(n: int) -> None:
            progress.advance(task, n)
            done = progress.tasks[0].completed
            rate = done / max(time.perf_counter() - started, 1e-9)
            progress.update(task, rate=f"{rate:,.0f} resources/s")

        report = store.bulk_load(
            items(), progress=advance, workers=workers or None, batch_size=batch_size
        )
    seconds = time.perf_counter() - started
    console.print(
        f"{report.created:,} created, {report.updated:,} updated, {report.unchanged:,} unchanged, "
        f"{len(report.errors):,} refused — {len(files)} files in {seconds:,.1f} s "
        f"({(report.loaded + report.unchanged) / max(seconds, 1e-9):,.0f} resources/s)."
    )
    from carelight.identity.mpi.cli import after_load

    after_load(store, console)  # the first population: train the linkage model and link it
    store.mpi.trail.close()
    store.mpi.trail = None
    for label, message in report.errors[:100]:
        console.print(f"[yellow]{label}[/yellow]: {message}", highlight=False)
    if len(report.errors) > 100:
        console.print(f"... and {len(report.errors) - 100:,} more refused lines.")
    if report.errors:
        raise typer.Exit(2)


@app.command()
def synth(
    people: int = typer.Option(1000, "--people", min=1, help="How many people"),
    seed: int = typer.Option(1, "--seed", help="Random seed: the same seed gives the same bytes"),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Output folder"),
    workers: int = typer.Option(0, "--workers", min=0, help="Worker processes (0: one per core)"),
):
    """Write a synthetic population: one folder per source system, NDJSON per resource type."""
    from carelight.synth.cli import run

    run(people, seed, out, workers or None, console)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on"),
    port: int = typer.Option(8000, help="Port"),
    workers: int = typer.Option(1, help="Worker processes"),
):
    """Serve the API (FHIR at /fhir)."""
    import os

    import uvicorn

    settings = Settings.from_env()
    settings.ensure_home()
    os.environ.setdefault("CARELIGHT_BASE_URL", f"http://{host}:{port}/fhir")
    from carelight.fhir.store import open_store

    open_store(settings.database_url)  # migrate once, before workers start
    uvicorn.run(
        "carelight.server:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@app.command()
def migrate():
    """Bring the database schema up to date."""
    _store()
    console.print("Schema is up to date.")


DEMO_PEOPLE = 2000
DEMO_SEED = 1


@app.command()
def demo(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    people: int = typer.Option(DEMO_PEOPLE, help="Size of the synthetic population"),
):
    """Build and load a synthetic population (once), then serve on http://127.0.0.1:8000."""
    import json

    from carelight.examples import example_dir
    from carelight.synth.cli import run

    settings = Settings.from_env()
    settings.ensure_home()
    marker = settings.home / "demo.json"
    wanted = {"people": people, "seed": DEMO_SEED, "database_url": settings.database_url}
    if not marker.exists() or json.loads(marker.read_text()) != wanted:
        out = settings.home / f"synth-{people}-seed-{DEMO_SEED}"
        if not (out / "synth-manifest.json").exists():
            console.print(f"Building a synthetic population of {people:,} people in {out}")
            run(people, DEMO_SEED, out, None, console)
        load(example_dir(), workers=0, batch_size=2000)
        load(out, workers=0, batch_size=2000)
        marker.write_text(json.dumps(wanted))
    else:
        console.print("The demo population is already loaded.")
    # The demo accounts (idempotent: an existing account is left as it is).
    from carelight.access.accounts import AccountStore
    from carelight.access.demo import seed_demo

    store = _store()
    seeded = seed_demo(AccountStore(store.engine), store)
    store.engine.dispose()
    console.print(
        f"Demo accounts ready ({len(seeded)}): gp, nurse, socialworker, carehome, researcher, "
        "checker1, checker2, dac, analyst, admin, dataquality, source-gp, source-trust, "
        "source-council and "
        "patients by NHS number; password carelight-demo (docs/access.md)."
    )
    console.print(f"Serving Carelight on http://{host}:{port}/fhir (metadata: /fhir/metadata)")
    serve(host=host, port=port, workers=1)


def _register_subcommands() -> None:
    from carelight.access.cli import token, users_app
    from carelight.audit.cli import app as audit_app
    from carelight.identity.mpi.cli import app as mpi_app
    from carelight.sde.cli import app as sde_app

    app.add_typer(users_app, name="users")
    app.add_typer(audit_app, name="audit")
    app.add_typer(mpi_app, name="mpi")
    app.add_typer(sde_app, name="sde")
    app.command("token")(token)


_register_subcommands()

if __name__ == "__main__":
    app()
