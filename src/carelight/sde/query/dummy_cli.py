"""``carelight sde run-dummy``: a definition's output on dummy data, for writing code outside."""

from __future__ import annotations

import time
from pathlib import Path

import typer


def run_dummy_command(
    definition: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Definition file (.py)"
    ),
    output: Path = typer.Option(..., "--output", help="Output file: .csv or .parquet"),
    size: int = typer.Option(
        None, "--size", min=1, help="Patients (default: the definition's, else 100)"
    ),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives the same data"),
    store_out: Path = typer.Option(
        None, "--store-out", file_okay=False, help="Also write the dummy tables as a store here"
    ),
    measures: bool = typer.Option(False, "--measures", help="Write the measures, not the dataset"),
) -> None:
    """Run DEFINITION on dummy data made from it, and write its rows to OUTPUT."""
    from carelight.sde.query.definitions import DefinitionError
    from carelight.sde.query.dummy import DummyDataError, run_dummy
    from carelight.sde.query.store import StoreError

    if output.suffix not in (".csv", ".parquet"):
        typer.echo(f"--output must end in .csv or .parquet, not {output.name!r}", err=True)
        raise typer.Exit(2)
    started = time.perf_counter()
    try:
        patients, rows = run_dummy(
            definition, output, size=size, seed=seed, store_out=store_out, measures=measures
        )
    except (DefinitionError, DummyDataError, StoreError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    seconds = time.perf_counter() - started
    typer.echo(
        f"{patients} dummy patients; {rows} rows written to {output} ({seconds:.2f} s)"
        + (f"; dummy store in {store_out}" if store_out else "")
    )
