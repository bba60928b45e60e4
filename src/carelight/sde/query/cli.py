"""``carelight sde run`` and ``carelight sde sql``: run a dataset definition, or show its SQL.

The lead wires ``app`` into ``carelight sde``. Row-level output stays where it is written;
the command prints only counts, never rows.
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path

import typer

app = typer.Typer(help="Run dataset definitions written in Carelight's query language.")


class EngineName(StrEnum):
    duckdb = "duckdb"
    spark = "spark"
    memory = "memory"


class Dialect(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


@app.command("run")
def run_command(
    definition: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Definition file (.py)"
    ),
    store: Path = typer.Option(..., "--store", file_okay=False, help="Research store folder"),
    engine: EngineName = typer.Option(EngineName.duckdb, "--engine", help="Query engine"),
    output: Path = typer.Option(..., "--output", help="Output file: .csv or .parquet"),
    measures: bool = typer.Option(False, "--measures", help="Write the measures, not the dataset"),
) -> None:
    """Run DEFINITION on the research store and write its rows to OUTPUT."""
    from carelight.sde.query.definitions import DefinitionError, load_definition
    from carelight.sde.query.run import open_engine, run_dataset, run_measures, write_rows
    from carelight.sde.query.store import StoreError

    if output.suffix not in (".csv", ".parquet"):
        typer.echo(f"--output must end in .csv or .parquet, not {output.name!r}", err=True)
        raise typer.Exit(2)
    try:
        loaded = load_definition(definition)
    except DefinitionError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    if measures and not loaded.measures:
        typer.echo(f"error: {definition.name} defines no measures", err=True)
        raise typer.Exit(1)
    if not measures and loaded.dataset is None:
        typer.echo(f"error: {definition.name} defines no dataset (use --measures?)", err=True)
        raise typer.Exit(1)
    started = time.perf_counter()
    try:
        runner = open_engine(engine.value, store)
    except StoreError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    try:
        columns, rows = (run_measures if measures else run_dataset)(loaded, runner)
    finally:
        runner.close()
    write_rows(rows, columns, output)
    seconds = time.perf_counter() - started
    what = "measure rows" if measures else "patients"
    typer.echo(f"{len(rows)} {what} written to {output} ({engine.value}, {seconds:.2f} s)")


@app.command("sql")
def sql_command(
    definition: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="Definition file (.py)"
    ),
    dialect: Dialect = typer.Option(Dialect.duckdb, "--dialect", help="SQL dialect"),
) -> None:
    """Print the SQL DEFINITION's dataset compiles to (for review; nothing is run)."""
    from carelight.sde.query.definitions import DefinitionError, load_definition
    from carelight.sde.query.engines.duckdb import DuckDBCompiler
    from carelight.sde.query.engines.spark import SparkCompiler

    try:
        loaded = load_definition(definition)
    except DefinitionError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    if loaded.dataset is None:
        typer.echo(f"error: {definition.name} defines no dataset", err=True)
        raise typer.Exit(1)
    compiler = DuckDBCompiler() if dialect is Dialect.duckdb else SparkCompiler()
    typer.echo(compiler.sql(loaded.dataset, pretty=True))
