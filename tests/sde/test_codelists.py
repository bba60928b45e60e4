"""Codelists from CSV: the caller's column, optional categories, codes checked for their system."""

from __future__ import annotations

import re

import pytest

from carelight.sde.query import CodelistError, codelist, codelist_from_csv, tables
from carelight.sde.query.codelists import check_code, verhoeff_check_digit


def write(tmp_path, text, name="codes.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_codes_and_categories_from_named_columns(tmp_path):
    path = write(
        tmp_path,
        "code,term,type\n73211009,Diabetes mellitus,any\n44054006,Type 2 diabetes,t2\n\n,blank,\n",
    )
    codes = codelist_from_csv(path, column="code", category_column="type")
    assert codes.codes == {"73211009", "44054006"}
    assert codes.categories == {"73211009": "any", "44054006": "t2"}
    e = tables.clinical_events
    assert e.snomedct_code.is_in(codes).type is bool
    assert e.snomedct_code.to_category(codes).type is str


def test_a_missing_column_lists_the_columns(tmp_path):
    path = write(tmp_path, "snomed,term\n73211009,x\n")
    with pytest.raises(CodelistError, match="no column 'code'; its columns are: snomed, term"):
        codelist_from_csv(path, column="code")


@pytest.mark.parametrize(
    ("system", "bad", "why"),
    [
        ("snomedct", "7.32E+07", "not all digits"),
        ("snomedct", "73211008", "Verhoeff"),
        ("snomedct", "01234", "6 to 18 digits"),
        ("dmd", "E11", "not all digits"),
        ("icd10", "73211009", "ICD-10"),
        ("loinc", "4548-3", "LOINC"),
    ],
)
def test_codes_are_checked_against_their_system(tmp_path, system, bad, why):
    path = write(tmp_path, f"code\n{bad}\n")
    with pytest.raises(CodelistError, match=re.escape(f"line 2: '{bad}'") + ".*" + why):
        codelist_from_csv(path, column="code", system=system)


@pytest.mark.parametrize(
    ("system", "good"),
    [
        ("snomedct", "73211009"),
        ("snomedct", "999000011000000103"),
        ("dmd", "39113611000001102"),
        ("icd10", "E11"),
        ("icd10", "E11.9"),
        ("icd10", "I10X"),
        ("loinc", "4548-4"),
        ("loinc", "2093-3"),
        ("any", "whatever"),
    ],
)
def test_well_formed_codes_pass(system, good):
    assert check_code(good, system) is None


def test_check_digits_round_trip():
    for body in ("7321100", "3911361100000110", "123456"):
        assert check_code(body + verhoeff_check_digit(body), "snomedct") is None


def test_unknown_system_and_missing_file(tmp_path):
    with pytest.raises(CodelistError, match="unknown code system 'read'"):
        codelist(["x"], "read")
    with pytest.raises(CodelistError, match="no codelist file"):
        codelist_from_csv(tmp_path / "absent.csv", column="code")
    with pytest.raises(CodelistError, match="has no codes"):
        codelist_from_csv(write(tmp_path, "code\n\n"), column="code")
