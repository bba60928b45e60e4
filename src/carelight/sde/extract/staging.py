"""The staging database: pseudonymised rows from the resources, in batches, before the research
tables are built from them. A DuckDB file in the extract's work folder (outside the research
store), deleted when the extract ends. Memory stays bounded by one batch per staging table."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd

from carelight.sde.extract.mapping import STAGING

BATCH_ROWS = 20_000
# DuckDB's own ceiling (it spills to disk beyond it): the extract's memory stays bounded
# whatever the population. Override with CARELIGHT_SDE_DUCKDB_MEMORY (e.g. "4GB").
DUCKDB_MEMORY = os.environ.get("CARELIGHT_SDE_DUCKDB_MEMORY", "1GB")


class Staging:
    def __init__(self, path: Path, batch_rows: int = BATCH_ROWS) -> None:
        self.path = path
        self.db = duckdb.connect(str(path))
        self.db.execute("SET preserve_insertion_order = false")
        self.db.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
        self.batch_rows = batch_rows
        self.buffers: dict[str, list[tuple]] = {t: [] for t in STAGING}
        for name, columns in STAGING.items():
            cols = ", ".join(f"{c} {t}" for c, t in columns)
            self.db.execute(f"CREATE TABLE {name} ({cols})")
        self.closed = False

    def add(self, table: str, row: tuple) -> None:
        buffer = self.buffers[table]
        buffer.append(row)
        if len(buffer) >= self.batch_rows:
            self.flush(table)

    def flush(self, table: str | None = None) -> None:
        for name in [table] if table else list(self.buffers):
            rows = self.buffers[name]
            if not rows:
                continue
            columns = STAGING[name]
            frame = pd.DataFrame(rows, columns=[c for c, _ in columns], dtype=object)
            self.db.register("staging_batch", frame)
            casts = ", ".join(f"CAST({c} AS {t})" for c, t in columns)
            self.db.execute(f"INSERT INTO {name} SELECT {casts} FROM staging_batch")
            self.db.unregister("staging_batch")
            self.buffers[name] = []

    def close(self) -> None:
        if not self.closed:
            self.db.close()
            self.closed = True
