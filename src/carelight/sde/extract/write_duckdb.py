"""The DuckDB engine: the research tables into ``research.duckdb`` and ``parquet/<table>.parquet``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from carelight.sde import model
from carelight.sde.extract.build import create_table_sql, table_query
from carelight.sde.extract.staging import DUCKDB_MEMORY


def write_duckdb(
    staging: Path, folder: Path, tables: list[str], progress: Callable | None = None
) -> dict[str, int]:
    """Build each table from staging; return the rows written per table."""
    (folder / "parquet").mkdir(parents=True, exist_ok=True)
    db = duckdb.connect(str(folder / "research.duckdb"))
    rows: dict[str, int] = {}
    try:
        db.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
        db.execute(f"ATTACH '{staging}' AS staging (READ_ONLY)")
        db.execute("SET search_path = 'main,staging'")
        ordered = ["patients", *(t for t in tables if t != "patients")]
        for i, name in enumerate(ordered):
            if progress is not None:
                progress(i, len(ordered), f"Writing {name}")
            db.execute(create_table_sql(name))
            db.execute(f"INSERT INTO main.{name} {table_query(name, 'duckdb', 'main.patients')}")
            rows[name] = db.execute(f"SELECT count(*) FROM main.{name}").fetchone()[0]
            target = folder / "parquet" / f"{name}.parquet"
            db.execute(f"COPY main.{name} TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
        db.execute("DETACH staging")
    finally:
        db.close()
    if progress is not None:
        progress(len(tables), len(tables), "Written")
    return rows


def complete_layout(folder: Path, tables: list[str]) -> None:
    """Add every research table the project was not given, empty, to ``research.duckdb`` (if
    the engine wrote one) and as Parquet: the store always has the research data model's full
    layout (``carelight.sde.query.store``), so a definition that names a table the project was
    not approved for sees no rows instead of failing, and nothing of it is ever extracted."""
    missing = [t.name for t in model.TABLES if t.name not in tables]
    if not missing:
        return
    path = folder / "research.duckdb"
    db = duckdb.connect(str(path)) if path.exists() else duckdb.connect()
    try:
        for name in missing:
            db.execute(create_table_sql(name))
            target = folder / "parquet" / f"{name}.parquet"
            db.execute(f"COPY main.{name} TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
    finally:
        db.close()
