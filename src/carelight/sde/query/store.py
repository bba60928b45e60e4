"""Opening the research store for each engine, and writing a small one (tests, examples).

The layout (the extract writes it, the engines read it): a folder holding ``research.duckdb``
with one table per ``carelight.sde.model.TABLES`` entry (same names and columns; DuckDB types
VARCHAR, BIGINT, DOUBLE, DATE, BOOLEAN) and ``parquet/<table>.parquet`` with the same data.
DuckDB reads the ``.duckdb`` file read-only; Spark reads the Parquet files; the in-memory
engine takes rows read from the DuckDB file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from carelight.sde import model

DUCKDB_FILE = "research.duckdb"
PARQUET_DIR = "parquet"
SQL_TYPES = {
    "str": "VARCHAR",
    "int": "BIGINT",
    "float": "DOUBLE",
    "date": "DATE",
    "bool": "BOOLEAN",
}


class StoreError(RuntimeError):
    """A research store folder that is missing or not in the expected layout."""


def duckdb_path(folder: str | Path) -> Path:
    path = Path(folder) / DUCKDB_FILE
    if not path.is_file():
        raise StoreError(f"{folder} is not a research store: it has no {DUCKDB_FILE}")
    return path


def parquet_paths(folder: str | Path) -> dict[str, Path]:
    """table name → its Parquet file, checking every table is there."""
    base = Path(folder) / PARQUET_DIR
    paths = {t.name: base / f"{t.name}.parquet" for t in model.TABLES}
    missing = [name for name, p in paths.items() if not p.exists()]
    if missing:
        raise StoreError(f"{folder} has no Parquet file for: {', '.join(missing)}")
    return paths


def connect_duckdb(folder: str | Path):
    """A read-only DuckDB connection to the store, checking every table is there."""
    import duckdb

    con = duckdb.connect(str(duckdb_path(folder)), read_only=True)
    present = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    missing = [t.name for t in model.TABLES if t.name not in present]
    if missing:
        con.close()
        raise StoreError(f"{folder}/{DUCKDB_FILE} has no table for: {', '.join(missing)}")
    return con


def read_rows(folder: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows as dicts (for the in-memory engine; fine for small stores)."""
    con = connect_duckdb(folder)
    try:
        out = {}
        for t in model.TABLES:
            cols = ", ".join(f'"{c}"' for c in t.names)
            cur = con.execute(f'SELECT {cols} FROM "{t.name}"')  # names from the model, not input
            out[t.name] = [dict(zip(t.names, r, strict=True)) for r in cur.fetchall()]
        return out
    finally:
        con.close()


def create_tables(con) -> None:
    """Create every research table (empty) on a DuckDB connection."""
    for t in model.TABLES:
        columns = ", ".join(f'"{c.name}" {SQL_TYPES[c.type]}' for c in t.columns)
        con.execute(f'CREATE TABLE "{t.name}" ({columns})')


def export_parquet(con, folder: str | Path) -> None:
    """Write each table of ``con`` to ``folder/parquet/<table>.parquet``."""
    base = Path(folder) / PARQUET_DIR
    base.mkdir(parents=True, exist_ok=True)
    for t in model.TABLES:
        target = str(base / f"{t.name}.parquet").replace("'", "''")
        con.execute(f"COPY \"{t.name}\" TO '{target}' (FORMAT parquet)")


def write_store(folder: str | Path, tables: Mapping[str, Iterable[Mapping[str, Any]]]) -> Path:
    """Write rows (table → dicts) as a research store in ``folder``; other tables empty."""
    import duckdb

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DUCKDB_FILE
    if path.exists():
        raise StoreError(f"{path} already exists: write a store into an empty folder")
    con = duckdb.connect(str(path))
    try:
        create_tables(con)
        for name, rows in tables.items():
            t = model.table(name)
            values = [tuple(row.get(c) for c in t.names) for row in rows]
            for row in rows:
                extra = set(row) - set(t.names)
                if extra:
                    raise StoreError(f"table {name!r} has no column(s) {sorted(extra)}")
            if values:
                marks = ", ".join("?" for _ in t.names)
                con.executemany(f'INSERT INTO "{name}" VALUES ({marks})', values)
        export_parquet(con, folder)
    finally:
        con.close()
    return folder
