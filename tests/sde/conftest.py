"""Fixtures for the secure data environment's tests: a store on each engine with the
transparency log, accounts for each SDE role, and the governance service over them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from carelight.access.accounts import AccountStore, principal_for
from carelight.access.principal import Principal
from carelight.config import Settings
from carelight.sde.governance import Governance

ROLES = {
    "researcher": "researcher",
    "researcher2": "researcher",
    "outsider": "researcher",  # a researcher on no project
    "dac": "data-access-committee",
    "checker1": "output-checker",
    "admin": "admin",
}
SDE_TABLES = (
    "sde_extract_person", "sde_extract", "sde_accreditation", "sde_project_event",
    "sde_project_member", "sde_project", "web_session", "account",
)  # fmt: skip


@dataclass
class SdeWorld:
    store: object
    settings: Settings
    trail: object
    governance: Governance
    accounts: AccountStore

    def who(self, username: str) -> Principal:
        return principal_for(self.accounts.get(username))


def empty_sde_tables(engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(SDE_TABLES)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def world(store, tmp_path):
    from carelight.audit.trail import log_engine, open_trail

    empty_sde_tables(store.engine)
    settings = Settings(home=tmp_path / "home", database_url="unused", base_url=store.base_url)
    settings.ensure_home()
    trail = open_trail(log_engine(settings, store.engine), settings)
    accounts = AccountStore(store.engine, PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    for name, role in ROLES.items():
        accounts.create(name, role, password="correct horse battery")
    yield SdeWorld(store, settings, trail, Governance(store.engine, trail), accounts)
    trail.close()


@pytest.fixture
def app_client(world):
    """The whole server over the world's store and log, in process, and a helper that makes
    a request as one of the accounts (a bearer token from the app's token service)."""
    from fastapi.testclient import TestClient

    from carelight.server import create_app
    from clients import bearer_token

    app = create_app(store=world.store, settings=world.settings)
    app.state.trail.close()
    app.state.trail = world.trail  # one log writer for the test
    world.store.mpi.trail = world.trail  # create_app gave the index the trail just closed

    class Client(TestClient):
        def as_(self, username: str | None) -> dict:
            if username is None:
                return {}
            return {"Authorization": f"Bearer {bearer_token(app, world.who(username))}"}

    with Client(app) as c:
        yield c
