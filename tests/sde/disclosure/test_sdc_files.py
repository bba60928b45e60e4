"""File rules: types, sizes, metadata, row-level files, and the evidence record."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from sdc_support import REDACTED, microdata, read_long

from carelight.sde.disclosure import (
    ACRO,
    NHS_ENGLAND,
    PublishedTable,
    check_output,
    check_outputs,
    get_policy,
    outputs,
    released_tables,
)
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
    assert record["checker"]["name"] == "carelight.sde.disclosure"
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


def test_a_job_folder_is_checked_file_by_file_against_its_siblings(tmp_path, monkeypatch):
    """A script writes its outputs through the API into the job's folder; the checker takes
    each file in turn, and a table is checked against the job's other tables too."""
    monkeypatch.setenv(outputs.OUTPUT_DIR_ENV, str(tmp_path / "job"))
    df = microdata(
        {
            ("F", "a0"): 48,
            ("F", "a1"): 63,
            ("F", "a2"): 3,
            ("M", "a0"): 52,
            ("M", "a1"): 61,
            ("M", "a2"): 37,
        }
    )
    outputs.write("a_by_sex_age.csv", outputs.crosstab(df, "sex", "age", margins=False))
    outputs.write("b_by_sex.csv", outputs.table(df, "sex"))
    (tmp_path / "job" / "notes.txt").write_text("what I did")
    results = check_outputs(tmp_path / "job", "acro")
    assert [r.evidence.file["name"] for r in results] == [
        "a_by_sex_age.csv",
        "b_by_sex.csv",
        "notes.txt",
    ]
    assert [r.outcome for r in results] == [
        "pass-with-changes",
        "pass-with-changes",
        "needs-review",
    ]
    assert read_long(results[1].safe_path) == {"F": REDACTED, "M": "150"}


def test_check_policy_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CARELIGHT_SDC_POLICY", "acro")
    path = tmp_path / "t.csv"
    pd.DataFrame({"region": ["a"], "count": [9]}).to_csv(path, index=False)
    result = check_output(path, out_dir=tmp_path / "c")
    assert result.evidence.policy["name"] == "acro"
    assert result.outcome == "pass-with-changes"


def test_released_table_round_trips_through_the_evidence(tmp_path):
    result = check_output(api_table(tmp_path), ACRO, out_dir=tmp_path / "c")
    (from_file,) = released_tables([result.evidence_path])
    assert from_file == result.published
    assert PublishedTable.from_dict(result.published.to_dict()) == result.published


def test_an_unexpected_error_fails_closed(tmp_path, monkeypatch):
    import carelight.sde.disclosure.check as check_module

    def broken(*args, **kwargs):
        raise RuntimeError("boom with 42 patients")

    monkeypatch.setattr(check_module, "check_count_table", broken)
    result = check_output(api_table(tmp_path), ACRO, out_dir=tmp_path / "c")
    assert result.outcome == "fail" and result.safe_path is None
    assert "RuntimeError" in result.evidence.reasons[-1]
    assert "boom" not in result.evidence_path.read_text()
