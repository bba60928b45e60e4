"""The store on both engines: bulk load, the search index and compartments kept in step with
the resources, and writes that fail leaving nothing behind."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from carelight.fhir import schema
from carelight.fhir.errors import FhirError

NHS = "https://fhir.nhs.uk/Id/nhs-number"
TABLES = (schema.resource, schema.resource_version, *schema.INDEX_TABLES, schema.compartment)


def patient(pid: str, family: str = "Smith", **extra) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": family, "given": ["Jane"]}],
        "gender": "female",
        "birthDate": "1950-03-04",
        **extra,
    }


def observation(oid: str, subject: str, value: float = 48.0, **extra) -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": "2024-01-10",
        "valueQuantity": {
            "value": value,
            "unit": "mmol/mol",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/mol",
        },
        **extra,
    }


def load(store, items, **kwargs):
    # One process: the worker pool is the bulk loader's own business (and slow to start).
    return store.bulk_load(items, workers=1, **kwargs)


def counts(store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES
        }


def pk_of(store, res_type: str, res_id: str) -> int:
    R = schema.resource
    with store.engine.connect() as conn:
        return conn.execute(
            select(R.c.pk).where(R.c.res_type == res_type, R.c.res_id == res_id)
        ).scalar_one()


def index_rows(store, pk: int) -> dict[str, set[tuple]]:
    """Every index and compartment row of one resource, without the pk."""
    out: dict[str, set[tuple]] = {}
    with store.engine.connect() as conn:
        for table in (*schema.INDEX_TABLES, schema.compartment):
            cols = [c for c in table.c if c.name not in ("res_pk", "res_type")]
            rows = conn.execute(select(*cols).where(table.c.res_pk == pk)).all()
            if rows:
                out[table.name] = {tuple(r) for r in rows}
    return out


def compartment(store, res_type: str, res_id: str) -> set[str]:
    return {
        p for (p,) in index_rows(store, pk_of(store, res_type, res_id)).get("compartment", set())
    }


def strings(store, res_type: str, res_id: str, param: str) -> set[str]:
    rows = index_rows(store, pk_of(store, res_type, res_id)).get("sp_string", set())
    return {exact for p, _value, exact in rows if p == param}


# -- bulk load --------------------------------------------------------------------------------
def test_bulk_load_is_idempotent(store):
    items = [patient(f"p{i}", family=f"Fam{i}") for i in range(5)]
    items += [observation(f"o{i}", f"Patient/p{i}", value=40 + i) for i in range(5)]
    first = load(store, items)
    assert (first.loaded, first.unchanged, first.errors) == (10, 0, [])
    before = counts(store)
    assert before["resource"] == 10 and before["resource_version"] == 10
    again = load(store, items)
    assert (again.loaded, again.unchanged, again.errors) == (0, 10, [])
    assert counts(store) == before
    assert store.read("Patient", "p0").version_id == 1
    # one change: one new version, its index rewritten, the rest untouched
    items[0] = patient("p0", family="Changed")
    third = load(store, items)
    assert (third.loaded, third.unchanged) == (1, 9)
    assert store.read("Patient", "p0").version_id == 2
    assert strings(store, "Patient", "p0", "family") == {"Changed"}
    after = counts(store)
    assert after["resource"] == 10 and after["resource_version"] == 11
    assert after["sp_string"] == before["sp_string"]


def test_bulk_load_small_batches_and_repeated_ids(store):
    items = [patient(f"p{i}") for i in range(7)] + [patient("p3", family="Later")]
    report = load(store, items, batch_size=3)
    assert report.errors == []
    assert store.read("Patient", "p3").json()["name"][0]["family"] == "Later"
    assert counts(store)["resource"] == 7


def test_bulk_load_unchanged_means_same_content_not_same_text(store):
    load(store, [patient("p1"), observation("o1", "Patient/p1", value=48)])
    reordered = dict(reversed(list(patient("p1").items())))
    again = load(store, [reordered, observation("o1", "Patient/p1", value=48.0)])
    assert (again.loaded, again.unchanged) == (0, 2)


def test_bulk_load_reports_bad_items_and_loads_the_rest(store):
    items = [
        ("good.ndjson:1", patient("good1")),
        ("bad.ndjson:1", patient("bad1", gender="banana")),
        ("bad.ndjson:2", {k: v for k, v in patient("x").items() if k != "id"}),
        ("bad.ndjson:3", ValueError("line 3 is not JSON")),
        ("bad.ndjson:4", {"resourceType": "Spaceship", "id": "s1"}),
        ("bad.ndjson:5", patient("bad5", colour="blue")),
        ("good.ndjson:2", observation("good2", "Patient/good1")),
    ]
    report = load(store, items)
    assert report.loaded == 2
    labels = [label for label, _ in report.errors]
    assert labels == [f"bad.ndjson:{i}" for i in range(1, 6)]
    messages = dict(report.errors)
    assert "gender" in messages["bad.ndjson:1"]
    assert "id" in messages["bad.ndjson:2"]
    assert "line 3 is not JSON" in messages["bad.ndjson:3"]
    assert "colour" in messages["bad.ndjson:5"]
    assert store.read("Patient", "good1").version_id == 1
    assert compartment(store, "Observation", "good2") == {"good1"}
    assert counts(store)["resource"] == 2


def test_bulk_load_after_delete_revives_the_resource(store):
    load(store, [patient("p1")])
    store.delete("Patient", "p1")
    report = load(store, [patient("p1")])
    assert report.loaded == 1
    revived = store.read("Patient", "p1")
    assert revived.version_id == 3 and not revived.deleted
    assert strings(store, "Patient", "p1", "family") == {"Smith"}


def test_bulk_load_source(store):
    load(store, [patient("p1")], source="https://example.nhs.uk/gp")
    assert store.read("Patient", "p1").json()["meta"]["source"] == "https://example.nhs.uk/gp"
    again = load(store, [patient("p1")], source="https://example.nhs.uk/gp")
    assert again.unchanged == 1


# -- the index follows every write ------------------------------------------------------------
def test_index_rows_are_rewritten_on_update_and_removed_on_delete(store):
    created = store.create(observation("ignored", "Patient/p1", value=40))
    oid = created.stored.res_id
    pk = pk_of(store, "Observation", oid)
    rows = index_rows(store, pk)
    assert ("subject", "Patient", "p1", None) in rows["sp_reference"]
    assert ("value-quantity", 40.0, "http://unitsofmeasure.org", "mmol/mol") in rows["sp_quantity"]
    assert rows["compartment"] == {("p1",)}

    changed = observation(oid, "Patient/p2", value=60)
    del changed["effectiveDateTime"]
    store.update("Observation", oid, changed)
    rows = index_rows(store, pk)
    assert ("subject", "Patient", "p2", None) in rows["sp_reference"]
    assert not any(r[2] == "p1" for r in rows["sp_reference"])
    assert {r[1] for r in rows["sp_quantity"]} == {60.0}
    assert "sp_date" not in rows  # the date went with the update
    assert rows["compartment"] == {("p2",)}

    store.delete("Observation", oid)
    assert index_rows(store, pk) == {}
    with store.engine.connect() as conn:
        # the deleted resource's row stays (reads say 410), its versions stay
        assert (
            conn.execute(select(func.count()).select_from(schema.resource_version)).scalar_one()
            == 3
        )


def test_patch_rewrites_the_index(store):
    store.update("Patient", "p1", patient("p1"))
    store.patch("Patient", "p1", [{"op": "replace", "path": "/name/0/family", "value": "Brontë"}])
    rows = index_rows(store, pk_of(store, "Patient", "p1"))["sp_string"]
    assert ("family", "bronte", "Brontë") in rows
    assert not any(r[1] == "smith" for r in rows)


def test_index_rows_of_one_resource_do_not_touch_another(store):
    store.update("Patient", "p1", patient("p1", family="One"))
    store.update("Patient", "p2", patient("p2", family="Two"))
    before = index_rows(store, pk_of(store, "Patient", "p2"))
    store.update("Patient", "p1", patient("p1", family="Uno"))
    store.delete("Patient", "p1")
    assert index_rows(store, pk_of(store, "Patient", "p2")) == before


def test_compartment_rows(store):
    store.update("Patient", "p1", patient("p1"))
    store.update(
        "Patient",
        "p2",
        patient("p2", link=[{"other": {"reference": "Patient/p1"}, "type": "seealso"}]),
    )
    assert compartment(store, "Patient", "p1") == {"p1"}
    assert compartment(store, "Patient", "p2") == {"p1", "p2"}
    # subject and performer both place an Observation in a compartment
    store.update(
        "Observation",
        "o1",
        observation("o1", "Patient/p1", performer=[{"reference": "Patient/p2"}]),
    )
    assert compartment(store, "Observation", "o1") == {"p1", "p2"}
    # an absolute URL to some other server's Patient is not ours
    store.update("Observation", "o2", observation("o2", "http://elsewhere.example/fhir/Patient/p1"))
    assert compartment(store, "Observation", "o2") == set()
    # types outside the Patient compartment
    store.update(
        "Organization", "org1", {"resourceType": "Organization", "id": "org1", "name": "GP"}
    )
    assert compartment(store, "Organization", "org1") == set()
    # an update moves the resource to the new compartment
    store.update("Observation", "o1", observation("o1", "Patient/p3"))
    assert compartment(store, "Observation", "o1") == {"p3"}
    found, _ = store.everything("p1")
    assert {(s.res_type, s.res_id) for s in found} == {("Patient", "p1"), ("Patient", "p2")}


def test_bulk_loaded_index_equals_the_index_of_a_single_write(store):
    obs = observation("o1", "Patient/p1", performer=[{"reference": "Patient/p2"}])
    load(store, [obs])
    bulk = index_rows(store, pk_of(store, "Observation", "o1"))
    store.delete("Observation", "o1")
    store.update("Observation", "o1", obs)
    assert index_rows(store, pk_of(store, "Observation", "o1")) == bulk


# -- a failed write leaves nothing half-written ---------------------------------------------
class Boom(RuntimeError):
    pass


def _explode(*_args, **_kwargs):
    raise Boom("index write failed")


def test_failed_create_leaves_nothing(store, monkeypatch):
    monkeypatch.setattr(store, "_write_index", _explode)
    with pytest.raises(Boom):
        store.create(patient("x"))
    with pytest.raises(Boom):
        store.update("Patient", "p1", patient("p1"))
    assert set(counts(store).values()) == {0}


def test_failed_update_keeps_the_previous_version_and_its_index(store, monkeypatch):
    store.update("Patient", "p1", patient("p1", family="Before"))
    pk = pk_of(store, "Patient", "p1")
    before_rows, before_counts = index_rows(store, pk), counts(store)
    monkeypatch.setattr(store, "_write_index", _explode)
    with pytest.raises(Boom):
        store.update("Patient", "p1", patient("p1", family="After"))
    with pytest.raises(Boom):
        store.patch("Patient", "p1", [{"op": "replace", "path": "/gender", "value": "male"}])
    assert counts(store) == before_counts
    assert index_rows(store, pk) == before_rows
    current = store.read("Patient", "p1")
    assert current.version_id == 1 and current.json()["name"][0]["family"] == "Before"


def test_invalid_write_leaves_nothing(store):
    store.update("Patient", "p1", patient("p1"))
    before = counts(store)
    for attempt in (
        lambda: store.create(patient("x", gender="banana")),
        lambda: store.update("Patient", "p1", patient("p1", gender="banana")),
        lambda: store.update("Patient", "p1", patient("p2")),
        lambda: store.update("Patient", "p1", patient("p1"), if_match='W/"9"'),
        lambda: store.patch("Patient", "p1", [{"op": "remove", "path": "/nothing"}]),
    ):
        with pytest.raises(FhirError):
            attempt()
    assert counts(store) == before
    assert store.read("Patient", "p1").version_id == 1


def test_failed_bulk_batch_leaves_nothing_of_that_batch(store, monkeypatch):
    load(store, [patient("p0")])
    before = counts(store)
    import carelight.fhir.store as store_module

    real = store_module._insert_rows

    def insert_then_fail(conn, table, columns, rows):
        real(conn, table, columns, rows)
        if table is schema.resource_version:
            raise Boom("version insert failed")

    real_copy = store_module.Store._copy_packed

    def copy_then_fail(conn, report):  # SQLite's packed batches: every row written, then boom
        real_copy(conn, report)
        raise Boom("packed batch failed")

    monkeypatch.setattr(store_module, "_insert_rows", insert_then_fail)
    monkeypatch.setattr(store_module.Store, "_copy_packed", staticmethod(copy_then_fail))
    with pytest.raises(Boom):
        load(store, [patient("p0", family="Changed"), patient("p1"), patient("p2")])
    assert counts(store) == before
    assert store.read("Patient", "p0").json()["name"][0]["family"] == "Smith"


def test_packed_batches_write_what_the_plain_path_writes(tmp_path):
    """On SQLite, worker processes hand batches back packed (store.pack_batch); in-process
    loads and PostgreSQL take the plain path. Both must store the same rows."""
    from carelight.fhir.store import open_store

    items = [
        patient("p1"),
        patient("p2", family="Brontë", meta={"source": "urn:x"}),
        observation("o1", "Patient/p1"),
        observation("o2", "Patient/p2", performer=[{"reference": "Patient/p1"}]),
        {"resourceType": "Observation", "id": "bad"},  # refused the same way
    ]
    stores = [open_store(f"sqlite:///{tmp_path / f'{n}.db'}") for n in ("plain", "packed")]
    reports = [stores[0].bulk_load(items, workers=0), stores[1].bulk_load(items, workers=1)]
    assert [(r.created, r.errors) for r in reports[:1]] == [
        (r.created, r.errors) for r in reports[1:]
    ]
    changed = [patient("p1", family="Changed"), observation("o1", "Patient/p1"), patient("p3")]
    again = [stores[0].bulk_load(changed, workers=0), stores[1].bulk_load(changed, workers=1)]
    assert {(r.created, r.updated, r.unchanged) for r in again} == {(1, 1, 1)}

    def snapshot(store) -> dict:
        out = {}
        with store.engine.connect() as conn:
            for t in (schema.resource, schema.resource_version, *schema.INDEX_TABLES,
                      *schema.DERIVED_TABLES):  # fmt: skip
                cols = [c for c in t.c if c.name not in ("last_updated",)]
                rows = conn.execute(select(*cols)).all()
                # lastUpdated differs between the two loads; blank it out of the JSON too
                out[t.name] = sorted(
                    tuple(
                        v.split('"lastUpdated":"')[0]
                        if isinstance(v, str) and "lastUpdated" in v
                        else v
                        for v in row
                    )
                    for row in rows
                )
        return out

    plain, packed = snapshot(stores[0]), snapshot(stores[1])
    assert plain == packed
    assert len(plain["resource"]) == 5 and len(plain["resource_version"]) == 6
