"""The DuckDB engine: the query model as one DuckDB query over the store's ``research.duckdb``."""

from __future__ import annotations

from pathlib import Path

from carelight.sde.query.engines.sql import SQLCompiler, SQLEngine


class DuckDBCompiler(SQLCompiler):
    """DuckDB's SQL: sqlglot's duckdb dialect covers every node; nothing differs yet."""

    dialect = "duckdb"


class DuckDBEngine(SQLEngine):
    """Runs datasets on a DuckDB connection (by default the store opened read-only)."""

    name = "duckdb"

    def __init__(self, store: str | Path | None = None, *, connection=None):
        if connection is None:
            if store is None:
                raise ValueError("give a store folder or a DuckDB connection")
            from carelight.sde.query.store import connect_duckdb

            connection = connect_duckdb(store)
            self._owns = True
        else:
            self._owns = False
        self.connection = connection

    def compiler(self) -> SQLCompiler:
        return DuckDBCompiler()

    def execute(self, sql: str) -> list[tuple]:
        return self.connection.execute(sql).fetchall()

    def close(self) -> None:
        if self._owns:
            self.connection.close()
