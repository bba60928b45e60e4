"""The ``carelight`` command line."""

from __future__ import annotations

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


def _store():
    from carelight.fhir.store import open_store

    settings = Settings.from_env()
    settings.ensure_home()
    return open_store(settings.database_url, settings.base_url)


def read_ndjson(path: Path) -> Iterator[tuple[str, bytes]]:
    """(label, line) for every non-blank line; the loader's workers parse and validate them."""
    with path.open("rb") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                yield f"{path.name}:{n}", line


def ndjson_files(directory: Path) -> list[Path]:
    files = sorted(directory.rglob("*.ndjson"))
    # Load reference targets first so a reader never sees a dangling reference mid-load.
    first = ("Organization", "Location", "Practitioner", "PractitionerRole", "Patient")

    def rank(p: Path) -> tuple[int, str]:
        stem = p.stem
        return (first.index(stem) if stem in first else len(first), str(p))

    return sorted(files, key=rank)


@app.command()
def load(
    directory: Path = typer.Argument(
        ..., exists=True, file_okay=False, help="Folder of NDJSON files"
    ),
):
    """Bulk-load every *.ndjson file under DIRECTORY (idempotent; bad lines are reported)."""
    store = _store()
    files = ndjson_files(directory)
    if not files:
        console.print(f"[red]No .ndjson files under {directory}.[/red]")
        raise typer.Exit(1)
    total_lines = sum(sum(1 for line in f.open("rb") if line.strip()) for f in files)
    loaded = unchanged = 0
    errors: list[tuple[object, str]] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("Loading", total=total_lines)
        for f in files:
            progress.update(task, description=f"Loading {f.relative_to(directory)}")
            report = store.bulk_load(read_ndjson(f), progress=lambda n: progress.advance(task, n))
            loaded += report.loaded
            unchanged += report.unchanged
            errors += report.errors
    console.print(f"Loaded {loaded} resources ({unchanged} unchanged) from {len(files)} files.")
    for label, message in errors[:50]:
        console.print(f"[yellow]{label}[/yellow]: {message}")
    if len(errors) > 50:
        console.print(f"... and {len(errors) - 50} more errors.")
    if errors:
        console.print(f"[red]{len(errors)} lines were not loaded.[/red]")
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


@app.command()
def demo(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
):
    """Load the example data set and serve on http://127.0.0.1:8000."""
    from carelight.examples import example_dir

    load(example_dir())
    console.print(f"Serving Carelight on http://{host}:{port}/fhir (metadata: /fhir/metadata)")
    serve(host=host, port=port, workers=1)


if __name__ == "__main__":
    app()
