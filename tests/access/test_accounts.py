"""Accounts on SQLite and PostgreSQL: creation rules, Argon2 hashing, sign-in checks."""

from __future__ import annotations

import pytest
from access_support import GP_ORG, PASSWORD, TRUST_ORG, cheap_hasher
from argon2 import PasswordHasher
from sqlalchemy import select

from carelight.access import schema
from carelight.access.accounts import (
    MAX_FAILURES,
    AccountError,
    AccountStore,
    principal_for,
)
from carelight.access.principal import Role
from carelight.access.sessions import SessionStore

NHS_NUMBER = "9434765919"  # valid check digit


def stored_hash(accounts: AccountStore, username: str) -> str:
    with accounts.engine.connect() as conn:
        return conn.execute(
            select(schema.account.c.password_hash).where(schema.account.c.username == username)
        ).scalar_one()


def test_a_professional_belongs_to_an_organisation_and_gets_user_scopes(accounts):
    made = accounts.create("GP", Role.GP, password=PASSWORD, organization=GP_ORG)
    assert made.username == "gp"  # usernames are case-insensitive
    got = accounts.get("Gp")
    assert got == made
    assert got.organization_id == "Y99101-org"
    assert got.organization_code == "Y99101"
    assert got.scopes == {"user/*.read", "user/*.write"}
    assert got.password_hash.startswith("$argon2id$")
    assert PASSWORD not in repr(got)
    with pytest.raises(AccountError, match="must belong to an organisation"):
        accounts.create("nurse", Role.NURSE, password=PASSWORD)


def test_a_patients_username_is_their_nhs_number(accounts):
    with pytest.raises(AccountError, match="NHS number"):
        accounts.create("9434765918", Role.PATIENT, password=PASSWORD, patient_id="p1")
    with pytest.raises(AccountError, match="linked to a Patient"):
        accounts.create(NHS_NUMBER, Role.PATIENT, password=PASSWORD)
    made = accounts.create("943 476 5919", Role.PATIENT, password=PASSWORD, patient_id="p1")
    assert (made.username, made.nhs_number, made.patient_id) == (NHS_NUMBER, NHS_NUMBER, "p1")
    assert made.scopes == {"patient/*.read", "patient/Consent.write"}
    # They may type it with spaces when they sign in.
    assert accounts.authenticate("943-476-5919", PASSWORD) == made


