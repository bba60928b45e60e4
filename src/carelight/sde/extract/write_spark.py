"""The Spark engine (local mode, for scale): the research tables as Parquet, built by Spark SQL.

The staging tables go to Parquet (written by DuckDB, which holds them), Spark reads them as
views, runs the same table queries (``build.table_query(..., "spark")``) and writes each table
as one Parquet file, ``parquet/<table>.parquet``, the same layout as the DuckDB engine's. No
``research.duckdb`` is written: at the scale Spark is for, the query engines read the Parquet.
On a cluster, pass your own session.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb

from carelight.sde.extract.build import table_query
from carelight.sde.extract.mapping import STAGING


def local_session(master: str = "local[2]", driver_memory: str = "1g"):
    from carelight.spark import local_session as start

    return start(
        app_name="carelight-sde-extract",
        master=master,
        shuffle_partitions=4,
        driver_memory=driver_memory,
    )


def write_spark(
    staging: Path,
    work: Path,
    folder: Path,
    tables: list[str],
    progress: Callable | None = None,
    session=None,
) -> dict[str, int]:
    """Build each table with Spark; return the rows written per table."""
    staged = work / "staged-parquet"
    staged.mkdir(parents=True, exist_ok=True)
    db = duckdb.connect(str(staging), read_only=True)
    try:
        for name in STAGING:
            db.execute(f"COPY {name} TO '{staged / name}.parquet' (FORMAT parquet)")
    finally:
        db.close()
    spark = session or local_session()
    for name in STAGING:
        spark.read.parquet(str(staged / f"{name}.parquet")).createOrReplaceTempView(name)
    out = folder / "parquet"
    out.mkdir(parents=True, exist_ok=True)
    ordered = ["patients", *(t for t in tables if t != "patients")]
    for i, name in enumerate(ordered):
        if progress is not None:
            progress(i, len(ordered), f"Writing {name} (Spark)")
        frame = spark.sql(table_query(name, "spark", "patients"))
        scratch = work / f"spark-{name}"
        frame.coalesce(1).write.mode("overwrite").parquet(str(scratch))
        (part,) = scratch.glob("part-*.parquet")
        part.rename(out / f"{name}.parquet")
        shutil.rmtree(scratch)
        if name == "patients":  # the other tables keep only people in it
            spark.read.parquet(str(out / "patients.parquet")).createOrReplaceTempView("patients")
    rows = {}
    counter = duckdb.connect()
    try:
        for name in ordered:
            path = out / f"{name}.parquet"
            rows[name] = counter.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[
                0
            ]
    finally:
        counter.close()
    for name in [*STAGING, "patients"]:
        spark.catalog.dropTempView(name)
    return rows
