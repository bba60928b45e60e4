"""The research-store extract on a small synthetic population, on SQLite and PostgreSQL: every
requested table with the model's types, one row per person, opted-out people absent from every
table and counted, no identifier anywhere, per-project pseudonyms, the records kept on the
operational side, the log entries, and the patient's "how my data is used" page."""

from __future__ import annotations

import re

import duckdb
import orjson
import pytest
from extract_support import LABELLED_CODE, NHS, PEOPLE, SEED, load_population
from sde_support import project_fields, sign_in_patient
from sqlalchemy import select

from carelight.access.optout import opted_out_patients
from carelight.access.principal import Purpose
from carelight.identity.mpi.core import is_assigned
from carelight.sde import model
from carelight.sde.extract import ExtractError, run_extract
from carelight.sde.extract.build import DUCKDB_TYPES
from carelight.sde.extract.pseudonyms import Pseudonymiser
from carelight.sde.governance import accredit
from carelight.sde.tables import sde_extract, sde_extract_person
from carelight.synth import generate

ALL_TABLES = [t.name for t in model.TABLES]
POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b")


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    out = tmp_path_factory.mktemp("sde-extract") / "population"
    generate(out, PEOPLE, SEED, workers=1)
    return out


def approved_project(world, **fields):
    g = world.governance
    p = g.create(world.who("researcher"), project_fields(**{"tables": ALL_TABLES, **fields}))
    g.transition(world.who("researcher"), p.id, "submit")
    return g.transition(world.who("dac"), p.id, "approve", "Approved.")


def extract(world, project_id, **kw):
    return run_extract(world.store, world.trail, world.settings, project_id, **kw)


def tables_of(folder) -> dict[str, list[tuple]]:
    db = duckdb.connect(str(folder / "research.duckdb"), read_only=True)
    try:
        return {t: db.execute(f"SELECT * FROM {t}").fetchall() for t in ALL_TABLES}
    finally:
        db.close()


