"""The spec suite runs every test on every engine: memory (the reference), DuckDB and Spark."""

from __future__ import annotations

import pytest

from sde_query_support import ENGINES, QueryRunner, spark_session  # noqa: F401  (fixture)


@pytest.fixture(params=ENGINES)
def engine(request, tmp_path) -> QueryRunner:
    return QueryRunner(request.param, tmp_path, request)
