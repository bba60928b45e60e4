"""Migrations 0006 and 0007 backfill care relationships and person links for resources already
stored, so an upgraded store answers the gate exactly as a freshly loaded one."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import select

from carelight.fhir import schema
from carelight.fhir.db import MIGRATIONS
from carelight.synth.cli import run


def _rows(store) -> tuple[set, set]:
    with store.engine.connect() as conn:
        care = set(
            conn.execute(
                select(
                    schema.care_relationship.c.res_pk,
                    schema.care_relationship.c.patient_id,
                    schema.care_relationship.c.org,
                    schema.care_relationship.c.kind,
                    schema.care_relationship.c.period_start,
                    schema.care_relationship.c.period_end,
                )
            ).all()
        )
        links = conn.execute(select(schema.person_link)).all()
    # Person ids differ (a fresh load draws new ones); the grouping of records must not.
    persons: dict[str, set] = {}
    for res_pk, patient_id, person in links:
        persons.setdefault(person, set()).add((res_pk, patient_id))
    return care, {frozenset(group) for group in persons.values()}


def _to(store, revision: str, up: bool) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.upgrade if up else command.downgrade)(cfg, revision)


def test_upgrade_backfills_what_a_fresh_load_writes(store, tmp_path):
    from rich.console import Console

    from carelight.cli import ndjson_files, read_ndjson

    out = tmp_path / "synth"
    run(60, 3, out, 0, Console(quiet=True))
    items = [
        (label, line, f"urn:carelight:source:{path.parent.name}")
        for path in ndjson_files(out)
        for label, line in read_ndjson(path)
    ]
    report = store.bulk_load(items, workers=0)
    assert report.errors == []
    fresh_care, fresh_people = _rows(store)
    assert fresh_care and fresh_people
    assert {kind for _, _, _, kind, _, _ in fresh_care} >= {"registration", "encounter"}

    _to(store, "0005", up=False)  # drops the tables (and break_glass)
    _to(store, "head", up=True)  # recreates them, filled from the stored resources
    assert _rows(store) == (fresh_care, fresh_people)
