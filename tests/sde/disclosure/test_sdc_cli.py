"""The ``check`` command: outcome, exit code, evidence written."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from carelight.sde.disclosure.cli import app

runner = CliRunner()


def write(tmp_path, name, rows):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_check_passes_with_changes_and_writes_evidence(tmp_path):
    path = write(tmp_path, "t.csv", {"region": ["a", "b"], "count": [3, 42]})
    result = runner.invoke(
        app, ["check", str(path), "--policy", "nhs-england", "--out", str(tmp_path / "c")]
    )
    assert result.exit_code == 0, result.output
    assert "t.csv: pass-with-changes (policy nhs-england v1)" in result.output
    assert (tmp_path / "c" / "t.csv").read_text() == "region,count\na,[REDACTED]\nb,40\n"
    assert (tmp_path / "c" / "t.csv.evidence.json").exists()


def test_check_exit_codes(tmp_path):
    row_level = write(tmp_path, "p.csv", {"patient_id": ["x", "y"], "count": [10, 10]})
    assert runner.invoke(app, ["check", str(row_level)]).exit_code == 2
    unknown = write(tmp_path, "u.csv", {"g": ["a", "b"], "mean_x": [1.5, 2.5]})
    assert runner.invoke(app, ["check", str(unknown)]).exit_code == 1


def test_check_json_and_released(tmp_path):
    first = write(tmp_path, "by_sex.csv", {"sex": ["F", "M"], "count": [114, 150]})
    out = tmp_path / "c"
    assert runner.invoke(app, ["check", str(first), "-p", "acro", "-o", str(out)]).exit_code == 0
    second = write(
        tmp_path,
        "by_age.csv",
        {"sex": ["F", "F", "F"], "age": ["a", "b", "c"], "count": [48, 63, 3]},
    )
    result = runner.invoke(
        app,
        [
            "check",
            str(second),
            "-p",
            "acro",
            "-o",
            str(out),
            "--json",
            "-r",
            str(out / "by_sex.csv.evidence.json"),
        ],
    )
    (record,) = json.loads(result.output)
    assert record["audit"]["linked_tables"] == ["by_sex.csv"]


def test_bad_policy_is_reported(tmp_path):
    path = write(tmp_path, "t.csv", {"region": ["a"], "count": [30]})
    result = runner.invoke(app, ["check", str(path), "--policy", "lenient"])
    assert result.exit_code == 2
    assert "lenient" in result.output


def test_policy_command(tmp_path):
    result = runner.invoke(app, ["policy", "acro"])
    assert result.exit_code == 0
    assert json.loads(result.output)["parameters"]["min_count"] == 10


def test_files_checked_together_are_checked_against_each_other(tmp_path):
    first = write(
        tmp_path, "a.csv", {"sex": ["F", "F", "F"], "age": ["a", "b", "c"], "count": [48, 63, 3]}
    )
    second = write(tmp_path, "b.csv", {"sex": ["F"], "count": [114]})
    out = tmp_path / "c"
    result = runner.invoke(app, ["check", str(first), str(second), "-p", "acro", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "b.csv").read_text() == "sex,count\nF,[REDACTED]\n"
