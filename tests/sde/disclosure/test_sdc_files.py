"""File rules: types, sizes, metadata, row-level files, and the evidence record."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from carelight.sde.disclosure import ACRO, NHS_ENGLAND, check_output, get_policy, outputs
from carelight.sde.disclosure.evidence import SCHEMA
from carelight.sde.disclosure.metadata import sidecar_path


def api_table(tmp_path):
    df = pd.DataFrame(
        {"patient_id": [f"p{i}" for i in range(40)], "sex": ["F"] * 25 + ["M"] * 12 + ["U"] * 3}
    )
    return outputs.write("by_sex.csv", outputs.table(df, "sex"), directory=tmp_path / "o")


@pytest.mark.parametrize(
    "name", ["data.parquet", "data.xlsx", "model.pkl", "store.duckdb", "noext"]
)
def test_disallowed_types_fail(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x00\x01")
    result = check_output(path, NHS_ENGLAND, out_dir=tmp_path / "c")
    assert result.outcome == "fail"
    assert result.evidence.classification["kind"] == "disallowed-type"
    assert result.safe_path is None


@pytest.mark.parametrize("name", ["figure.png", "notes.txt", "report.html"])
def test_documents_and_images_go_to_a_checker(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"something")
    result = check_output(path, NHS_ENGLAND, out_dir=tmp_path / "c")
    assert result.outcome == "needs-review"
    assert result.safe_path is None


def test_size_limit(tmp_path):
    path = api_table(tmp_path)
    small = get_policy("nhs-england", max_file_bytes=10)
    result = check_output(path, small, out_dir=tmp_path / "c")
    assert result.outcome == "fail" and result.evidence.classification["kind"] == "too-big"


def test_row_limit(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"code": [f"c{i}" for i in range(30)], "count": [20] * 30}).to_csv(
        path, index=False
    )
    result = check_output(path, get_policy("acro", max_table_rows=20), out_dir=tmp_path / "c")
    assert result.outcome == "fail" and "too many" in result.evidence.reasons[0]


def test_metadata_files_are_never_released(tmp_path):
    path = api_table(tmp_path)
    result = check_output(sidecar_path(path), NHS_ENGLAND, out_dir=tmp_path / "c")
    assert result.outcome == "fail"
    assert result.evidence.classification["kind"] == "metadata"


def test_a_file_changed_after_writing_loses_its_metadata(tmp_path):
    path = api_table(tmp_path)
    path.write_text(path.read_text().replace("25", "26"))
    result = check_output(path, NHS_ENGLAND, out_dir=tmp_path / "c")
    assert result.outcome == "needs-review"
    assert any("changed after" in r for r in result.evidence.reasons)
    assert result.evidence.classification["how"] == "shape"


def test_a_broken_sidecar_needs_review(tmp_path):
    path = api_table(tmp_path)
    sidecar_path(path).write_text("{")
    result = check_output(path, NHS_ENGLAND, out_dir=tmp_path / "c")
    assert result.outcome == "needs-review"
    assert any("metadata file is unusable" in r for r in result.evidence.reasons)


def test_row_level_files_fail(tmp_path):
    path = tmp_path / "people.csv"
    pd.DataFrame(
        {
            "sex": ["F", "M", "F", "F"],
            "age_band": ["0-17", "18-64", "0-17", "65+"],
            "bmi": [20.1, 25.3, 22.2, 30.0],
        }
    ).to_csv(path, index=False)
    result = check_output(path, NHS_ENGLAND, out_dir=tmp_path / "c")
    assert result.outcome == "fail"
    assert result.evidence.classification["kind"] == "row-level"


def test_personal_attributes_mean_row_level(tmp_path):
    path = tmp_path / "people.csv"
    pd.DataFrame({"date_of_birth": ["1950-01-01"], "count": [10]}).to_csv(path, index=False)
    assert check_output(path, NHS_ENGLAND, out_dir=tmp_path / "c").outcome == "fail"


def test_a_repeated_group_in_a_count_table_means_row_level(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"sex": ["F", "F"], "count": [10, 20]}).to_csv(path, index=False)
    result = check_output(path, NHS_ENGLAND, out_dir=tmp_path / "c")
    assert result.outcome == "fail" and result.evidence.classification["kind"] == "row-level"


def test_an_unrecognised_table_is_flagged_never_passed(tmp_path):
    path = tmp_path / "summary.csv"
    pd.DataFrame({"group": ["a", "b"], "mean_bmi": [25.1, 27.3]}).to_csv(path, index=False)
    result = check_output(path, NHS_ENGLAND, out_dir=tmp_path / "c")
    assert result.outcome == "needs-review"
    assert result.evidence.classification["kind"] == "unknown"
    assert result.safe_path is None


def test_evidence_record(tmp_path):
    path = api_table(tmp_path)
    result = check_output(path, NHS_ENGLAND, out_dir=tmp_path / "c")
    record = json.loads(result.evidence_path.read_text())
    assert record["schema"] == SCHEMA
    assert record["file"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["file"]["metadata"]["name"] == "by_sex.csv.sdc.json"
    assert record["policy"]["name"] == "nhs-england" and record["policy"]["version"] == "1"
    assert record["policy"]["parameters"]["min_count"] == 8
    assert record["classification"]["how"] == "metadata"
    assert record["outcome"] == "pass-with-changes"
    rules = {r["rule"]: r for r in record["rules"]}
    assert [h["cell"] for h in rules["threshold"]["hits"]] == [{"sex": "U"}]
    assert rules["threshold"]["hits"][0]["action"] == "redacted"
    assert [h["cell"] for h in rules["rounding"]["hits"]] == [{"sex": "M"}]
    safe = result.safe_path
    assert record["safe_file"]["sha256"] == hashlib.sha256(safe.read_bytes()).hexdigest()
    assert safe.read_text() == "sex,count\nF,25\nM,10\nU,[REDACTED]\n"
    assert record["released_table"]["dims"] == ["sex"]


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no output file"):
        check_output(tmp_path / "nope.csv", ACRO)
