"""A patient's "how my data is used": approved projects, and whether their extracts included
this person (on SQLite and PostgreSQL)."""

from __future__ import annotations

import time

from records_support import active_project
from sde_support import project_fields
from sqlalchemy import insert

from carelight.sde.review.patient_use import projects_for_patient
from carelight.sde.tables import sde_extract, sde_extract_person


def _extract(world, project_id: int, extract_id: str, patients: list[str], status="completed"):
    now = time.time()
    with world.store.engine.begin() as conn:
        conn.execute(
            insert(sde_extract).values(
                id=extract_id, project_id=project_id, status=status, engine="duckdb",
                started=now, finished=now, tables='["patients"]', people=len(patients),
                opted_out=0, opt_outs_applied=True,
            )
        )  # fmt: skip
        if patients:
            conn.execute(
                insert(sde_extract_person),
                [{"extract_id": extract_id, "patient_id": p} for p in patients],
            )


def test_a_patient_sees_which_projects_included_them(world):
    used = active_project(world)
    other = active_project(world)
    failed = active_project(world)
    draft = world.governance.create(world.who("researcher"), project_fields(title="Draft"))
    _extract(world, used.id, "x1", ["pat-a", "pat-b"])
    _extract(world, other.id, "x2", ["pat-b"])
    _extract(world, failed.id, "x3", ["pat-a"], status="failed")
    shown = {p["id"]: p for p in projects_for_patient(world.store.engine, "pat-a")}
    assert draft.id not in shown  # only approved projects are listed
    assert shown[used.id]["included"] and len(shown[used.id]["extracts"]) == 1
    assert not shown[other.id]["included"]
    assert not shown[failed.id]["included"]  # a failed extract used nobody's data
    nobody = projects_for_patient(world.store.engine, "pat-z")
    assert {p["id"] for p in nobody} == {used.id, other.id, failed.id}
    assert not any(p["included"] for p in nobody)
