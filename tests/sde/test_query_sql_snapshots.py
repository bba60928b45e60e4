"""Snapshots of the SQL the worked example compiles to, so changes to it show up in review.

Each snapshot is the DuckDB or Spark SQL of ``src/carelight/sde/examples/diabetes_dataset.py``.
After an intended change to the compiler, rewrite them with

    CARELIGHT_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/sde/test_query_sql_snapshots.py

and read the diff. The shape is also checked directly: each table is read once.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import sqlglot

import carelight.sde.examples
from carelight.sde.query.definitions import load_definition
from carelight.sde.query.engines.duckdb import DuckDBCompiler
from carelight.sde.query.engines.spark import SparkCompiler

EXAMPLE = Path(carelight.sde.examples.__file__).parent / "diabetes_dataset.py"
SNAPSHOTS = Path(__file__).parent / "snapshots"
COMPILERS = {"duckdb": DuckDBCompiler, "spark": SparkCompiler}


@pytest.mark.parametrize("dialect", COMPILERS)
def test_compiled_sql_matches_the_snapshot(dialect):
    sql = COMPILERS[dialect]().sql(load_definition(EXAMPLE).dataset, pretty=True) + "\n"
    path = SNAPSHOTS / f"diabetes_dataset.{dialect}.sql"
    if os.environ.get("CARELIGHT_UPDATE_SNAPSHOTS"):
        path.write_text(sql, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}: run with CARELIGHT_UPDATE_SNAPSHOTS=1"
    assert sql == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("dialect", COMPILERS)
def test_each_table_is_read_once_and_the_sql_parses(dialect):
    sql = COMPILERS[dialect]().sql(load_definition(EXAMPLE).dataset)
    tree = sqlglot.parse_one(sql, read=dialect)
    assert tree is not None
    reads = re.findall(r'FROM [`"](\w+)[`"] AS t\b', sql)
    assert sorted(reads) == sorted(set(reads)), reads
    assert set(reads) == {"clinical_events", "lab_results", "practice_registrations"}
