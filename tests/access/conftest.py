"""Fixtures for the access tests: accounts on both engines, an app with sign-in wired, a
recording transparency log, and a small synthetic population loaded once per engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from access_support import (
    BASE_URL,
    GP_ORG,
    PASSWORD,
    POPULATION_PEOPLE,
    RecordingTrail,
    cheap_hasher,
    cli_env,
    copy_database,
    empty_account_tables,
    load_with_cli,
)
from fastapi import Request
from fastapi.testclient import TestClient

from carelight.access.accounts import AccountStore
from carelight.access.authn import PrincipalMiddleware
from carelight.access.principal import Role
from carelight.access.services import AccessServices
from carelight.config import Settings


@pytest.fixture
def accounts(store) -> AccountStore:
    empty_account_tables(store.engine)
    return AccountStore(store.engine, cheap_hasher())


@pytest.fixture
def trail() -> RecordingTrail:
    return RecordingTrail()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home", database_url="unused", base_url=BASE_URL)


@pytest.fixture
def services(store, settings, accounts) -> AccessServices:
    made = AccessServices.create(settings, store.engine, hasher=accounts.hasher)
    made.accounts = accounts
    return made


@pytest.fixture
def app(store, settings, services, trail):
    """The real app with PrincipalMiddleware, a recording trail and a /whoami route."""
    from carelight.server import create_app

    application = create_app(store=store, settings=settings)
    application.state.access = services
    real_trail = getattr(application.state, "trail", None)
    if real_trail is not None:
        real_trail.close()  # replaced by the recording one
    application.state.trail = trail
    if not any(m.cls is PrincipalMiddleware for m in application.user_middleware):
        application.add_middleware(PrincipalMiddleware)  # until server.py adds it itself

    @application.get("/whoami")
    def whoami(request: Request):
        p = request.state.principal
        return {
            "auth": request.state.auth,
            "username": p.username if p else None,
            "role": p.role.value if p else None,
            "organization": p.organization_code if p else None,
            "scopes": sorted(p.scopes) if p else [],
        }

    return application


@pytest.fixture
def web(app):
    with TestClient(app) as client:
        yield client


@pytest.fixture
def gp(accounts):
    return accounts.create("gp", Role.GP, password=PASSWORD, display="Dr Test", organization=GP_ORG)


@pytest.fixture
def source_gp(accounts):
    return accounts.create("source-gp", Role.SYSTEM, password=PASSWORD, organization=GP_ORG)


# -- a synthetic population, loaded once per engine ------------------------------------------
@pytest.fixture(scope="session")
def population_dir(tmp_path_factory) -> Path:
    from carelight.synth import generate

    out = tmp_path_factory.mktemp("population") / "synth"
    generate(out, POPULATION_PEOPLE, seed=1, workers=1)
    return out


@pytest.fixture(scope="session")
def population_home(tmp_path_factory, population_dir) -> Path:
    """A CARELIGHT_HOME whose SQLite store holds the population, loaded by `carelight load`."""
    home = tmp_path_factory.mktemp("population-home")
    load_with_cli(population_dir, cli_env(home))
    return home


@pytest.fixture
def cli_home(tmp_path, population_home) -> Path:
    """A private copy of the loaded SQLite home, for commands that change it."""
    home = tmp_path / "cli-home"
    home.mkdir()
    copy_database(population_home, home / "carelight.db")
    return home


@pytest.fixture(scope="session")
def _population_postgres_url(request, tmp_path_factory, population_dir) -> str:
    cluster = request.getfixturevalue("postgres_cluster")
    url = cluster.create_database("access_population")  # not the shared store: nobody empties it
    load_with_cli(population_dir, cli_env(tmp_path_factory.mktemp("population-pg"), url))
    return url


@pytest.fixture
def population_store(engine_name, request, tmp_path, population_home):
    """A store holding the synthetic population, with no accounts, on each engine."""
    from carelight.fhir.store import open_store

    if engine_name == "sqlite":
        copy_database(population_home, tmp_path / "population.db")
        url = f"sqlite:///{tmp_path / 'population.db'}"
    else:
        url = request.getfixturevalue("_population_postgres_url")
    s = open_store(url, BASE_URL)
    empty_account_tables(s.engine)
    yield s
    s.engine.dispose()
