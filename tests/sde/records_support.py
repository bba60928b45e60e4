"""Helpers for the jobs and review tests: an active project with an accredited researcher,
a research store with known people, and a job that writes a count table."""

from __future__ import annotations

import datetime as dt
import time
import uuid

from sde_support import project_fields
from sqlalchemy import insert

from carelight.sde.governance import accredit
from carelight.sde.jobs.records import Jobs
from carelight.sde.tables import sde_extract

# 23 women, 5 men, 12 other: counts 25, [REDACTED] and 10 once controlled.
SEXES = {"female": 23, "male": 5, "other": 12}

DEFINITION = """\
from carelight.sde.query import create_dataset, tables

dataset = create_dataset()
dataset.define_population(tables.patients.exists_for_patient())
dataset.sex = tables.patients.sex
"""
SCRIPT = """\
import os
import pandas as pd

data = pd.read_csv(os.environ["CARELIGHT_DATASET"])
out = os.environ["CARELIGHT_OUTPUTS"]
counts = data.groupby("sex").size().reset_index(name="count")
counts.to_csv(os.path.join(out, "counts.csv"), index=False)
data.to_csv(os.path.join(out, "people.csv"), index=False)  # row-level: never leaves
with open(os.path.join(out, "notes.txt"), "w") as f:
    f.write("Counts of people by sex.\\n")
"""


def accredit_all(world, *usernames):
    today = dt.date.today()
    for name in usernames:
        accredit(world.store.engine, world.trail, world.who("dac"), name, "Office for Research",
                 today - dt.timedelta(days=1), today + dt.timedelta(days=365))  # fmt: skip


def active_project(world, members=("researcher",)):
    g = world.governance
    owner = world.who(members[0])
    p = g.create(owner, project_fields(members=list(members[1:])))
    g.transition(owner, p.id, "submit")
    g.transition(world.who("dac"), p.id, "approve", "Clear public benefit.")
    accredit_all(world, *members)
    return g.transition(world.who("dac"), p.id, "activate")


def research_store(world, jobs: Jobs, project_id: int, sexes=SEXES) -> str:
    """A completed extract of known people (written as the extract writes its store)."""
    from carelight.sde.query.store import write_store

    extract_id = uuid.uuid4().hex[:16]
    people = [
        {
            "patient_id": f"p{uuid.uuid4().hex[:10]}",
            "sex": sex,
            "date_of_birth": dt.date(1950, 1, 1),
        }
        for sex, n in sexes.items()
        for _ in range(n)
    ]
    write_store(jobs.extract_dir(project_id, extract_id), {"patients": people})
    now = time.time()
    with world.store.engine.begin() as conn:
        conn.execute(
            insert(sde_extract).values(
                id=extract_id, project_id=project_id, status="completed", engine="duckdb",
                started=now, finished=now, tables='["patients"]', people=len(people),
                opted_out=0, opt_outs_applied=True,
            )
        )  # fmt: skip
    return extract_id


def make_jobs(world) -> Jobs:
    from carelight.sde.jobs.sandbox import Limits

    return Jobs(
        world.store.engine, world.trail, world.settings,
        limits=Limits(cpu_seconds=60, wall_seconds=120),
    )  # fmt: skip


def ran(jobs: Jobs, who, project_id, definition=DEFINITION, script=SCRIPT):
    """Submit, run on dummy data, then on real data; (dummy job, real job)."""
    dummy = jobs.submit(who, project_id, "Counts by sex", definition, script)
    dummy = jobs.execute(dummy.id)
    assert dummy.status == "succeeded", dummy
    real = jobs.run_real(who, dummy.id)
    return dummy, jobs.execute(real.id)