def test_the_extract_end_to_end(world, population, app_client):
    loaded = load_population(world.store, population)
    project = approved_project(world)
    result = extract(world, project.id)
    folder = result.folder
    assert folder.parent.parent.parent == world.settings.home / "sde" / "projects"
    assert not list(folder.parent.glob("*.part"))  # complete, and nothing left half-written
    assert not any((world.settings.home / "sde" / "work").glob("*"))  # staging removed

    # -- every model table, with the model's columns and DuckDB types, in both forms -------
    db = duckdb.connect(str(folder / "research.duckdb"), read_only=True)
    for table in model.TABLES:
        described = db.execute(f"DESCRIBE {table.name}").fetchall()
        assert [(c[0], c[1]) for c in described] == [
            (c.name, DUCKDB_TYPES[c.type]) for c in table.columns
        ], table.name
        parquet = folder / "parquet" / f"{table.name}.parquet"
        from_parquet = db.execute(f"DESCRIBE SELECT * FROM read_parquet('{parquet}')").fetchall()
        assert [(c[0], c[1]) for c in from_parquet] == [(c[0], c[1]) for c in described]
        rows = db.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0]
        assert rows == result.table_rows[table.name]
        assert db.execute(f"SELECT count(*) FROM read_parquet('{parquet}')").fetchone()[0] == rows
        assert rows > 0, f"{table.name} is empty: the population should fill every table"
        orphans = db.execute(
            f"SELECT count(*) FROM {table.name} WHERE patient_id NOT IN "
            "(SELECT patient_id FROM patients)"
        ).fetchone()[0]
        assert orphans == 0
    db.close()
    data = tables_of(folder)

    # -- one row per person: all of a person's records are one research patient ------------
    pseudonym = Pseudonymiser.for_project(world.settings.home, project.id).pseudonym
    with world.store.engine.connect() as conn:
        out_records = opted_out_patients(conn, Purpose.HRESCH)
    out_persons = {p for p, ids in loaded.persons.items() if set(ids) & out_records}
    assert loaded.research_out in out_persons
    assert {loaded.planning_out, loaded.permitted, loaded.labelled}.isdisjoint(out_persons)
    expected = {pseudonym(p) for p in loaded.persons if p not in out_persons}
    patient_ids = [r[0] for r in data["patients"]]
    assert len(patient_ids) == len(set(patient_ids)) == result.people
    assert set(patient_ids) == expected

    # -- opted-out people are absent from every table, and only counted --------------------
    assert result.opt_outs_applied and result.opted_out == len(out_persons) >= 2
    gone = {pseudonym(p) for p in out_persons}
    for name, rows in data.items():
        assert not gone & {r[0] for r in rows}, name
    # The planning-only opt-out and the "permit" Consent do not keep anyone out of research.
    assert pseudonym(loaded.planning_out) in expected and pseudonym(loaded.permitted) in expected

    # -- security-labelled resources are withheld -----------------------------------------
    assert LABELLED_CODE not in {r[2] for r in data["clinical_events"]}
    assert result.withheld == 1

    # -- no direct identifier anywhere ------------------------------------------------------
    ids = loaded.identifiers
    for name, rows in data.items():
        columns = model.table(name).columns
        for row in rows:
            for column, value in zip(columns, row, strict=True):
                if value is None:
                    continue
                if column.type == "date" and column.name in ("date_of_birth", "date_of_death"):
                    assert value.day == 1, (name, column.name)  # year and month only
                if column.type != "str":
                    continue
                assert value not in ids["ids"], (name, column.name)
                assert value.lower() not in ids["names"], (name, column.name)
                assert not POSTCODE.search(value), (name, column.name)
                digits = re.sub(r"\D", "", value)
                windows = {digits[i : i + 10] for i in range(max(0, len(digits) - 9))}
                assert not windows & ids["nhs"], (name, column.name)
    area_codes = {r[4] for r in data["patients"] if r[4]}
    assert area_codes and all(re.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]? \d", a) for a in area_codes)

    # -- what is recorded on the operational side -----------------------------------------
    with world.store.engine.connect() as conn:
        row = (
            conn.execute(select(sde_extract).where(sde_extract.c.id == result.id)).mappings().one()
        )
        included = set(
            conn.execute(
                select(sde_extract_person.c.patient_id).where(
                    sde_extract_person.c.extract_id == result.id
                )
            ).scalars()
        )
    assert row["status"] == "completed" and row["people"] == result.people
    assert row["opted_out"] == result.opted_out and row["withheld"] == 1
    assert orjson.loads(row["table_rows"]) == result.table_rows
    counts = orjson.loads(row["source_counts"])
    assert counts["Patient"] == sum(
        len(ids) for p, ids in loaded.persons.items() if p not in out_persons
    )
    assert orjson.loads(row["tables"]) == ALL_TABLES
    assert included == {pid for p, ids in loaded.persons.items() if p not in out_persons
                        for pid in ids}  # fmt: skip
    assert not included & out_records

    # -- the log: the checkpoint it was taken at, and its own entry ------------------------
    log = world.trail.log
    assert log.root_hash(row["log_tree_size"]).hex() == row["log_root_hash"]
    assert any(c.tree_size == row["log_tree_size"] for c in log.checkpoints())
    entry = orjson.loads(log.leaf(row["log_index"]))
    assert entry["subtype"][-1]["code"] == "sde-extract"
    refs = [e.get("what", {}).get("reference", "") for e in entry.get("entity", ())]
    assert f"ResearchStudy/sde-project-{project.id}" in refs
    assert not any(r.startswith("Patient/") for r in refs)

    # -- the public register shows the extract ---------------------------------------------
    public = app_client.get(f"/register/projects/{project.id}.json").json()
    (shown,) = public["extracts"]
    assert shown["people"] == result.people and shown["people_opted_out"] == result.opted_out
    assert shown["log_checkpoint"]["tree_size"] == row["log_tree_size"]

    # -- the patient's "how my data is used" page ------------------------------------------
    _check_data_use_page(world, app_client, loaded, project)


def _check_data_use_page(world, client, loaded, project):
    def nhs_of(person):
        for pid in loaded.persons[person]:
            for i in world.store.read("Patient", pid).json().get("identifier", ()):
                if i.get("system") == NHS and not is_assigned(i):
                    return pid, i["value"]
        return None

    for person, included in ((loaded.planning_out, True), (loaded.research_out, False)):
        found = nhs_of(person)
        assert found is not None
        pid, nhs = found
        world.accounts.create(nhs, "patient", password="carelight-demo", patient_id=pid)
        client.cookies.clear()
        sign_in_patient(client, nhs)
        page = client.get("/patient/data-use")
        assert page.status_code == 200
        assert (project.title in page.text) is included
        if not included:
            assert "No research project has used your data" in page.text
            assert "You have opted out" in page.text


