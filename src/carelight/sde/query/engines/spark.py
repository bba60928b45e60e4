"""The Spark engine: the query model as one Spark SQL query over the store's Parquet files.

Spark reads ``parquet/<table>.parquet`` as temporary views named after the tables, so the
compiled query is the same shape as DuckDB's; only dialect details differ (``SparkCompiler``).
``local_session`` starts a small local-mode session (no UI) for tests and one-machine runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import sqlglot.expressions as exp

from carelight.sde.query.engines.base import Engine, Row
from carelight.sde.query.engines.sql import SQLCompiler
from carelight.sde.query.nodes import Dataset


class SparkCompiler(SQLCompiler):
    dialect = "spark"

    def days_between(self, start: exp.Expression, end: exp.Expression) -> exp.Expression:
        # Spark's two-argument DATEDIFF(end, start) counts days and needs no unit.
        return exp.cast(exp.func("DATEDIFF", end, start), "BIGINT")


def local_session(master: str = "local[1]", shuffle_partitions: int = 1, driver_memory: str = "1g"):
    """A local-mode SparkSession (returns the running one if there is one)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master(master)
        .appName("carelight-sde-query")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.default.parallelism", str(shuffle_partitions))
        .config("spark.driver.memory", driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


class SparkEngine(Engine):
    """Runs datasets with Spark SQL over a store's Parquet files."""

    name = "spark"

    def __init__(self, store: str | Path, *, session=None):
        from carelight.sde.query.store import parquet_paths

        self.session = session or local_session()
        for name, path in parquet_paths(store).items():
            self.session.read.parquet(str(path)).createOrReplaceTempView(name)

    def sql(self, dataset: Dataset) -> str:
        return SparkCompiler().sql(dataset)

    def get_rows(self, dataset: Dataset) -> list[Row]:
        names = dataset.column_names
        return [
            dict(zip(names, tuple(r), strict=True))
            for r in self.session.sql(self.sql(dataset)).collect()
        ]
