"""The research data model's documentation lists every table and column the model defines,
and the model's types map to the five DuckDB types the engines read."""

from __future__ import annotations

import re
from pathlib import Path

from carelight.sde import model
from carelight.sde.extract.build import DUCKDB_TYPES, QUERIES
from carelight.sde.extract.mapping import SOURCES

DOC = Path(__file__).resolve().parents[2] / "docs" / "research-data-model.md"


def test_every_table_and_column_is_documented():
    text = DOC.read_text()
    sections = dict(re.findall(r"^## (\w+).*?\n(.*?)(?=^## |\Z)", text, re.M | re.S))
    for table in model.TABLES:
        assert table.name in sections, f"docs/research-data-model.md has no section {table.name}"
        for column in table.columns:
            assert re.search(rf"^\| {column.name} \| {column.type} \|", sections[table.name],
                             re.M), f"{table.name}.{column.name} ({column.type}) is not documented"  # fmt: skip


def test_every_table_has_a_query_and_sources():
    assert set(QUERIES) == set(SOURCES) == set(model.BY_NAME)
    assert set(DUCKDB_TYPES.values()) == {"VARCHAR", "BIGINT", "DOUBLE", "DATE", "BOOLEAN"}
