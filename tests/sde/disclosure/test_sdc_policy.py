"""Policies: the two built in, overrides, files and the environment variable."""

from __future__ import annotations

import json

import pytest

from carelight.sde.disclosure import ACRO, NHS_ENGLAND, PolicyError, get_policy, load_policy
from carelight.sde.disclosure.policy import ENV_VAR, Policy


def test_nhs_england_redacts_seven_or_fewer_and_rounds_to_five():
    assert NHS_ENGLAND.min_count == 8
    assert NHS_ENGLAND.primary_range == (1, 7)
    assert NHS_ENGLAND.rounding_base == 5
    assert NHS_ENGLAND.margins == "recompute"
    assert not NHS_ENGLAND.zeros_disclosive


def test_acro_defaults():
    assert (ACRO.min_count, ACRO.zeros_disclosive, ACRO.primary_range) == (10, True, (0, 9))
    assert (ACRO.dominance_n, ACRO.dominance_k, ACRO.p_ratio) == (2, 0.9, 0.1)
    assert ACRO.min_residual_df == 10
    assert ACRO.rounding_base == 0


def test_default_is_nhs_england(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert load_policy() is NHS_ENGLAND


def test_environment_names_the_policy(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "acro")
    assert load_policy() is ACRO


def test_overrides_mark_the_version_local():
    p = get_policy("acro", min_count=15)
    assert p.min_count == 15 and p.version == "1+local"
    assert p.parameters()["min_count"] == 15


def test_unknown_name_and_parameter_are_refused():
    with pytest.raises(PolicyError, match="unknown disclosure-control policy 'strict'"):
        get_policy("strict")
    with pytest.raises(PolicyError, match="unknown policy parameter"):
        get_policy("acro", threshold=5)


def test_bad_parameter_values_are_refused():
    with pytest.raises(PolicyError, match="min_count"):
        get_policy("acro", min_count=0)
    with pytest.raises(PolicyError, match="margins"):
        get_policy("acro", margins="sometimes")


def test_policy_from_toml_file(tmp_path, monkeypatch):
    f = tmp_path / "sdc.toml"
    f.write_text('policy = "nhs-england"\n[parameters]\nmin_count = 11\nrounding_base = 10\n')
    p = load_policy(f)
    assert isinstance(p, Policy)
    assert (p.name, p.min_count, p.rounding_base) == ("nhs-england", 11, 10)
    monkeypatch.setenv(ENV_VAR, str(f))
    assert load_policy().min_count == 11


def test_policy_from_json_file(tmp_path):
    f = tmp_path / "sdc.json"
    f.write_text(json.dumps({"policy": "acro", "parameters": {"p_ratio": 0.2}}))
    assert load_policy(f).p_ratio == 0.2


def test_policy_file_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(PolicyError, match="neither a built-in policy"):
        load_policy(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[parameters]\nmin_count = 3\n")
    with pytest.raises(PolicyError, match="which policy it adjusts"):
        load_policy(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(broken)
