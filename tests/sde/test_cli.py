"""``carelight sde …`` as an operator types it (in process): the lifecycle with its refusals as
clear messages and exit code 1, accreditation, and an extract of an empty store."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from carelight.cli import app


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("CARELIGHT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CARELIGHT_DATABASE_URL", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


def test_the_lifecycle_from_the_command_line(run):
    from carelight.access.accounts import AccountStore
    from carelight.config import Settings
    from carelight.fhir.store import open_store

    settings = Settings.from_env()
    settings.ensure_home()
    store = open_store(settings.database_url, settings.base_url)
    accounts = AccountStore(store.engine)
    for name, role in (("researcher", "researcher"), ("dac", "data-access-committee")):
        if accounts.get(name) is None:
            accounts.create(name, role)
    store.engine.dispose()
    made = run(
        "sde", "project", "create", "--as", "researcher", "--title", "Falls", "--lay-summary",
        "Why people fall.", "--purpose", "Prevention.", "--legal-basis", "public-task",
        "--organisation", "Uni", "--tables", "patients,vaccinations", "--start", "2026-01-01",
        "--end", "2027-01-01",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "Created project 1 (draft)" in made.output
    refused = run("sde", "project", "approve", "1", "--as", "dac")
    assert refused.exit_code == 1 and "only when submitted" in refused.output
    assert run("sde", "extract", "--project", "1").exit_code == 1
    assert run("sde", "project", "submit", "1", "--as", "researcher").exit_code == 0
    approved = run("sde", "project", "approve", "1", "--as", "dac", "--reason", "Good.")
    assert approved.exit_code == 0 and "now approved" in approved.output
    bad = run("sde", "accredit", "researcher", "--as", "researcher", "--body", "ONS", "--from",
              "2026-01-01", "--to", "2027-01-01")  # fmt: skip
    assert bad.exit_code == 1 and "data access committee" in bad.output
    ok = run("sde", "accredit", "researcher", "--as", "dac", "--body", "ONS", "--from",
             "2026-01-01", "--to", "2030-01-01")  # fmt: skip
    assert ok.exit_code == 0, ok.output
    extracted = run("sde", "extract", "--project", "1")
    assert extracted.exit_code == 0, extracted.output
    assert "0 people" in extracted.output
    shown = run("sde", "project", "show", "1")
    assert "approved" in shown.output and "Falls" in shown.output
    listed = run("sde", "project", "list", "--json")
    assert '"status": "approved"' in listed.output
