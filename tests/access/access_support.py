"""Helpers shared by the access tests (fixtures are in conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from sqlalchemy import text

from carelight.access.accounts import Organization
from carelight.audit.events import AccessEvent

BASE_URL = "http://testserver/fhir"
PASSWORD = "correct horse battery"
ACCOUNT_TABLES = "auth_code, oauth_client, web_session, account"
POPULATION_PEOPLE = 50
GP_ORG = Organization(
    "Y99101-org",
    "Y99101",
    "Brackenfold Medical Centre",
    "https://fhir.carelight.example/Y99101/fhir",
)
TRUST_ORG = Organization(
    "X9A-org", "X9A", "Brackenfold and Harrowgill Teaching Hospitals NHS Trust", None
)


def cheap_hasher() -> PasswordHasher:
    """Argon2id with the smallest parameters: the tests check behaviour, not hashing cost."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def empty_account_tables(engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {ACCOUNT_TABLES} CASCADE"))
    else:
        with engine.begin() as conn:
            for table in ACCOUNT_TABLES.split(", "):
                conn.execute(text(f"DELETE FROM {table}"))


@dataclass
class RecordingTrail:
    """Stands in for the transparency log: keeps what it is given, or fails when told to."""

    events: list[AccessEvent] = field(default_factory=list)
    fail: bool = False

    def record(self, event: AccessEvent) -> int:
        if self.fail:
            raise OSError("disk full")
        self.events.append(event)
        return len(self.events) - 1

    def close(self) -> None:
        pass

    def actions(self) -> list[tuple[str, str, str]]:
        return [(e.action, e.outcome, e.username) for e in self.events]


def copy_database(home: Path, target: Path) -> None:
    """Copy a SQLite store with its write-ahead log, so nothing committed is left behind."""
    for part in home.glob("carelight.db*"):
        shutil.copy(part, target.parent / part.name.replace("carelight.db", target.name))


def cli_env(home: Path, database_url: str | None = None) -> dict[str, str]:
    env = {"CARELIGHT_HOME": str(home), "CARELIGHT_BASE_URL": BASE_URL, "COLUMNS": "200"}
    env["CARELIGHT_DATABASE_URL"] = database_url or f"sqlite:///{home / 'carelight.db'}"
    return env


def load_with_cli(directory: Path, env: dict[str, str]) -> None:
    """`carelight load DIR` as a user runs it (a process of its own, which also closes its
    database connections when it ends)."""
    result = subprocess.run(
        [sys.executable, "-m", "carelight.cli", "load", str(directory), "--batch-size", "5000"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
