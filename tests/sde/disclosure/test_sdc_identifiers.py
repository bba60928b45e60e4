"""Identifier and pseudonym columns: by name, by value and by one distinct value per row."""

from __future__ import annotations

import base64
import hashlib

import pandas as pd
import pytest

from carelight.sde.disclosure import check_output
from carelight.sde.disclosure.identifiers import find_identifier_columns


@pytest.mark.parametrize(
    "name",
    [
        "patient_id",
        "Patient ID",
        "person",
        "pseudonym",
        "nhs_number",
        "NHS no",
        "mrn",
        "hospital_number",
        "subject_id",
        "id",
        "uuid",
    ],
)
def test_identifier_names(name):
    assert [f.column for f in find_identifier_columns({name: ["a", "b"]})] == [name]


@pytest.mark.parametrize(
    "name",
    [
        "sex",
        "age_band",
        "region",
        "practice",
        "practice_id",
        "ethnicity",
        "count",
        "resident",
        "client",
        "personal_care_hours",
    ],
)
def test_ordinary_names_pass(name):
    assert find_identifier_columns({name: ["F", "M"]}) == []


def test_hash_values():
    values = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(5)]
    (f,) = find_identifier_columns({"group": values})
    assert "hexadecimal" in f.reason


def test_base64_values():
    values = [
        base64.urlsafe_b64encode(hashlib.sha256(str(i).encode()).digest()).decode()
        for i in range(5)
    ]
    (f,) = find_identifier_columns({"group": values})
    assert "base64" in f.reason


def test_nhs_numbers_with_valid_check_digits():
    (f,) = find_identifier_columns({"group": ["943 476 5919", "9434765870", "943-476-5870"]})
    assert "NHS" in f.reason


def test_ten_digit_codes_without_nhs_check_digits_are_labels():
    assert find_identifier_columns({"code": ["1234567890", "1234567891", "1234567892"]}) == []


def test_one_distinct_token_per_row():
    tokens = [f"ab{i:08d}xz" for i in range(30)]
    (f,) = find_identifier_columns({"group": tokens})
    assert "one distinct" in f.reason


def test_clinical_and_area_codes_are_labels():
    snomed = [str(73211009 + i) for i in range(30)]
    areas = [f"E0200{i:04d}" for i in range(30)]
    assert find_identifier_columns({"code": snomed, "msoa": areas}) == []


def test_wide_column_labels_are_checked():
    headers = [hashlib.md5(str(i).encode()).hexdigest() for i in range(4)]
    (f,) = find_identifier_columns({}, headers=headers)
    assert f.column == "(column labels)"


def test_a_table_with_a_pseudonym_column_fails(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"pseudo_id": ["x1", "x2"], "count": [20, 30]}).to_csv(path, index=False)
    result = check_output(path, "nhs-england", out_dir=tmp_path / "c")
    assert result.outcome == "fail"
    assert result.safe_path is None
    (rule,) = [r for r in result.evidence.rules if r.rule == "identifiers"]
    assert rule.hits[0].cell == {"column": "pseudo_id"}
