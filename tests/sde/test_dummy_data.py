"""Dummy data from a definition: the population is reached, at the size asked for, with the
codes, values and dates the definition mentions, the same for the same seed."""

from __future__ import annotations

import datetime

import pytest

from carelight.sde.query import codelist, create_dataset, create_measures, tables
from carelight.sde.query.dummy import DummyDataError, dummy_rows, generate_tables, hints_for
from carelight.sde.query.engines.inmemory import InMemoryEngine

ev, labs, meds, p = (
    tables.clinical_events,
    tables.lab_results,
    tables.medications,
    tables.patients,
)
DIABETES = codelist(["44054006", "73211009"], "snomedct")
SGLT2 = codelist(["25290511000001101"], "dmd")  # empagliflozin
INDEX = "2024-01-01"


def rare_dataset():
    """Women over 80 with diabetes, no SGLT2 inhibitor, and a recent HbA1c above 75: rare at random."""
    ds = create_dataset()
    age = p.age_on(INDEX)
    has_dm = ev.where(ev.snomedct_code.is_in(DIABETES)).exists_for_patient()
    on_sglt2 = meds.where(meds.dmd_code.is_in(SGLT2)).exists_for_patient()
    recent = labs.where(labs.code == "59261-8").where(labs.date.is_on_or_after("2023-01-01"))
    hba1c = recent.sort_by(recent.date).last_for_patient().value
    ds.define_population((age >= 80) & has_dm & ~on_sglt2 & (hba1c > 75) & (p.sex == "female"))
    ds.age = age
    ds.hba1c = hba1c
    ds.first_dm = (
        ev.where(ev.snomedct_code.is_in(DIABETES)).sort_by(ev.date).first_for_patient().date
    )
    return ds.to_query()


def test_the_population_is_reached_at_exactly_the_size_asked_for():
    query = rare_dataset()
    rows = dummy_rows(query, 300, seed=3)
    assert len(rows) == 300
    assert len({r["patient_id"] for r in rows}) == 300
    for r in rows:
        assert r["age"] >= 80
        assert r["hba1c"] > 75
        assert r["first_dm"] is not None


def test_the_tables_hold_only_accepted_patients_and_every_one_satisfies_the_population():
    query = rare_dataset()
    generated = generate_tables(query, 120, seed=5)
    people = {r["patient_id"] for r in generated["patients"]}
    assert len(people) == 120
    for name, rows in generated.items():
        assert {r["patient_id"] for r in rows} <= people, name
    # The reference engine over the generated tables gives back every generated patient.
    assert {r["patient_id"] for r in InMemoryEngine(generated).get_rows(query)} == people
    sexes = {r["sex"] for r in generated["patients"]}
    assert sexes == {"female"}
    assert all(r["date_of_birth"].day == 1 for r in generated["patients"])


def test_events_use_the_codes_and_values_the_definition_mentions():
    generated = generate_tables(rare_dataset(), 100, seed=7)
    codes = {r["snomedct_code"] for r in generated["clinical_events"]}
    assert codes & set(DIABETES.codes)
    assert {r["code"] for r in generated["lab_results"]} & {"59261-8"}
    hba1c = [r["value"] for r in generated["lab_results"] if r["code"] == "59261-8"]
    assert max(hba1c) > 75
    # Event dates are never before the patient was born.
    born = {r["patient_id"]: r["date_of_birth"] for r in generated["patients"]}
    for name in ("clinical_events", "lab_results", "medications"):
        for r in generated[name]:
            assert r["date"] >= born[r["patient_id"]], name


def test_the_same_seed_gives_the_same_data_and_another_seed_differs():
    a = generate_tables(rare_dataset(), 50, seed=11)
    b = generate_tables(rare_dataset(), 50, seed=11)
    c = generate_tables(rare_dataset(), 50, seed=12)
    assert a == b
    assert a != c


def test_a_population_defined_by_absence_is_reached_too():
    ds = create_dataset()
    has_dm = ev.where(ev.snomedct_code.is_in(DIABETES)).exists_for_patient()
    ds.define_population(p.exists_for_patient() & ~has_dm)
    ds.events = ev.count_for_patient()
    rows = dummy_rows(ds.to_query(), 400, seed=1)
    assert len(rows) == 400


def test_an_unsatisfiable_population_is_a_clear_error():
    ds = create_dataset()
    ds.define_population(p.age_on(INDEX) > 200)
    with pytest.raises(DummyDataError, match=r"only 0 of the 10 .* can be true"):
        generate_tables(ds.to_query(), 10, max_attempts=2_000)


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_a_size_that_is_not_a_positive_whole_number_is_refused(size):
    with pytest.raises(DummyDataError, match="positive whole number"):
        generate_tables(rare_dataset(), size)


def test_measures_get_dummy_data_for_every_interval():
    m = create_measures()
    has_dm = ev.where(ev.snomedct_code.is_in(DIABETES)).exists_for_patient()
    from carelight.sde.query import INTERVAL

    tested = labs.where(labs.code == "59261-8").where(
        labs.date.is_on_or_between(INTERVAL.start_date, INTERVAL.end_date)
    )
    months = [
        (datetime.date(2024, k, 1), datetime.date(2024, k + 1, 1) - datetime.timedelta(days=1))
        for k in range(1, 7)
    ]
    m.define_measure(
        "hba1c_tested",
        numerator=tested.exists_for_patient(),
        denominator=has_dm,
        group_by={"sex": p.sex},
        intervals=months,
    )
    query = m.to_query()
    generated = generate_tables(query, 80, seed=2)
    rows = InMemoryEngine(generated).get_measure_rows(query)
    assert {r["interval_start"] for r in rows} == {a for a, _ in months}
    assert sum(r["numerator"] for r in rows) > 0


