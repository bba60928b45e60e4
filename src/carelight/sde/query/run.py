"""Running a definition on an engine, and writing its rows as CSV or Parquet.

engine = open_engine("duckdb", "path/to/store")
rows = run_dataset(load_definition("study.py"), engine)
write_rows(rows, columns, "output/dataset.csv")
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from carelight.sde.query.definitions import Definition
from carelight.sde.query.engines import ENGINES
from carelight.sde.query.engines.base import Engine, measure_columns


def open_engine(name: str, store: str | Path, **options: Any) -> Engine:
    """An engine over a research store folder: ``memory``, ``duckdb`` or ``spark``."""
    if name == "duckdb":
        from carelight.sde.query.engines.duckdb import DuckDBEngine

        return DuckDBEngine(store)
    if name == "spark":
        from carelight.sde.query.engines.spark import SparkEngine

        return SparkEngine(store, **options)
    if name == "memory":
        from carelight.sde.query.engines.inmemory import InMemoryEngine
        from carelight.sde.query.store import read_rows

        return InMemoryEngine(read_rows(store))
    raise ValueError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")


def run_dataset(definition: Definition, engine: Engine) -> tuple[tuple[str, ...], list[dict]]:
    """The dataset's column names and rows (one per patient, ordered by patient_id)."""
    if definition.dataset is None:
        raise ValueError(f"{definition.path.name} defines no dataset")
    return definition.dataset.column_names, engine.get_rows(definition.dataset)


def run_measures(definition: Definition, engine: Engine) -> tuple[tuple[str, ...], list[dict]]:
    """The measures' column names and rows (measure, interval, groups, counts, ratio)."""
    if not definition.measures:
        raise ValueError(f"{definition.path.name} defines no measures")
    return measure_columns(definition.measures), engine.get_measure_rows(definition.measures)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def write_rows(rows: Sequence[dict], columns: Sequence[str], path: str | Path) -> Path:
    """Write rows to ``path``: CSV for ``.csv``, Parquet for ``.parquet``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_csv_value(row[c]) for c in columns])
    elif path.suffix == ".parquet":
        _write_parquet(rows, columns, path)
    else:
        raise ValueError(f"write to a .csv or .parquet file, not {path.name!r}")
    return path


def _write_parquet(rows: Sequence[dict], columns: Sequence[str], path: Path) -> None:
    """Parquet through DuckDB (no pyarrow needed): column types from the values."""
    import duckdb

    types = {}
    for c in columns:
        kinds = {type(r[c]) for r in rows if r[c] is not None}
        types[c] = _duckdb_type(kinds)
    con = duckdb.connect()
    try:
        spec = ", ".join(f'"{c}" {types[c]}' for c in columns)
        con.execute(f"CREATE TABLE out ({spec})")
        if rows:
            marks = ", ".join("?" for _ in columns)
            con.executemany(
                f"INSERT INTO out VALUES ({marks})", [[r[c] for c in columns] for r in rows]
            )
        target = str(path).replace("'", "''")
        con.execute(f"COPY out TO '{target}' (FORMAT parquet)")
    finally:
        con.close()


def _duckdb_type(kinds: set[type]) -> str:
    if not kinds:
        return "VARCHAR"
    if kinds <= {bool}:
        return "BOOLEAN"
    if kinds <= {int}:
        return "BIGINT"
    if kinds <= {int, float}:
        return "DOUBLE"
    if kinds <= {datetime.date}:
        return "DATE"
    return "VARCHAR"
