"""`carelight users …` and `carelight token` against a store loaded by `carelight load`."""

from __future__ import annotations

import sqlite3

import pytest
from access_support import BASE_URL, cheap_hasher, cli_env
from typer.testing import CliRunner

from carelight.access.accounts import AccountStore
from carelight.access.demo import DEMO_PASSWORD
from carelight.access.principal import Role
from carelight.access.tokens import TokenService
from carelight.cli import app as carelight
from carelight.config import Settings
from carelight.fhir.store import open_store


@pytest.fixture
def cheap_hashing(monkeypatch):
    """Argon2 at its smallest for the commands (one test keeps the real parameters)."""
    monkeypatch.setattr(
        "carelight.access.cli.AccountStore", lambda engine: AccountStore(engine, cheap_hasher())
    )


@pytest.fixture
def run(cli_home):
    env = cli_env(cli_home)

    def invoke(*args: str, stdin: str | None = None):
        return CliRunner().invoke(carelight, list(args), env=env, input=stdin)

    return invoke


def verify(cli_home, token: str):
    settings = Settings(home=cli_home, database_url="unused", base_url=BASE_URL)
    return TokenService.from_settings(settings).verify(token)


def leaves(cli_home) -> list[bytes]:
    """The transparency log's entries (beside a SQLite store, in its own audit.db)."""
    if not (cli_home / "audit.db").exists():
        return []
    with sqlite3.connect(cli_home / "audit.db") as db:
        return [bytes(r[0]) for r in db.execute("SELECT entry FROM audit_leaf ORDER BY idx")]


def accounts_in(cli_home) -> AccountStore:
    return AccountStore(open_store(f"sqlite:///{cli_home / 'carelight.db'}", BASE_URL).engine)


def test_seed_demo_then_a_token_for_the_gp(run, cli_home):
    """With the real Argon2 parameters, as an operator runs it."""
    first = run("users", "seed-demo")
    assert first.exit_code == 0, first.output
    assert "17 created, 0 already there" in first.output
    assert (
        DEMO_PASSWORD in first.output and "Brackenfold" not in first.output.split("17 created")[1]
    )
    for name in ("gp", "nurse", "socialworker", "carehome", "source-council", "Y99101", "X9C01"):
        assert name in first.output
    again = run("users", "seed-demo")
    assert again.exit_code == 0 and "0 created, 17 already there" in again.output

    logged = leaves(cli_home)
    issued = run("token", "--user", "gp")
    assert issued.exit_code == 0, issued.output
    recorded = leaves(cli_home)[len(logged) :]  # the token is in the transparency log
    assert len(recorded) == 1 and b'"gp"' in recorded[0] and b"Y99101" in recorded[0]
    token = issued.stdout.strip()
    assert issued.stdout == token + "\n"  # the token alone on stdout
    principal = verify(cli_home, token)
    assert (principal.username, principal.role, principal.organization_code) == (
        "gp",
        Role.GP,
        "Y99101",
    )
    assert principal.scopes == {"user/*.read", "user/*.write"}


def test_token_with_a_narrower_scope_and_for_a_patient(cheap_hashing, run, cli_home):
    run("users", "seed-demo")
    narrowed = run("token", "--user", "source-trust", "--scope", "system/Encounter.write")
    principal = verify(cli_home, narrowed.stdout.strip())
    assert principal.scopes == {"system/Encounter.write"}
    assert principal.source == "https://fhir.carelight.example/X9A/fhir"
    patient = next(a for a in accounts_in(cli_home).list() if a.role is Role.PATIENT)
    mine = verify(cli_home, run("token", "--user", patient.username).stdout.strip())
    assert (mine.patient_id, mine.nhs_number) == (patient.patient_id, patient.username)


