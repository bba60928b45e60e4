"""A stand-in dataset producer, until the query language is wired in (see :mod:`.dataset`).

Not the query language: a definition here is a Python file that sets ``TABLE`` (a table of
the research store) and optionally ``COLUMNS`` (default: all). The producer runs the file
(inside the sandbox, like any definition), reads ``parquet/<TABLE>.parquet`` from the store
with DuckDB and writes those columns as CSV. It exists so the runner and its tests can run a
real dataset step; the lead replaces ``DEFAULT_PRODUCER`` users with the query language.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import duckdb


def produce_dataset(definition_path: Path, store_dir: Path, out_path: Path) -> None:
    names = runpy.run_path(str(definition_path))
    table = names.get("TABLE")
    if not isinstance(table, str) or not table.isidentifier():
        raise ValueError("the definition must set TABLE to a table name, e.g. TABLE = 'patients'")
    columns = names.get("COLUMNS")
    source = store_dir / "parquet" / f"{table}.parquet"
    if not source.is_file():
        raise FileNotFoundError(f"the research store has no table {table!r}")
    con = duckdb.connect(config={"threads": 1})
    rel = con.read_parquet(str(source))
    if columns:
        if not all(isinstance(c, str) and c.isidentifier() for c in columns):
            raise ValueError("COLUMNS must be a list of column names")
        rel = rel.select(*columns)
    rel.write_csv(str(out_path), header=True)
