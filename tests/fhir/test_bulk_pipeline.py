"""The bulk loader's pipeline: workers prepare batches ahead of the single writer, with the
garbage collector paused per batch. Order, counts and refusals must come out as if the batches
were written one by one."""

from __future__ import annotations

import gc

import orjson
from sqlalchemy import select

from carelight.fhir import schema
from carelight.fhir.store import _AHEAD, prepare_batch


def _observation(n: int) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"o{n}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "subject": {"reference": "Patient/p1"},
    }


def test_prepare_batch_leaves_the_garbage_collector_as_it_found_it():
    batch = [
        ("good", orjson.dumps(_observation(1)), None),
        ("bad json", b"{not json", None),
        ("invalid", orjson.dumps({**_observation(2), "status": "nonsense"}), None),
    ]
    assert gc.isenabled()
    prepared = prepare_batch(batch, None)
    assert gc.isenabled()
    assert list(prepared.resources) == [("Observation", "o1")]
    assert [label for label, _ in prepared.errors] == ["bad json", "invalid"]
    gc.disable()
    try:
        prepare_batch(batch, None, pack=True)
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()


def test_more_batches_in_flight_than_workers_load_in_input_order(store):
    count = 3 * (_AHEAD + 2)  # batches of 3: more than the look-ahead holds at once
    items = [("Patient.ndjson:1", orjson.dumps({"resourceType": "Patient", "id": "p1"}))]
    for n in range(count):
        line = b"{broken" if n == 17 else orjson.dumps(_observation(n))
        items.append((f"Observation.ndjson:{n + 1}", line))
    report = store.bulk_load(items, workers=1, batch_size=3)
    assert report.created == count  # the Patient and every Observation but the broken one
    assert [label for label, _ in report.errors] == ["Observation.ndjson:18"]
    with store.engine.connect() as conn:
        ids = conn.execute(select(schema.resource.c.res_id).order_by(schema.resource.c.pk))
        expected = ["p1"] + [f"o{n}" for n in range(count) if n != 17]
        assert list(ids.scalars()) == expected
    again = store.bulk_load(items, workers=1, batch_size=3)
    assert (again.loaded, again.unchanged, len(again.errors)) == (0, count, 1)