def test_token_refusals_say_what_to_do(cheap_hashing, run):
    unknown = run("token", "--user", "gp")
    assert unknown.exit_code == 1 and unknown.stdout == ""
    assert "no account called 'gp'" in unknown.stderr and "seed-demo" in unknown.stderr
    run("users", "seed-demo")
    beyond = run("token", "--user", "gp", "--scope", "system/*.write")
    assert beyond.exit_code == 1 and "beyond what this account" in beyond.stderr
    run("users", "disable", "gp")
    disabled = run("token", "--user", "gp")
    assert disabled.exit_code == 1 and "disabled" in disabled.stderr
    run("users", "enable", "gp")
    assert run("token", "--user", "gp").exit_code == 0


def test_seed_demo_without_a_population_fails_clearly(tmp_path):
    result = CliRunner().invoke(carelight, ["users", "seed-demo"], env=cli_env(tmp_path))
    assert result.exit_code == 1
    assert "Organization Y99101 is not in the store" in result.stderr


def test_add_a_patient_and_a_professional(cheap_hashing, run, cli_home):
    patient = accounts_in(cli_home)  # find a patient of a practice other than the demo's
    from carelight.access.directory import nhs_number_of, search

    store = open_store(f"sqlite:///{cli_home / 'carelight.db'}", BASE_URL)
    record = next(
        p
        for p in search(store, "Patient", [("general-practitioner", "Organization/Y99104-org")])
        if nhs_number_of(p)
    )
    nhs = nhs_number_of(record)
    added = run(
        "users", "add", nhs, "--role", "patient", "--password-stdin", stdin="a long password\n"
    )
    assert added.exit_code == 0, added.output
    account = patient.authenticate(nhs, "a long password")
    assert account.patient_id == record["id"] and account.role is Role.PATIENT

    doctor = run(
        "users",
        "add",
        "dr-who",
        "--role",
        "doctor",
        "--organization",
        "X9B",
        "--name",
        "Dr Who",
        "--password-stdin",
        stdin="another long password\n",
    )
    assert doctor.exit_code == 0, doctor.output
    made = patient.get("dr-who")
    assert (made.organization_id, made.display) == ("X9B-org", "Dr Who")

    listed = run("users", "list")
    assert "dr-who" in listed.stdout and "X9B" in listed.stdout and nhs in listed.stdout

    nowhere = run(
        "users",
        "add",
        "x",
        "--role",
        "gp",
        "--organization",
        "Y00000",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert nowhere.exit_code == 1 and "No Organization with ODS code Y00000" in nowhere.stderr
    orgless = run(
        "users", "add", "x", "--role", "gp", "--password-stdin", stdin="a long password\n"
    )
    assert orgless.exit_code == 1 and "must belong to an organisation" in orgless.stderr


def test_set_password_and_register_an_app(cheap_hashing, run, cli_home):
    run("users", "seed-demo")
    changed = run(
        "users", "set-password", "admin", "--password-stdin", stdin="a brand new password\n"
    )
    assert changed.exit_code == 0
    accounts = accounts_in(cli_home)
    assert accounts.authenticate("admin", "a brand new password") is not None
    assert accounts.authenticate("admin", DEMO_PASSWORD) is None
    short = run("users", "set-password", "admin", "--password-stdin", stdin="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.stderr

    app = run(
        "users", "add-app", "my-app", "--redirect-uri", "https://my.example/cb", "--name", "Mine"
    )
    assert app.exit_code == 0, app.output
    bad = run("users", "add-app", "bad-app", "--redirect-uri", "http://my.example/cb")
    assert bad.exit_code == 1 and "cannot be a redirect URI" in bad.stderr


def test_no_token_unless_the_log_records_it(cheap_hashing, run, monkeypatch):
    run("users", "seed-demo")

    class BrokenTrail:
        def record(self, event):
            raise OSError("disk full")

        def close(self):
            pass

    monkeypatch.setattr("carelight.audit.trail.open_trail", lambda engine, settings: BrokenTrail())
    refused = run("token", "--user", "gp")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert "could not record the token, so none was issued" in refused.stderr
