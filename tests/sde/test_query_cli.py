"""Definition files, running them on a store, and ``run``/``sql`` on the command line.

The worked example in ``src/carelight/sde/examples`` (the one docs/sde-query.md explains) runs
here on a small store in the research store's layout, on every engine, with known answers.
"""

from __future__ import annotations

import csv
import datetime
import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import carelight.sde.examples
from carelight.sde.query.cli import app
from carelight.sde.query.definitions import DefinitionError, load_definition
from carelight.sde.query.run import open_engine, run_dataset, run_measures
from carelight.sde.query.store import StoreError, write_store
from sde_query_support import SPARK_WARNINGS, spark_session  # noqa: F401  (fixture)

pytestmark = SPARK_WARNINGS

D = datetime.date
EXAMPLE = Path(carelight.sde.examples.__file__).parent / "diabetes_dataset.py"

DATA = {
    "patients": [
        {"patient_id": "a", "sex": "female", "date_of_birth": D(1960, 5, 1)},
        {"patient_id": "b", "sex": "male", "date_of_birth": D(1990, 1, 1)},
        {"patient_id": "c", "sex": "female", "date_of_birth": D(2010, 1, 1)},  # a child
        {
            "patient_id": "d",
            "sex": "male",
            "date_of_birth": D(1940, 1, 1),
            "date_of_death": D(2023, 6, 1),
        },
    ],
    "practice_registrations": [
        {"patient_id": pid, "practice_code": "Y01", "start_date": D(2000, 1, 1)} for pid in "abcd"
    ],
    "clinical_events": [
        {"patient_id": "a", "date": D(2015, 3, 1), "snomedct_code": "44054006"},
        {"patient_id": "a", "date": D(2020, 1, 1), "snomedct_code": "73211009"},
        {"patient_id": "a", "date": D(2022, 6, 1), "snomedct_code": "38341003"},
        {"patient_id": "b", "date": D(2010, 1, 1), "snomedct_code": "38341003"},
    ],
    "lab_results": [
        {"patient_id": "a", "date": D(2023, 3, 10), "code": "4548-4", "value": 58.0},
        {"patient_id": "a", "date": D(2023, 9, 10), "code": "4548-4", "value": 52.0},
        {"patient_id": "a", "date": D(2023, 9, 10), "code": "2093-3", "value": 4.9},
        {"patient_id": "b", "date": D(2021, 1, 1), "code": "4548-4", "value": 40.0},
    ],
}

EXPECTED = {
    "a": {
        "age": "63",
        "age_band": "40-64",
        "sex": "female",
        "has_diabetes": "true",
        "diabetes_date": "2015-03-01",
        "diabetes_type": "type 2",
        "years_with_diabetes": "8",
        "hba1c_tests_last_year": "2",
        "latest_hba1c": "52.0",
        "latest_cholesterol": "4.9",
        "hypertension_last_5_years": "true",
    },
    "b": {
        "age": "34",
        "age_band": "18-39",
        "sex": "male",
        "has_diabetes": "false",
        "diabetes_date": "",
        "diabetes_type": "",
        "years_with_diabetes": "",
        "hba1c_tests_last_year": "0",
        "latest_hba1c": "40.0",
        "latest_cholesterol": "",
        "hypertension_last_5_years": "false",
    },
}


@pytest.fixture
def store(tmp_path) -> Path:
    return write_store(tmp_path / "store", DATA)


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as f:
        return {row.pop("patient_id"): row for row in csv.DictReader(f)}


@pytest.mark.parametrize("engine", ["memory", "duckdb"])
def test_run_writes_the_example_dataset(store, tmp_path, engine):
    out = tmp_path / f"{engine}.csv"
    args = ["run", str(EXAMPLE), "--store", str(store), "--engine", engine, "--output", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"2 patients written to {out}" in result.output
    assert read_csv(out) == EXPECTED


def test_the_example_on_spark(store, spark_session):  # noqa: F811  (the fixture)
    engine = open_engine("spark", store, session=spark_session)
    try:
        _, rows = run_dataset(load_definition(EXAMPLE), engine)
    finally:
        engine.close()
    assert [r["patient_id"] for r in rows] == ["a", "b"]
    assert rows[0]["diabetes_type"] == "type 2" and rows[0]["latest_hba1c"] == 52.0


def test_run_writes_measures_and_parquet(store, tmp_path):
    out = tmp_path / "measures.parquet"
    args = ["run", str(EXAMPLE), "--store", str(store), "--measures", "--output", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = duckdb.sql(f"SELECT * FROM '{out}' ORDER BY interval_start").fetchall()
    # Patient a (female, diabetes since 2015) is the whole denominator every month of 2023
    # (d died in June 2023 but never had diabetes); she was tested in March and September.
    assert len(rows) == 12
    tested = [r[1].month for r in rows if r[4] == 1]
    assert tested == [3, 9]
    assert {(r[5], r[6]) for r in rows} == {(1, "female")}


def test_run_measures_on_the_in_memory_engine_match_duckdb(store):
    definition = load_definition(EXAMPLE)
    results = []
    for name in ("memory", "duckdb"):
        engine = open_engine(name, store)
        try:
            results.append(run_measures(definition, engine))
        finally:
            engine.close()
    assert results[0] == results[1]


def test_sql_prints_the_compiled_query():
    result = CliRunner().invoke(app, ["sql", str(EXAMPLE), "--dialect", "spark"])
    assert result.exit_code == 0, result.output
    assert "MAX_BY" in result.output and "FILTER" in result.output


def test_definition_errors_name_the_file_and_the_mistake(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from carelight.sde.query import create_dataset, tables\n"
        "dataset = create_dataset()\n"
        "dataset.when = tables.clinical_events.date\n"
    )
    with pytest.raises(
        DefinitionError, match=re.escape("bad.py: column 'when' must have one value")
    ):
        load_definition(bad)
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(DefinitionError, match="defines neither `dataset`"):
        load_definition(empty)
    result = CliRunner().invoke(
        app, ["run", str(bad), "--store", str(tmp_path), "--output", "x.csv"]
    )
    assert result.exit_code == 1 and "bad.py: column 'when'" in result.output


def test_a_folder_that_is_not_a_store(tmp_path):
    with pytest.raises(StoreError, match=re.escape("has no research.duckdb")):
        open_engine("duckdb", tmp_path)
    out = tmp_path / "out.csv"
    args = ["run", str(EXAMPLE), "--store", str(tmp_path), "--output", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "is not a research store" in result.output
    assert not out.exists()
