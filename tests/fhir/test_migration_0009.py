"""Migration 0009 drops ``ix_sp_reference_reverse`` (target type and id): every look-up that
follows a reference backwards names the source type and parameter too, which the target index
starts with. A downgrade puts the index back. Either way no search answer changes."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from carelight.fhir.db import MIGRATIONS
from carelight.fhir.search.execute import parse_query_string, run_search
from carelight.fhir.search.query import parse_search

REVERSE = "ix_sp_reference_reverse"


def _to(store, revision: str, up: bool) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.upgrade if up else command.downgrade)(cfg, revision)


def _indexes(store) -> set[str]:
    return {ix["name"] for ix in inspect(store.engine).get_indexes("sp_reference")}


QUERIES = (
    ("Patient", "_id=p1&_revinclude=Observation:subject"),
    ("Patient", "_revinclude=Encounter:subject"),
    ("Patient", "_has:Observation:patient:code=2345-7"),
    ("Patient", "_has:Encounter:subject:status=finished"),
    ("Observation", "subject:Patient.name=smith"),
    ("Observation", "encounter=Encounter/e2"),
    ("Observation", "patient=p2&_include=Observation:encounter"),
)


def _answers(store) -> dict[str, tuple[list[str], list[str]]]:
    out = {}
    for res_type, query in QUERIES:
        result = run_search(store, parse_search(res_type, parse_query_string(query)))
        out[f"{res_type}?{query}"] = (
            sorted(r.res_id for r in result.matches),
            sorted(f"{r.res_type}/{r.res_id}" for r in result.included),
        )
    return out


def _population() -> list[dict]:
    people = [
        {"resourceType": "Patient", "id": "p1", "name": [{"family": "Smith"}]},
        {"resourceType": "Patient", "id": "p2", "name": [{"family": "Jones"}]},
    ]
    encounters = [
        {
            "resourceType": "Encounter",
            "id": f"e{n}",
            "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{patient}"},
        }
        for n, patient, status in ((1, "p1", "finished"), (2, "p2", "in-progress"))
    ]
    observations = [
        {
            "resourceType": "Observation",
            "id": f"o{n}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{patient}"},
            "encounter": {"reference": f"Encounter/{enc}"},
        }
        for n, patient, enc, code in ((1, "p1", "e1", "2345-7"), (2, "p2", "e2", "4548-4"))
    ]
    return [*people, *encounters, *observations]


def test_reverse_index_dropped_and_restored_without_changing_answers(store):
    report = store.bulk_load(_population(), workers=0)
    assert report.errors == [] and report.created == 6
    assert REVERSE not in _indexes(store)
    answers = _answers(store)
    assert answers["Patient?_id=p1&_revinclude=Observation:subject"] == (["p1"], ["Observation/o1"])
    assert answers["Patient?_has:Observation:patient:code=2345-7"] == (["p1"], [])
    assert answers["Patient?_has:Encounter:subject:status=finished"] == (["p1"], [])
    assert answers["Observation?subject:Patient.name=smith"] == (["o1"], [])
    assert answers["Observation?encounter=Encounter/e2"] == (["o2"], [])
    assert answers["Observation?patient=p2&_include=Observation:encounter"] == (
        ["o2"],
        ["Encounter/e2"],
    )

    _to(store, "0008", up=False)
    assert REVERSE in _indexes(store)
    assert _answers(store) == answers

    _to(store, "head", up=True)
    assert REVERSE not in _indexes(store)
    assert _answers(store) == answers
