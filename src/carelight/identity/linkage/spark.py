"""Splink on Spark: the same model, settings and code path as DuckDB, on a Spark session.

    from carelight.identity.linkage.spark import spark_api
    db_api = spark_api()                       # local Spark, Splink's Jaro-Winkler jar loaded
    clusters = model.link(records, db_api=db_api)

Jaro-Winkler is not built into Spark SQL: Splink ships it as a Scala UDF in a jar inside its
wheel (``splink/internals/files/spark_jars``, one for Spark 3 and one for Spark 4), which
``local_session`` puts on the session's class path, so nothing is downloaded at run time. On a
cluster, pass your own session built with ``spark.jars`` set to ``similarity_jar()``.

That Scala Jaro-Winkler is not quite DuckDB's: it halves the count of out-of-order matched
characters without rounding down, so "johnson" and "johson" score 0.908 on Spark and 0.928 on
DuckDB (and in the on-write scorer, ``jaro.py``), either side of the 0.92 level. By default
``spark_api`` therefore replaces Spark's ``jaro_winkler`` with a Python UDF running ``jaro.py``,
so Spark, DuckDB and ``match_one`` put every pair in the same level and link the same
clusters. ``jaro_winkler="splink"`` keeps the faster Scala function, at the price of a few
pairs scored differently (4 of 15,041 synthetic name pairs change level).
"""

from __future__ import annotations

from typing import Any, Literal

from carelight.identity.linkage.jaro import jaro_winkler as _python_jaro_winkler


def similarity_jar() -> str:
    """The path of Splink's Scala similarity UDF jar for the installed Spark."""
    from splink.backends.spark import similarity_jar_location

    return similarity_jar_location()


def local_session(
    *,
    master: str = "local[2]",
    shuffle_partitions: int = 4,
    driver_memory: str = "2g",
    app_name: str = "carelight-linkage",
    conf: dict[str, str] | None = None,
):
    """A local-mode Spark session fit for linkage on one machine (no UI, few partitions).

    Spark keeps one session per process: if one is already running, it is returned as is
    (``getOrCreate``), with the settings it was started with.
    """
    from carelight.spark import local_session as start

    return start(
        app_name=app_name,
        master=master,
        shuffle_partitions=shuffle_partitions,
        driver_memory=driver_memory,
        conf=conf,
    )


def _jaro_winkler(a: str | None, b: str | None) -> float | None:
    return None if a is None or b is None else _python_jaro_winkler(a, b)


def register_exact_jaro_winkler(session) -> None:
    """Make ``jaro_winkler`` in ``session``'s SQL the scorer's (and DuckDB's) Jaro-Winkler."""
    from pyspark.sql.types import DoubleType

    session.udf.register("jaro_winkler", _jaro_winkler, DoubleType())


def spark_api(session=None, *, jaro_winkler: Literal["exact", "splink"] = "exact", **kwargs: Any):
    """Splink's ``SparkAPI`` over ``session`` (by default ``local_session()``).

    ``jaro_winkler="exact"`` (the default) registers the Python Jaro-Winkler that DuckDB and
    the on-write scorer agree with; ``"splink"`` keeps Splink's Scala UDF (see above).
    Intermediate tables are persisted in memory (``break_lineage_method="persist"``) unless
    told otherwise, so local runs need no checkpoint folder.
    """
    from splink.backends.spark import SparkAPI

    session = session or local_session()
    kwargs.setdefault("break_lineage_method", "persist")
    kwargs.setdefault(
        "num_partitions_on_repartition",
        int(session.conf.get("spark.sql.shuffle.partitions", "4")),
    )
    api = SparkAPI(spark_session=session, **kwargs)  # registers Splink's Scala UDFs
    if jaro_winkler == "exact":
        register_exact_jaro_winkler(session)
    elif jaro_winkler != "splink":
        raise ValueError(f"jaro_winkler must be 'exact' or 'splink', not {jaro_winkler!r}")
    return api