def test_a_system_client_writes_as_its_organisations_source(accounts):
    made = accounts.create("source-gp", Role.SYSTEM, password=PASSWORD, organization=GP_ORG)
    assert made.source == "https://fhir.carelight.example/Y99101/fhir"
    assert made.scopes == {"system/*.read", "system/*.write"}
    with pytest.raises(AccountError, match=r"meta\.source"):
        accounts.create("source-trust", Role.SYSTEM, password=PASSWORD, organization=TRUST_ORG)
    principal = principal_for(made)
    assert principal.role is Role.SYSTEM
    assert principal.source == made.source
    assert principal.organization_ref == "Organization/Y99101-org"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"username": "has space"}, "username is 1 to 128"),
        ({"password": "short"}, "at least 12 characters"),
        ({"scopes": {"everything"}}, "not a scope"),
        ({"patient_id": "p1"}, "Only patient accounts"),
        ({"source": "https://x.example/fhir"}, "Only source-system clients"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(accounts, kwargs, message):
    args = {"username": "researcher", "role": Role.RESEARCHER, "password": PASSWORD} | kwargs
    with pytest.raises(AccountError, match=message):
        accounts.create(**args)
    assert accounts.list() == []


def test_names_are_unique(accounts):
    accounts.create("analyst", Role.ANALYST, password=PASSWORD)
    with pytest.raises(AccountError, match="already an account called 'analyst'"):
        accounts.create("Analyst", Role.ANALYST, password=PASSWORD)


def test_authenticate(accounts, gp):
    assert accounts.authenticate("gp", PASSWORD) == gp
    assert accounts.authenticate("gp", PASSWORD + "x") is None
    assert accounts.authenticate("nobody", PASSWORD) is None
    assert accounts.check("nobody", PASSWORD).reason == "unknown account"
    assert accounts.check("gp", "wrong password!").reason == "wrong password"
    accounts.disable("gp")
    assert accounts.check("gp", PASSWORD).reason == "disabled"
    accounts.enable("gp")
    assert accounts.authenticate("gp", PASSWORD) == gp


def test_an_account_without_a_password_cannot_sign_in(accounts):
    accounts.create("admin", Role.ADMIN)  # e.g. signs in through an external provider
    assert accounts.check("admin", "").reason == "unknown account"


class RecordingHasher(PasswordHasher):
    def __init__(self):
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified: list[str] = []

    def verify(self, hash, password):
        self.verified.append(hash)
        return super().verify(hash, password)


def test_unknown_names_cost_a_hash_check_too(accounts, gp):
    """An unknown name is checked against a dummy hash, so timing does not tell it apart."""
    hasher = RecordingHasher()
    checking = AccountStore(accounts.engine, hasher)
    checking.check("nobody", PASSWORD)
    checking.check("gp", PASSWORD)
    assert len(hasher.verified) == 2 and hasher.verified[0] != hasher.verified[1]


def test_repeated_failures_throttle_the_account(accounts, gp):
    now = [1_000_000.0]
    accounts.clock = lambda: now[0]
    for _ in range(MAX_FAILURES):
        assert accounts.check("gp", "not the password").reason == "wrong password"
    # Even the right password is not checked while the account is held back...
    assert accounts.check("gp", PASSWORD).reason == "throttled"
    now[0] += 61
    # ...and a further failure holds it back for longer (doubling).
    assert accounts.check("gp", "not the password").reason == "wrong password"
    now[0] += 61
    assert accounts.check("gp", PASSWORD).reason == "throttled"
    now[0] += 60
    assert accounts.check("gp", PASSWORD).account == gp
    # Success clears the count.
    assert accounts.check("gp", "not the password").reason == "wrong password"
    assert accounts.check("gp", PASSWORD).ok


def test_passwords_are_rehashed_when_the_parameters_change(accounts, gp):
    old = stored_hash(accounts, "gp")
    assert "m=8,t=1,p=1" in old
    stronger = AccountStore(
        accounts.engine, PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    )
    assert stronger.authenticate("gp", "wrong password!") is None
    assert stored_hash(accounts, "gp") == old  # not on a failed sign-in
    assert stronger.authenticate("gp", PASSWORD) is not None
    new = stored_hash(accounts, "gp")
    assert new != old and "m=16,t=2" in new
    # The new hash still verifies, with either hasher (Argon2 hashes carry their parameters).
    assert stronger.authenticate("gp", PASSWORD) is not None
    assert stored_hash(accounts, "gp") == new
    assert AccountStore(accounts.engine, cheap_hasher()).authenticate("gp", PASSWORD)


def test_default_hasher_is_argon2id_with_rfc_9106_parameters(store):
    h = AccountStore(store.engine).hasher
    assert h.type.name == "ID"
    assert (h.time_cost, h.memory_cost, h.parallelism) == (3, 65536, 4)


def test_set_password(accounts, gp):
    accounts.set_password("gp", "a new long password")
    assert accounts.authenticate("gp", PASSWORD) is None
    assert accounts.authenticate("gp", "a new long password") == gp
    with pytest.raises(AccountError, match="no account called 'ghost'"):
        accounts.set_password("ghost", "a new long password")


def test_disabling_ends_web_sessions(accounts, gp):
    sessions = SessionStore(accounts.engine)
    token = sessions.create("gp")
    assert sessions.principal(token).username == "gp"
    accounts.disable("gp")
    assert sessions.principal(token) is None
    accounts.enable("gp")
    assert sessions.principal(token) is None  # ended, not suspended


def test_sessions_expire_and_idle_out(accounts, gp):
    now = [1_000_000.0]
    sessions = SessionStore(accounts.engine, clock=lambda: now[0])
    token = sessions.create("gp")
    assert sessions.principal(token).organization_code == "Y99101"
    assert sessions.principal(token + "x") is None
    now[0] += 29 * 60
    assert sessions.principal(token) is not None  # and that counts as activity
    now[0] += 29 * 60
    assert sessions.principal(token) is not None
    now[0] += 31 * 60
    assert sessions.principal(token) is None  # idle for over 30 minutes
    fresh = sessions.create("gp")
    for _ in range(16):
        now[0] += 29 * 60
        assert sessions.principal(fresh) is not None
    now[0] += 29 * 60
    assert sessions.principal(fresh) is None  # 8 hours is the most, however busy
    sessions.end(fresh)


def test_session_tokens_are_stored_only_as_digests(accounts, gp):
    token = SessionStore(accounts.engine).create("gp")
    with accounts.engine.connect() as conn:
        stored = conn.execute(select(schema.web_session.c.token_hash)).scalars().all()
    assert stored and token not in stored and len(stored[0]) == 64
