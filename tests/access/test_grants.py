"""Which scopes an account may be granted, and narrowing a request to them."""

from __future__ import annotations

import re

import pytest

from carelight.access.grants import (
    ScopeRefused,
    all_scopes,
    covers,
    describe,
    narrow,
    parse_scope,
    role_scopes,
)
from carelight.access.principal import Role

PATIENT = role_scopes(Role.PATIENT)
SYSTEM = role_scopes(Role.SYSTEM)


def test_every_role_has_default_scopes():
    for role in Role:
        assert role_scopes(role), role
    assert role_scopes(Role.PATIENT) == {"patient/*.read", "patient/Consent.write"}
    assert role_scopes(Role.GP) == {"user/*.read", "user/*.write"}
    assert role_scopes(Role.SYSTEM) == {"system/*.read", "system/*.write"}
    assert role_scopes(Role.RESEARCHER) == {"user/*.read"}
    assert "system/*.write" in all_scopes() and "patient/Consent.write" in all_scopes()


@pytest.mark.parametrize(
    ("scope", "parsed"),
    [
        ("patient/*.read", ("patient", "*", set("rs"))),
        ("user/Observation.write", ("user", "Observation", set("cud"))),
        ("system/*.*", ("system", "*", set("cruds"))),
        ("patient/Observation.rs", ("patient", "Observation", set("rs"))),
        ("user/Patient.cruds", ("user", "Patient", set("cruds"))),
    ],
)
def test_parse_v1_and_v2_scopes(scope, parsed):
    assert parse_scope(scope) == parsed


@pytest.mark.parametrize(
    "scope",
    ["openid", "patient/*", "patient/*.", "admin/*.read", "user/observation.read", "user/*.sr"],
)
def test_malformed_scopes(scope):
    with pytest.raises(ValueError, match="not a scope this server knows"):
        parse_scope(scope)


def test_covers():
    assert covers("patient/*.read", "patient/Observation.read")
    assert covers("patient/*.read", "patient/Observation.rs")
    assert covers("patient/*.read", "patient/*.s")
    assert not covers("patient/*.read", "patient/Observation.write")
    assert not covers("patient/Consent.write", "patient/Observation.write")
    assert not covers("patient/*.read", "user/*.read")
    assert covers("system/*.*", "system/Encounter.cud")


def test_narrow():
    assert narrow(PATIENT, None) == PATIENT
    assert narrow(PATIENT, "  ") == PATIENT
    assert narrow(PATIENT, "patient/Observation.read patient/Consent.write") == {
        "patient/Observation.read",
        "patient/Consent.write",
    }
    with pytest.raises(ScopeRefused, match=re.escape("'user/*.read' is beyond what this account")):
        narrow(PATIENT, "patient/*.read user/*.read")
    with pytest.raises(ScopeRefused, match=re.escape("'patient/Observation.write' is beyond")):
        narrow(PATIENT, "patient/Observation.write")
    with pytest.raises(ScopeRefused, match="not a scope this server knows"):
        narrow(SYSTEM, "openid")


def test_describe():
    assert describe("patient/*.read") == "Read everything in your own record"
    assert describe("patient/Consent.write") == "Change Consent resources in your own record"
    assert (
        describe("user/*.*") == "Read and change everything in the records you are allowed to see"
    )
