"""The throwaway PostgreSQL cluster (tests/pgcluster.py) and its fixture."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pgcluster import ExternalPostgres, PostgresCluster

pytestmark = pytest.mark.postgres


def test_select_one(postgres_cluster: PostgresCluster | ExternalPostgres) -> None:
    url = postgres_cluster.create_database("pgcluster_select")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_create_insert_select(postgres_cluster: PostgresCluster | ExternalPostgres) -> None:
    url = postgres_cluster.create_database("pgcluster_roundtrip")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("create table t (id int primary key, name text not null)"))
            conn.execute(
                sa.text("insert into t values (:id, :name)"),
                [{"id": 1, "name": "Müller"}, {"id": 2, "name": "Ng"}],
            )
        with engine.connect() as conn:
            rows = conn.execute(sa.text("select id, name from t order by id")).all()
            # C.UTF-8 ctype: lower() handles non-ASCII letters.
            lowered = conn.execute(sa.text("select lower('MÜLLER')")).scalar_one()
        assert [tuple(r) for r in rows] == [(1, "Müller"), (2, "Ng")]
        assert lowered == "müller"
    finally:
        engine.dispose()


def test_create_database_starts_clean(postgres_cluster: PostgresCluster | ExternalPostgres) -> None:
    url = postgres_cluster.create_database("pgcluster_clean")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("create table leftover (x int)"))
        # A connection still open must not block the drop (DROP ... WITH (FORCE)).
        with engine.connect() as held:
            assert postgres_cluster.create_database("pgcluster_clean") == url
            with pytest.raises(sa.exc.DBAPIError):
                held.execute(sa.text("select 1"))
        engine.dispose()
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == []
    finally:
        engine.dispose()


def test_server_version(postgres_cluster: PostgresCluster | ExternalPostgres) -> None:
    engine = sa.create_engine(postgres_cluster.create_database("pgcluster_version"))
    try:
        with engine.connect() as conn:
            version = int(conn.execute(sa.text("show server_version_num")).scalar_one())
            tz = conn.execute(sa.text("show timezone")).scalar_one()
    finally:
        engine.dispose()
    assert version >= 130000
    if isinstance(postgres_cluster, PostgresCluster):
        assert tz == "UTC"


def test_rejects_unsafe_database_names(
    postgres_cluster: PostgresCluster | ExternalPostgres,
) -> None:
    for bad in ("", "1abc", "a-b", 'x"; drop database postgres; --', "a" * 64):
        with pytest.raises(ValueError):
            postgres_cluster.create_database(bad)


def test_private_cluster_lifecycle(postgres_cluster: PostgresCluster | ExternalPostgres) -> None:
    """start/stop a second cluster: reachable on 127.0.0.1, gone afterwards."""
    # The fixture is only a gate: it skips/fails when binaries are missing.
    if not isinstance(postgres_cluster, PostgresCluster):
        pytest.skip("CARELIGHT_TEST_POSTGRES_URL is set: not testing local clusters")
    cluster = PostgresCluster()
    cluster.start()
    root = cluster.root
    assert root is not None and root.is_dir()
    assert cluster.base_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    engine = sa.create_engine(cluster.create_database("lifecycle"))
    try:
        with engine.connect() as conn:
            addr = conn.execute(sa.text("select host(inet_server_addr())")).scalar_one()
        assert addr == "127.0.0.1"
    finally:
        engine.dispose()
        cluster.stop()
    assert not root.exists()
    assert not cluster.running
    cluster.stop()  # idempotent
