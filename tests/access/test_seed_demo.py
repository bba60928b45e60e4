"""`seed_demo` against a loaded synthetic population, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from access_support import cheap_hasher

from carelight.access.accounts import AccountStore
from carelight.access.demo import DEMO_APP, DEMO_PASSWORD, DemoSeedError, seed_demo
from carelight.access.directory import NHS_NUMBER_SYSTEM, nhs_number_of
from carelight.access.oauth import OAuthApps
from carelight.access.principal import Role
from carelight.fhir.search.execute import run_search
from carelight.fhir.search.query import parse_search
from carelight.identity.nhs_number import is_valid_nhs_number

PINNED = {"gp", "nurse", "socialworker", "carehome", "researcher", "checker1", "checker2"} | {
    "dac",
    "analyst",
    "admin",
    "source-gp",
    "source-trust",
    "source-council",
}


def sources_of(store, nhs_number: str) -> set[str]:
    q = parse_search("Patient", [("identifier", f"{NHS_NUMBER_SYSTEM}|{nhs_number}")])
    return {m.json()["meta"]["source"] for m in run_search(store, q).matches}


def test_seed_demo_creates_the_pinned_accounts(population_store):
    accounts = AccountStore(population_store.engine, cheap_hasher())
    report = seed_demo(accounts, population_store)
    assert all(s.created for s in report)
    by_name = {a.username: a for a in accounts.list()}
    assert set(by_name) >= PINNED
    expected = {
        "gp": (Role.GP, "Y99101", "Brackenfold Medical Centre"),
        "nurse": (Role.NURSE, "X9A", "Brackenfold and Harrowgill Teaching Hospitals NHS Trust"),
        "socialworker": (Role.SOCIAL_WORKER, "X99LB", "Calderbrook Council Adult Social Care"),
        "carehome": (Role.CARE_HOME, "X9C01", "Heather Lodge Care Home"),
        "checker1": (Role.OUTPUT_CHECKER, None, None),
        "checker2": (Role.OUTPUT_CHECKER, None, None),
        "dac": (Role.DATA_ACCESS_COMMITTEE, None, None),
        "admin": (Role.ADMIN, None, None),
        "source-gp": (Role.SYSTEM, "Y99101", "Brackenfold Medical Centre"),
        "source-trust": (
            Role.SYSTEM,
            "X9A",
            "Brackenfold and Harrowgill Teaching Hospitals NHS Trust",
        ),
        "source-council": (Role.SYSTEM, "X99LB", "Calderbrook Council Adult Social Care"),
    }
    for name, (role, code, org_name) in expected.items():
        account = by_name[name]
        assert (account.role, account.organization_code, account.organization_name) == (
            role,
            code,
            org_name,
        ), name
        if code:
            assert account.organization_id == f"{code}-org"
        assert accounts.authenticate(name, DEMO_PASSWORD) == account
    # Source clients write as their system does in the loaded data.
    for name, code in (
        ("source-gp", "Y99101"),
        ("source-trust", "X9A"),
        ("source-council", "X99LB"),
    ):
        assert by_name[name].source == f"https://fhir.carelight.example/{code}/fhir"
    assert OAuthApps(population_store.engine).get(DEMO_APP) is not None


def test_demo_patients_are_registered_at_the_gp_and_known_elsewhere(population_store):
    accounts = AccountStore(population_store.engine, cheap_hasher())
    seed_demo(accounts, population_store)
    patients = [a for a in accounts.list() if a.role is Role.PATIENT]
    assert len(patients) == 3
    for account in patients:
        assert is_valid_nhs_number(account.username) and account.nhs_number == account.username
        record = population_store.read("Patient", account.patient_id).json()
        assert nhs_number_of(record) == account.username
        assert record["meta"]["source"] == "https://fhir.carelight.example/Y99101/fhir"
        assert {"reference": "Organization/Y99101-org"}.items() <= record["generalPractitioner"][
            0
        ].items()
        assert account.display and account.display != account.username
        assert accounts.authenticate(account.username, DEMO_PASSWORD) == account
    # The first is known to at least one other organisation (the population has such people).
    assert len(sources_of(population_store, patients[0].username)) >= 1
    best = max(len(sources_of(population_store, p.username)) for p in patients)
    assert best >= 2


def test_seed_demo_is_idempotent(population_store):
    accounts = AccountStore(population_store.engine, cheap_hasher())
    first = seed_demo(accounts, population_store)
    before = accounts.list()
    hashes = {a.username: a.password_hash for a in before}
    second = seed_demo(accounts, population_store)
    assert [s.username for s in second] == [s.username for s in first]
    assert not any(s.created for s in second)
    after = accounts.list()
    assert after == before
    assert {a.username: a.password_hash for a in after} == hashes


def test_seed_demo_needs_the_population(store, accounts):
    with pytest.raises(DemoSeedError, match="Organization Y99101 is not in the store") as caught:
        seed_demo(accounts, store)
    assert "carelight load" in str(caught.value)
    assert accounts.list() == []