def test_hints_read_codes_numbers_dates_and_ages_from_the_query_model():
    h = hints_for([rare_dataset()])
    assert set(DIABETES.codes) <= h.values[("clinical_events", "snomedct_code")]
    assert h.values[("lab_results", "code")] == {"59261-8"}
    assert h.numbers[("lab_results", "value")] == [75.0]
    assert datetime.date(2024, 1, 1) in h.dates
    assert 80 in h.ages
    assert h.tables == {"clinical_events", "lab_results", "medications", "patients"}


DEFINITION = """
from carelight.sde.query import codelist_from_csv, create_dataset, tables

ev, labs, p = tables.clinical_events, tables.lab_results, tables.patients
diabetes = codelist_from_csv("diabetes.csv", column="code")
dataset = create_dataset()
dataset.configure_dummy_data(population_size=60)
has_dm = ev.where(ev.snomedct_code.is_in(diabetes)).exists_for_patient()
dataset.define_population(has_dm & (p.age_on("2024-01-01") >= 40))
dataset.sex = p.sex
dataset.first_dm = ev.where(ev.snomedct_code.is_in(diabetes)).sort_by(ev.date).first_for_patient().date
dataset.hba1c_tests = labs.where(labs.code == "59261-8").count_for_patient()
dataset.max_hba1c = labs.where(labs.code == "59261-8").value.maximum_for_patient()
"""


def _definition(folder):
    (folder / "diabetes.csv").write_text("code,term\n44054006,Type 2 diabetes\n")
    path = folder / "study.py"
    path.write_text(DEFINITION)
    return path


def test_run_dummy_writes_the_dataset_and_a_store_the_duckdb_engine_agrees_with(tmp_path):
    import csv

    from carelight.sde.query.definitions import load_definition
    from carelight.sde.query.dummy import run_dummy
    from carelight.sde.query.run import open_engine, run_dataset

    path = _definition(tmp_path)
    patients, rows = run_dummy(path, tmp_path / "out.csv", store_out=tmp_path / "store")
    assert (patients, rows) == (60, 60)  # the definition's configure_dummy_data size
    with (tmp_path / "out.csv").open() as fh:
        written = list(csv.DictReader(fh))
    assert len(written) == 60
    assert all(r["first_dm"] for r in written)
    engine = open_engine("duckdb", tmp_path / "store")
    try:
        _, from_duckdb = run_dataset(load_definition(path), engine)
    finally:
        engine.close()
    assert [r["patient_id"] for r in from_duckdb] == [r["patient_id"] for r in written]
    assert [str(r["first_dm"]) for r in from_duckdb] == [r["first_dm"] for r in written]


def test_run_dummy_takes_a_size_and_refuses_a_definition_without_a_dataset(tmp_path):
    from carelight.sde.query.definitions import DefinitionError
    from carelight.sde.query.dummy import run_dummy

    path = _definition(tmp_path)
    assert run_dummy(path, tmp_path / "out.parquet", size=15, seed=4) == (15, 15)
    with pytest.raises(DefinitionError, match="defines no measures"):
        run_dummy(path, tmp_path / "m.csv", measures=True)


def test_a_dummy_store_and_the_job_dataset_step_give_the_population(tmp_path):
    import csv

    from carelight.sde.query.dummy import make_dummy_store
    from carelight.sde.query.produce import produce_dataset

    path = _definition(tmp_path)
    assert make_dummy_store(path, tmp_path / "store", size=25, seed=9) == 25
    assert produce_dataset(path, tmp_path / "store", tmp_path / "dataset.csv") == 25
    with (tmp_path / "dataset.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 25
    assert list(rows[0])[:2] == ["patient_id", "sex"]


def test_a_jobs_dummy_run_makes_its_dataset_from_the_definition_not_the_store(
    tmp_path, monkeypatch
):
    import csv

    from carelight.sde.query.produce import produce_dataset
    from carelight.sde.query.store import write_store

    path = _definition(tmp_path)
    # The store mounted for a dummy run holds nobody the definition would select.
    write_store(tmp_path / "store", {"patients": [{"patient_id": "x", "sex": "male"}]})
    monkeypatch.setenv("CARELIGHT_DATA", "dummy")
    assert produce_dataset(path, tmp_path / "store", tmp_path / "dataset.csv") == 60
    with (tmp_path / "dataset.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 60 and all(r["first_dm"] for r in rows)
    monkeypatch.setenv("CARELIGHT_DATA", "real")
    assert produce_dataset(path, tmp_path / "store", tmp_path / "real.csv") == 0


def test_carelight_sde_run_dummy_on_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from carelight.cli import app

    path = _definition(tmp_path)
    runner = CliRunner()
    ok = runner.invoke(
        app, ["sde", "run-dummy", str(path), "--output", str(tmp_path / "o.csv"), "--size", "12"]
    )
    assert ok.exit_code == 0, ok.output
    assert "12 dummy patients; 12 rows written" in ok.output
    bad = runner.invoke(app, ["sde", "run-dummy", str(path), "--output", str(tmp_path / "o.txt")])
    assert bad.exit_code == 2 and ".csv or .parquet" in bad.output
    (tmp_path / "broken.py").write_text("from carelight.sde.query import create_dataset\n")
    broken = runner.invoke(
        app, ["sde", "run-dummy", str(tmp_path / "broken.py"), "--output", str(tmp_path / "b.csv")]
    )
    assert broken.exit_code == 1 and "defines neither" in broken.output
