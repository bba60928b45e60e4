"""Shared test support for the SDE query language: engines over a temporary research store.

``spark_session`` (session scope) is one local Spark (``local[1]``, one shuffle partition, no
UI), started only if a Spark test runs. Without Java it skips, or under ``CI=true`` fails.

``QueryRunner`` runs a dataset on one engine: it writes the table data into a temporary
store folder in the research store's layout (``research.duckdb`` plus ``parquet/``) for DuckDB
and Spark, and hands the plain rows to the in-memory engine.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from carelight.sde.query import create_dataset, tables
from carelight.sde.query.engines import ENGINES
from carelight.sde.query.engines.inmemory import InMemoryEngine
from carelight.sde.query.store import write_store

__all__ = ["ENGINES", "QueryRunner", "spark_session"]

SPARK_WARNINGS = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def spark_session():
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if _in_ci():
            pytest.fail("the Spark query engine needs Java 17: none on PATH and JAVA_HOME unset")
        pytest.skip("no Java: the Spark query engine is not tested")
    if not _in_ci():
        pytest.importorskip("pyspark")
    from carelight.sde.query.engines.spark import local_session

    session = local_session(master="local[1]", shuffle_partitions=1, driver_memory="1g")
    yield session
    session.stop()


class QueryRunner:
    """Runs datasets on engine ``name`` over table data written to a fresh store each time."""

    def __init__(self, name: str, folder: Path, request: pytest.FixtureRequest):
        self.name, self.folder, self.request = name, folder, request
        self._counter = itertools.count()

    def engine(self, data: dict[str, list[dict[str, Any]]]):
        if self.name == "memory":
            return InMemoryEngine(data)
        store = write_store(self.folder / f"store{next(self._counter)}", data)
        if self.name == "duckdb":
            from carelight.sde.query.engines.duckdb import DuckDBEngine

            return DuckDBEngine(store)
        from carelight.sde.query.engines.spark import SparkEngine

        return SparkEngine(store, session=self.request.getfixturevalue("spark_session"))

    def rows(self, data, dataset) -> list[dict[str, Any]]:
        engine = self.engine(data)
        try:
            query = dataset.to_query() if hasattr(dataset, "to_query") else dataset
            return engine.get_rows(query)
        finally:
            engine.close()

    def measures(self, data, measures) -> list[dict[str, Any]]:
        engine = self.engine(data)
        try:
            return engine.get_measure_rows(measures.to_query())
        finally:
            engine.close()

    def run(self, data, population=None, **variables) -> dict[Any, Any]:
        """patient_id → value (one variable) or → dict of values (several)."""
        dataset = create_dataset()
        dataset.define_population(
            population if population is not None else tables.patients.exists_for_patient()
        )
        for name, series in variables.items():
            setattr(dataset, name, series)
        out = {}
        for row in self.rows(data, dataset):
            pid = row.pop("patient_id")
            out[pid] = next(iter(row.values())) if len(variables) == 1 else row
        return out
