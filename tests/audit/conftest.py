"""Fixtures for the transparency log's tests: a Trail over the ``store`` fixture's database.

``trail`` (and ``log``) run on every engine the store fixture is parametrised with (SQLite and
PostgreSQL). On PostgreSQL the session's database is shared, so the log's tables are emptied
first (the store fixture empties only the store's own tables).
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from carelight.audit.schema import TABLES
from carelight.config import Settings

TEST_BASE_URL = "http://testserver/fhir"


def empty_log(engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(t.name for t in TABLES)}"))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home", database_url="unused", base_url=TEST_BASE_URL)


@pytest.fixture
def trail(store, settings):
    from carelight.audit.trail import open_trail

    empty_log(store.engine)
    t = open_trail(store.engine, settings, origin="test.carelight.example/log")
    yield t
    t.close()


@pytest.fixture
def log(trail):
    return trail.log