def test_pseudonyms_differ_between_projects_and_are_stable_within_one(world, population):
    load_population(world.store, population)
    first = approved_project(world)
    second = approved_project(world, title="Another project")
    one = tables_of(extract(world, first.id).folder)
    # Again, in batches of 50 rows: the same store, row for row.
    again = tables_of(extract(world, first.id, batch_rows=50).folder)
    assert {t: sorted(rows, key=repr) for t, rows in one.items()} == {
        t: sorted(rows, key=repr) for t, rows in again.items()
    }
    a1, a2 = {r[0] for r in one["patients"]}, {r[0] for r in again["patients"]}
    b = {r[0] for r in tables_of(extract(world, second.id).folder)["patients"]}
    assert a1 == a2 and len(a1) == len(b) > 0
    assert not a1 & b
    # The secret never enters a research store.
    secret = (world.settings.home / "keys" / "sde-pseudonym.key").read_bytes()
    for folder in (world.settings.home / "sde" / "projects").rglob("*"):
        if folder.is_file():
            assert secret not in folder.read_bytes()


def test_an_exempt_basis_keeps_opted_out_people_in(world, population):
    loaded = load_population(world.store, population)
    project = approved_project(world, confidentiality_basis="explicit-consent")
    result = extract(world, project.id)
    assert not result.opt_outs_applied and result.opted_out == 0
    assert result.people == len(loaded.persons)


@pytest.mark.parametrize("state", ["draft", "submitted", "rejected", "closed"])
def test_only_approved_or_active_projects_may_extract(world, state):
    g = world.governance
    p = g.create(world.who("researcher"), project_fields())
    steps = {"draft": [], "submitted": ["submit"], "rejected": ["submit", "reject"],
             "closed": ["submit", "approve", "close"]}[state]  # fmt: skip
    for step in steps:
        who = "researcher" if step == "submit" else "dac"
        g.transition(world.who(who), p.id, step, "A reason.")
    with pytest.raises(ExtractError, match=f"is {state}; only an approved or active project"):
        extract(world, p.id)
    with world.store.engine.connect() as conn:
        assert conn.execute(select(sde_extract)).all() == []
    assert not (world.settings.home / "sde" / "projects").exists()


def test_an_active_project_may_extract_and_an_unknown_one_may_not(world, population):
    load_population(world.store, population)
    p = approved_project(world, tables=["patients", "vaccinations"])
    for name in p.members:
        accredit(world.store.engine, world.trail, world.who("dac"), name, "ONS",
                 "2025-01-01", "2030-12-31")  # fmt: skip
    world.governance.transition(world.who("dac"), p.id, "activate")
    result = extract(world, p.id)
    assert set(result.table_rows) == {"patients", "vaccinations"}
    db = duckdb.connect(str(result.folder / "research.duckdb"), read_only=True)
    # The store has the data model's full layout; tables not approved are there, empty.
    assert {r[0] for r in db.execute("SHOW TABLES").fetchall()} == {t.name for t in model.TABLES}
    assert db.execute("SELECT count(*) FROM clinical_events").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM patients").fetchone()[0] > 0
    db.close()
    assert (result.folder / "parquet" / "clinical_events.parquet").is_file()
    with pytest.raises(ExtractError, match="no project 999"):
        extract(world, 999)
    with pytest.raises(ExtractError, match="Unknown engine"):
        extract(world, p.id, engine="sqlite")


# Once, over SQLite: what Spark reads is the staging data, the same whatever the store.
@pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True)
def test_the_spark_engine_writes_the_same_tables(world, population):
    load_population(world.store, population)
    project = approved_project(world)
    by_duckdb = extract(world, project.id)
    by_spark = extract(world, project.id, engine="spark")
    assert not (by_spark.folder / "research.duckdb").exists()
    assert by_spark.table_rows == by_duckdb.table_rows
    db = duckdb.connect()
    for table in model.TABLES:
        a = f"read_parquet('{by_duckdb.folder / 'parquet' / table.name}.parquet')"
        b = f"read_parquet('{by_spark.folder / 'parquet' / table.name}.parquet')"
        types = [r[1] for r in db.execute(f"DESCRIBE SELECT * FROM {b}").fetchall()]
        assert types == [DUCKDB_TYPES[c.type] for c in table.columns], table.name
        for x, y in ((a, b), (b, a)):
            extra = db.execute(f"SELECT count(*) FROM (FROM {x} EXCEPT ALL FROM {y})").fetchone()
            assert extra == (0,), table.name
