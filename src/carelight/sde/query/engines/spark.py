"""The Spark engine: the query model as one Spark SQL query over the store's Parquet files.

Spark reads ``parquet/<table>.parquet`` as temporary views named after the tables, so the
compiled query is the same shape as DuckDB's; only dialect details differ (``SparkCompiler``).
``local_session`` starts a small local-mode session (no UI) for tests and one-machine runs.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import sqlglot.expressions as exp

from carelight.sde import model
from carelight.sde.query.engines.sql import SQLCompiler, SQLEngine
from carelight.sde.query.nodes import Dataset, tables_used


class SparkCompiler(SQLCompiler):
    dialect = "spark"

    def days_between(self, start: exp.Expression, end: exp.Expression) -> exp.Expression:
        # Spark's two-argument DATEDIFF(end, start) counts days and needs no unit.
        return exp.cast(exp.func("DATEDIFF", end, start), "BIGINT")


def local_session(master: str = "local[*]", shuffle_partitions: int = 8, driver_memory: str = "2g"):
    """A local-mode SparkSession (returns the running one if there is one).

    The defaults use every core; the tests ask for ``local[1]`` and one shuffle partition.
    """
    from carelight.spark import local_session as start

    return start(
        app_name="carelight-sde-query",
        master=master,
        shuffle_partitions=shuffle_partitions,
        driver_memory=driver_memory,
    )


class SparkEngine(SQLEngine):
    """Runs datasets with Spark SQL over a store's Parquet files.

    Each engine registers the tables it needs as temporary views under its own prefix (so two
    engines over two stores in one session do not clash), with the schema taken from the
    research data model rather than inferred.
    """

    name = "spark"
    _instances = itertools.count(1)

    def __init__(self, store: str | Path, *, session=None):
        from carelight.sde.query.store import parquet_paths

        self.session = session or local_session()
        self.paths = parquet_paths(store)
        self.prefix = f"carelight_sde_{next(self._instances)}_"
        self.views: dict[str, str] = {}

    def _register(self, names: list[str]) -> None:
        for name in names:
            if name not in self.views:
                table = model.table(name)
                schema = ", ".join(f"`{c.name}` {_SPARK_TYPES[c.type]}" for c in table.columns)
                frame = self.session.read.schema(schema).parquet(str(self.paths[name]))
                frame.createOrReplaceTempView(self.prefix + name)
                self.views[name] = self.prefix + name

    def sql(self, dataset: Dataset) -> str:
        self._register(tables_used(dataset))
        return super().sql(dataset)

    def measure_sql(self, measure) -> str:
        for start, end in measure.intervals[:1]:
            self._register(tables_used(measure.dataset_for(start, end)))
        return super().measure_sql(measure)

    def compiler(self) -> SQLCompiler:
        return SparkCompiler(self.views)

    def execute(self, sql: str) -> list[tuple]:
        return [tuple(r) for r in self.session.sql(sql).collect()]

    def close(self) -> None:
        for view in self.views.values():
            self.session.catalog.dropTempView(view)
        self.views.clear()


_SPARK_TYPES = {
    "str": "STRING",
    "int": "BIGINT",
    "float": "DOUBLE",
    "date": "DATE",
    "bool": "BOOLEAN",
}
