"""One way to start a local-mode Spark session, for every part of Carelight that uses Spark.

Spark keeps one session per process and ``getOrCreate`` hands back the running one with the
settings it was started with. Record linkage, the research-store extract and the query
language's Spark engine can run in one process (a test worker, the demo), so they must not
depend on which of them started Spark first: each asks through here, and every session gets
the same settings that matter to any of them (UTC session time zone for dates, Splink's
similarity jar on the class path, no UI, zstd Parquet). Only sizes differ by caller.
"""

from __future__ import annotations

import os
import sys


def _common() -> dict[str, str]:
    from splink.backends.spark import similarity_jar_location

    return {
        "spark.jars": similarity_jar_location(),  # linkage's comparisons; nothing downloaded
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.execution.arrow.pyspark.enabled": "false",
        "spark.sql.parquet.compression.codec": "zstd",
    }


def local_session(
    *,
    app_name: str,
    master: str,
    shuffle_partitions: int,
    driver_memory: str,
    conf: dict[str, str] | None = None,
):
    """A local-mode session (or the running one, as it was started)."""
    from pyspark.sql import SparkSession

    # Python UDFs run in worker processes: make them this interpreter (with carelight).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings = {
        **_common(),
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.default.parallelism": str(shuffle_partitions),
        "spark.driver.memory": driver_memory,
        **(conf or {}),
    }
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
