"""The research store's layout, as the query engines open it, and the in-memory engine's input."""

from __future__ import annotations

import datetime

import duckdb
import pytest

from carelight.sde import model
from carelight.sde.query.engines.inmemory import InMemoryEngine
from carelight.sde.query.store import (
    StoreError,
    connect_duckdb,
    parquet_paths,
    read_rows,
    write_store,
)

D = datetime.date


def test_a_written_store_has_every_table_in_duckdb_and_parquet(tmp_path):
    rows = {"patients": [{"patient_id": "a", "date_of_birth": D(1990, 1, 1)}]}
    store = write_store(tmp_path / "s", rows)
    con = connect_duckdb(store)
    try:
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'patients'"
            ).fetchall()
        )
    finally:
        con.close()
    assert types == {
        "patient_id": "VARCHAR",
        "sex": "VARCHAR",
        "date_of_birth": "DATE",
        "date_of_death": "DATE",
        "area_code": "VARCHAR",
    }
    paths = parquet_paths(store)
    assert set(paths) == {t.name for t in model.TABLES}
    assert duckdb.sql(
        f"SELECT patient_id, date_of_birth FROM '{paths['patients']}'"
    ).fetchall() == [("a", D(1990, 1, 1))]
    loaded = read_rows(store)
    assert loaded["patients"][0]["date_of_birth"] == D(1990, 1, 1)
    assert loaded["clinical_events"] == []


def test_a_store_missing_a_table_is_refused(tmp_path):
    path = tmp_path / "research.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE patients (patient_id VARCHAR)")
    con.close()
    with pytest.raises(StoreError, match="has no table for: practice_registrations"):
        connect_duckdb(tmp_path)
    with pytest.raises(StoreError, match="no Parquet file for"):
        parquet_paths(tmp_path)


def test_writing_refuses_unknown_columns_and_an_existing_store(tmp_path):
    with pytest.raises(StoreError, match="no column"):
        write_store(tmp_path / "a", {"patients": [{"patient_id": "a", "nhs_number": "x"}]})
    write_store(tmp_path / "b", {})
    with pytest.raises(StoreError, match="already exists"):
        write_store(tmp_path / "b", {})


def test_the_in_memory_engine_checks_its_rows():
    with pytest.raises(KeyError, match="no column"):
        InMemoryEngine({"patients": [{"patient_id": "a", "name": "x"}]})
    with pytest.raises(KeyError, match="no research table"):
        InMemoryEngine({"people": []})
    with pytest.raises(ValueError, match="has no patient_id"):
        InMemoryEngine({"clinical_events": [{"date": D(2020, 1, 1)}]})
    with pytest.raises(ValueError, match="patient twice"):
        InMemoryEngine({"patients": [{"patient_id": "a"}, {"patient_id": "a"}]})
