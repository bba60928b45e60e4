"""The outputs API researchers' scripts use: files, sidecars and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import carelight.sde.disclosure as disclosure
from carelight.sde.disclosure import outputs
from carelight.sde.disclosure.metadata import read_sidecar, sidecar_path
from carelight.sde.disclosure.outputs import OutputError


@pytest.fixture
def df():
    return pd.DataFrame(
        {
            "patient_id": [f"p{i}" for i in range(6)],
            "sex": ["F", "F", "M", "M", "M", None],
            "region": ["N", "S", "N", "N", "S", "S"],
            "cost": [1.0, 2.0, 3.0, 4.0, -5.0, np.nan],
        }
    )


def test_crosstab_writes_a_wide_csv_and_a_sidecar(tmp_path, df):
    path = outputs.write("ct", outputs.crosstab(df, "sex", "region"), directory=tmp_path)
    assert path.name == "ct.csv"
    assert path.read_text() == "sex,N,S\n(missing),0,1\nF,1,1\nM,2,1\n"
    sidecar = read_sidecar(path)
    meta = sidecar.meta
    assert (meta.statistic, meta.index, meta.columns, meta.margins) == (
        "count",
        ("sex",),
        ("region",),
        True,
    )
    assert {c.key: c.n for c in meta.cells} == {
        ("(missing)", "N"): 0,
        ("(missing)", "S"): 1,
        ("F", "N"): 1,
        ("F", "S"): 1,
        ("M", "N"): 2,
        ("M", "S"): 1,
    }
    assert meta.unit == "patients"
    assert meta.population.startswith("patients:")


def test_tables_of_the_same_people_share_a_population(df):
    a = outputs.crosstab(df, "sex", "region").meta.population
    b = outputs.table(df, "sex").meta.population
    c = outputs.table(df.iloc[:3], "sex").meta.population
    assert a == b != c
    assert outputs.table(df, "sex", population="cohort").meta.population == "cohort"


def test_sum_records_contributions(tmp_path, df):
    path = outputs.write(
        "cost", outputs.table(df, "region", values="cost", agg="sum"), directory=tmp_path
    )
    assert path.read_text() == "region,sum_cost\nN,8.0\nS,-3.0\n"
    cells = {c.key: c for c in read_sidecar(path).meta.cells}
    south = cells[("S",)]
    assert (south.n, south.top1, south.top2, south.total, south.negative) == (
        2,
        5.0,
        2.0,
        7.0,
        True,
    )


def test_event_level_frames_count_rows_and_record_people(tmp_path):
    ev = pd.DataFrame({"patient_id": ["a", "a", "b"], "code": ["x", "x", "x"]})
    out = outputs.table(ev, "code")
    assert out.frame.to_dict("records") == [{"code": "x", "count": 3}]
    assert out.meta.unit == "rows"
    assert out.meta.cells[0].n == 2


def test_plain_frames_are_written_without_metadata(tmp_path, df):
    path = outputs.write("plain.csv", df[["sex"]].value_counts().reset_index(), directory=tmp_path)
    assert path.exists() and not sidecar_path(path).exists()


def test_output_folder_from_the_environment(tmp_path, df, monkeypatch):
    monkeypatch.setenv(outputs.OUTPUT_DIR_ENV, str(tmp_path / "job"))
    path = outputs.write("t.csv", outputs.table(df, "sex"))
    assert path.parent == tmp_path / "job"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: outputs.table(d, "sex", values="cost", agg="max"), "one person's value"),
        (lambda d: outputs.table(d, "sex", agg="mean"), "needs the values column"),
        (lambda d: outputs.table(d, "age"), "no column"),
        (lambda d: outputs.crosstab(d, "sex", ["region", "cost"]), "one column name"),
        (lambda d: outputs.crosstab(d, "sex", "sex"), "both a row and a column"),
        (lambda d: outputs.regression(d), "fitted statsmodels result"),
        (lambda d: outputs.table(d.assign(sex="All"), "sex"), "uses for totals"),
    ],
)
def test_errors_say_what_is_wrong(df, call, message):
    with pytest.raises(OutputError, match=message):
        call(df)


@pytest.mark.parametrize("name", ["../escape.csv", "a/b.csv", "", ".hidden"])
def test_file_names_must_be_plain(tmp_path, df, name):
    with pytest.raises(OutputError, match="plain file name"):
        outputs.write(name, outputs.table(df, "sex"), directory=tmp_path)


def test_sidecar_is_json_with_the_file_hash(tmp_path, df):
    path = outputs.write("t.csv", outputs.table(df, "sex"), directory=tmp_path)
    body = json.loads(sidecar_path(path).read_text())
    assert body["schema"] == "carelight.sdc.metadata/1"
    assert len(body["file_sha256"]) == 64


def test_public_api_is_exported():
    for name in disclosure.__all__:
        assert hasattr(disclosure, name), name
    assert {"check_output", "CheckResult", "load_policy", "Policy"} <= set(disclosure.__all__)
