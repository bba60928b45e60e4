"""Shared pytest set-up for Carelight.

Fixtures
--------
``postgres_cluster`` (session scope)
    A running PostgreSQL server (see ``tests/pgcluster.py``). Use it as::

        def test_something(postgres_cluster):
            url = postgres_cluster.create_database("mytest")  # SQLAlchemy URL
            engine = sqlalchemy.create_engine(url)

    ``create_database`` drops the database first if it exists, so each test can
    ask for a clean one by name. Tests that use this fixture are marked
    ``postgres`` automatically, so ``pytest -m "not postgres"`` leaves them
    (and the server start) out.

    With pytest-xdist each worker process gets its own cluster: nothing is
    shared between workers, so no locking is needed and one worker's crash
    cannot take the others' server down. Starting one takes 0.5-1.5 s.

    Environment:

    ``CARELIGHT_TEST_POSTGRES_URL``
        Use this existing server instead of starting one, e.g.
        ``postgresql+psycopg://me:secret@db.local:5432`` (a database in the
        URL is only used to connect for CREATE/DROP DATABASE; default
        ``postgres``). Databases are then created as
        ``carelight_test_<worker>_<name>``, never touching other databases,
        and dropped at the end of the session. The URL names the database to
        use, so tests must use the returned URL, not build their own.
    ``CI=true``
        Nothing may be skipped for a missing component: without server
        binaries the fixture fails the tests that need it instead of skipping
        them. Outside CI they are skipped with the reason.

Helpers
-------
``skip_or_fail(reason)``
    For fixtures that need something installed (PostgreSQL now, Chromium
    later): skips outside CI, fails under ``CI=true``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from care_support import care_population  # noqa: F401  (a shared session fixture)
from clients import bearer_token, source_client_principal
from patient_support import care_patient  # noqa: F401  (a shared session fixture)
from pgcluster import ExternalPostgres, PostgresCluster, PostgresError, find_server_binaries


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    """Skip the requesting test, or under CI fail it: CI must not hide a missing component."""
    if in_ci():
        pytest.fail(
            f"{reason} (CI=true: a missing component is an error, not a skip)", pytrace=False
        )
    pytest.skip(reason)


def _xdist_worker() -> str:
    # "gw0", "gw1", ... under pytest-xdist; "main" without it.
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def pytest_configure(config: pytest.Config) -> None:
    # The marker is declared in pyproject.toml too; registering it here keeps
    # --strict-markers happy if that list changes.
    if not any(line.startswith("postgres:") for line in config.getini("markers")):
        config.addinivalue_line("markers", "postgres: runs against the PostgreSQL engine")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster | ExternalPostgres]:
    """A PostgreSQL server for this test session (this xdist worker); see the module docstring."""
    external = os.environ.get("CARELIGHT_TEST_POSTGRES_URL", "").strip()
    server: PostgresCluster | ExternalPostgres
    if external:
        server = ExternalPostgres(external, name_prefix=f"carelight_test_{_xdist_worker()}_")
    else:
        bindir = find_server_binaries()
        if bindir is None:
            skip_or_fail(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: "
                "run `make test`, or apt-get install postgresql, "
                "or set CARELIGHT_TEST_POSTGRES_URL"
            )
        server = PostgresCluster(bindir)
    try:
        server.start()
        problem = None
    except PostgresError as exc:
        problem = str(exc)
    if problem is not None:
        # Binaries present (or a URL given) but no server: always a failure,
        # never a skip, so a broken set-up is noticed. Raised outside the
        # except block to keep the report free of chained tracebacks.
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------
# Store fixtures
# (owned by the store engineer; add them below this line)
# ---------------------------------------------------------------------------

ENGINES = ("sqlite", "postgresql")
_TABLES = (
    "sp_token", "sp_string", "sp_date", "sp_number", "sp_quantity", "sp_reference", "sp_uri",
    "compartment", "care_relationship", "person_link", "resource_version", "resource",
    "export_job", "break_glass", "audit_leaf", "audit_node", "audit_patient", "audit_checkpoint",
    "mpi_record", "mpi_block", "mpi_review", "mpi_model",
)  # fmt: skip
TEST_BASE_URL = "http://testserver/fhir"


@pytest.fixture(scope="session")
def _postgres_store_url(request: pytest.FixtureRequest) -> str:
    """One migrated PostgreSQL database per worker; tests empty it before use."""
    cluster = request.getfixturevalue("postgres_cluster")
    url = cluster.create_database("store")
    from carelight.fhir.store import open_store

    store = open_store(url, TEST_BASE_URL)
    store.engine.dispose()
    return url


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
    return request.param


@pytest.fixture
def store(engine_name: str, request: pytest.FixtureRequest, tmp_path):
    """An empty store on each engine the project claims: SQLite and PostgreSQL."""
    from sqlalchemy import text

    from carelight.fhir.store import open_store

    if engine_name == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'store.db'}", TEST_BASE_URL)
    else:
        url = request.getfixturevalue("_postgres_store_url")
        s = open_store(url, TEST_BASE_URL, run_migrations=False)
        with s.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY CASCADE"))
    yield s
    s.engine.dispose()


@pytest.fixture
def client(store, tmp_path):
    """An in-process HTTP client for the API over ``store`` (no server started)."""
    from fastapi.testclient import TestClient

    from carelight.config import Settings
    from carelight.server import create_app

    settings = Settings(home=tmp_path / "home", database_url="unused", base_url=TEST_BASE_URL)
    app = create_app(store=store, settings=settings)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {bearer_token(app, source_client_principal())}"
        yield c
