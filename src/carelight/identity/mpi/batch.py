"""Training on a store's population and linking every record at once (Splink).

``train_store`` fits a model to the Patients in a store and saves it as the next version
(``mpi_model``); from then on every Patient write is matched with it. ``link_all`` re-decides
every record with Splink in one batch — after the first load, or after a new model — and
writes the persons, review items and assigned NHS numbers in batched transactions.

Decisions a person made (``reviewed``, ``split``) stand: those records keep their person, and
a cluster that contains one takes that person's id.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import orjson
from sqlalchemy import func, select

from carelight.fhir import schema
from carelight.identity.linkage.decisions import Clusters, Decision
from carelight.identity.linkage.features import LinkageRecord, features
from carelight.identity.linkage.model import LinkageModel, train
from carelight.identity.mpi.core import (
    MANUAL,
    MR,
    RV,
    Pending,
    has_nhs_identifier,
    how_of,
    new_person_id,
    strip_assigned,
)

R = schema.resource


@dataclass
class LinkReport:
    records: int = 0
    persons: int = 0
    routes: dict[str, int] = field(default_factory=dict)  # nhs-number, probabilistic, ...
    moved: int = 0  # records whose person changed
    numbers_assigned: int = 0
    review_open: int = 0
    seconds: float = 0.0


def store_patients(store, batch_size: int = 5000) -> Iterator[tuple[int, str, dict]]:
    """(pk, id, resource as its source wrote it) for every current Patient, in pk order."""
    last = 0
    while True:
        with store.read_conn() as conn:
            rows = conn.execute(
                select(R.c.pk, R.c.res_id, R.c.content)
                .where(R.c.res_type == "Patient", R.c.deleted.is_(False), R.c.pk > last)
                .order_by(R.c.pk)
                .limit(batch_size)
            ).all()
        if not rows:
            return
        for pk, res_id, content in rows:
            yield pk, res_id, strip_assigned(orjson.loads(content))
        last = rows[-1][0]


def store_records(store) -> list[LinkageRecord]:
    return [features(doc) for _, _, doc in store_patients(store)]


def bounded_duckdb():
    """Splink's DuckDB with a memory ceiling (``CARELIGHT_LINKAGE_MEMORY``, default 512MB),
    spilling to a temporary folder beyond it: training and linking run inside ``carelight
    load``, which must stay within bounded memory whatever the population."""
    import os
    import tempfile

    import duckdb
    from splink import DuckDBAPI

    limit = os.environ.get("CARELIGHT_LINKAGE_MEMORY", "512MB")
    spill = os.path.join(tempfile.gettempdir(), "carelight-linkage")
    con = duckdb.connect(config={"memory_limit": limit, "temp_directory": spill})
    return DuckDBAPI(connection=con)


def train_store(store, *, db_api=None, seed: int = 5) -> LinkageModel:
    """Train on every Patient in the store; save as the next version, now the active one."""
    records = store_records(store)
    if len(records) < 50:
        raise ValueError(
            f"the store holds {len(records)} Patient records; training needs at least 50 "
            "(load a population first)"
        )
    model = train(records, db_api=db_api or bounded_duckdb(), seed=seed)
    store.mpi.save_model(model)
    return model


def _person_ids(clusters: Clusters, current: dict[str, tuple[str, str]]) -> dict[str, str]:
    """A stable person id for each cluster: a manual member's person, else the id most of its
    members already have (if no other cluster took it), else a new one."""
    chosen: dict[str, str] = {}
    taken: set[str] = set()
    groups = sorted(clusters.persons().items(), key=lambda kv: -len(kv[1]))
    for key, members in groups:
        manual = [current[m][0] for m in members if m in current and current[m][1] in MANUAL]
        if manual:
            chosen[key] = Counter(manual).most_common(1)[0][0]
            taken.add(chosen[key])
    for key, members in groups:
        if key in chosen:
            continue
        existing = Counter(current[m][0] for m in members if m in current)
        pick = next((p for p, _ in existing.most_common() if p not in taken), None)
        chosen[key] = pick or new_person_id()
        taken.add(chosen[key])
    return chosen


def link_all(
    store,
    *,
    model: LinkageModel | None = None,
    db_api=None,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> LinkReport:
    """Re-decide every Patient record in one Splink batch and write the outcome."""
    started = time.perf_counter()
    mpi = store.mpi
    with store.read_conn() as conn:
        model = model or mpi.model(conn)
        current = {
            pid: (person, how)
            for pid, person, how in conn.execute(select(MR.c.patient_id, MR.c.person, MR.c.how))
        }
    if model is None:
        raise ValueError("no linkage model: train one first (carelight mpi train)")
    patients = list(store_patients(store))
    records = [features(doc) for _, _, doc in patients]
    report = LinkReport(records=len(records))
    if not records:
        return report
    clusters = model.link(records, db_api=db_api or bounded_duckdb())
    persons = _person_ids(clusters, current)
    person_of: dict[str, str] = {}  # each record's person, as decided below
    for n in range(0, len(patients), batch_size):
        chunk = patients[n : n + batch_size]
        events = []
        with store.write() as conn:
            for (pk, res_id, doc), record in zip(chunk, records[n : n + batch_size], strict=True):
                decision = clusters.decisions[res_id]
                now = current.get(res_id)
                if now is not None and now[1] in MANUAL:
                    person, how = now
                    decision = Decision(res_id, "auto", person, reason=how)
                else:
                    person, how = persons[decision.person_id], how_of(decision)
                    if decision.route == "review":
                        decision = _with_candidate(decision, clusters, persons)
                person_of[res_id] = person
                report.routes[how] = report.routes.get(how, 0) + 1
                if now is None or now[0] != person:
                    report.moved += 1
                pending = Pending(record, decision, person, how, doc, model.version)
                mpi.after_write(conn, pk, pending)
                events += pending.events
            mpi.log(events)  # in the transaction: no decision without its log entry
        if progress:
            progress(len(chunk))
    for n in range(0, len(patients), batch_size):
        chunk = patients[n : n + batch_size]
        # Numbers once every record has its person: a person's number may come from a record
        # in a later chunk. A record that left a person loses the number it was given.
        with store.write() as conn:
            for _pk, res_id, doc in chunk:
                if has_nhs_identifier(doc):
                    continue  # the source's own number stands
                number = mpi._person_number(conn, person_of[res_id], res_id)
                if store.set_assigned_number(conn, res_id, number) and number is not None:
                    report.numbers_assigned += 1
    report.persons = len(set(persons.values()))
    with store.read_conn() as conn:
        report.review_open = conn.execute(
            select(func.count()).select_from(RV).where(RV.c.status == "open")
        ).scalar_one()
    report.seconds = time.perf_counter() - started
    return report


_ROUTES = {"nhs-number": "auto", "probabilistic": "auto", "reviewed": "auto", "review": "review"}


def store_clusters(store) -> Clusters:
    """The index as it stands, as the engine's ``Clusters`` (for ``evaluate``)."""
    with store.read_conn() as conn:
        rows = conn.execute(select(MR.c.patient_id, MR.c.person, MR.c.how)).all()
    return Clusters(
        {pid: Decision(pid, _ROUTES.get(how, "new"), person) for pid, person, how in rows}
    )


def _with_candidate(decision: Decision, clusters: Clusters, persons: dict[str, str]) -> Decision:
    from dataclasses import replace

    other = decision.matched_id
    if other is None or other not in clusters.decisions:
        return decision
    return replace(decision, candidate_person_id=persons[clusters.decisions[other].person_id])


__all__ = [
    "LinkReport",
    "link_all",
    "store_clusters",
    "store_patients",
    "store_records",
    "train_store",
]
