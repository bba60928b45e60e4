"""Migration 0008 drops the index rows of derived search parameters (``combo-code``,
``patient``…), which searches now answer from the rows they are derived from; a downgrade
writes them back. Either way no search answer changes."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import select

from carelight.fhir import schema
from carelight.fhir.db import MIGRATIONS
from carelight.fhir.search.execute import match_ids, parse_query_string

TABLES = (schema.sp_token, schema.sp_quantity, schema.sp_reference)


def _rows(store) -> dict[str, set]:
    with store.engine.connect() as conn:
        return {t.name: set(conn.execute(select(t)).all()) for t in TABLES}


def _to(store, revision: str, up: bool) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.upgrade if up else command.downgrade)(cfg, revision)


def _obs(oid: str, patient: str, code: str, component: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": 5.0, "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": component}]},
                "valueQuantity": {"value": 80, "system": "http://unitsofmeasure.org", "code": "mm"},
            }
        ],
    }


QUERIES = (
    "combo-code=8480-6",
    "combo-code=2345-7",
    "combo-value-quantity=80",
    "patient=p1",
    "patient:missing=true",
    "combo-code:missing=false",
)


def _answers(store) -> dict[str, list[str]]:
    with store.engine.connect() as conn:
        return {
            q: sorted(match_ids(store, conn, "Observation", parse_query_string(q), 100))
            for q in QUERIES
        }


def test_upgrade_drops_derived_rows_and_downgrade_restores_them(store):
    patients = [{"resourceType": "Patient", "id": p} for p in ("p1", "p2")]
    group = {"resourceType": "Group", "id": "g1", "type": "person", "actual": True}
    observations = [
        _obs("o1", "p1", "2345-7", "8480-6"),
        _obs("o2", "p2", "8480-6", "8480-6"),  # the same code twice: one row each way
        {**_obs("o3", "p1", "2345-7", "8462-4"), "subject": {"reference": "Group/g1"}},
    ]
    report = store.bulk_load([*patients, group, *observations], workers=0)
    assert report.errors == []
    fresh, answers = _rows(store), _answers(store)
    assert not any(r.param.startswith("combo-") for r in fresh["sp_token"] | fresh["sp_quantity"])
    assert not any(r.param == "patient" for r in fresh["sp_reference"])
    assert answers["combo-code=8480-6"] == ["o1", "o2"]
    assert answers["patient=p1"] == ["o1"]
    assert answers["patient:missing=true"] == ["o3"]

    _to(store, "0007", up=False)
    old = _rows(store)
    combo = {(r.res_pk, r.system, r.code) for r in old["sp_token"] if r.param == "combo-code"}
    parts = {
        (r.res_pk, r.system, r.code)
        for r in old["sp_token"]
        if r.param in ("code", "component-code")
    }
    assert combo == parts and len(combo) == 5
    patient = {(r.res_pk, r.target_id) for r in old["sp_reference"] if r.param == "patient"}
    assert len(patient) == 2  # o1 and o2; o3's subject is a Group
    assert {k: v - old[k] for k, v in fresh.items()} == {k: set() for k in fresh}

    _to(store, "head", up=True)
    assert _rows(store) == fresh
    assert _answers(store) == answers
