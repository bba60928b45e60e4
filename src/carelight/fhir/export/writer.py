"""Write an export: the current version of each matching resource, one NDJSON file per type.

Everything is read in one snapshot (a REPEATABLE READ transaction on PostgreSQL, one read
transaction on SQLite), type by type in primary-key order, and each row's stored JSON text is
written as one line: nothing is parsed or re-serialised, and memory stays bounded by one fetch
batch (a server-side cursor on PostgreSQL). Deleted resources have no content and are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import JSON, Connection, and_, exists, false, func, literal, or_, select

from carelight.fhir import schema
from carelight.fhir.errors import not_found
from carelight.fhir.export.spec import ExportSpec
from carelight.fhir.extract import parse_reference
from carelight.fhir.search.query import parse_search
from carelight.fhir.search.sql import Compiler
from carelight.fhir.search.values import parse_date_range
from carelight.fhir.store import Store

R = schema.resource
C = schema.compartment

FETCH_ROWS = 2000
PROGRESS_SECONDS = 1.0
# transactionTime is set this far before the snapshot: a write stamps lastUpdated when its
# transaction starts but may commit after the snapshot; a client that passes transactionTime as
# the next _since must still get that write. The cost: a few resources may come twice.
SNAPSHOT_MARGIN = 5.0


@dataclass(frozen=True)
class OutputFile:
    type: str
    name: str  # the file name in the job's folder
    count: int


@dataclass
class ExportResult:
    transaction_time: float  # epoch seconds
    outputs: list[OutputFile] = field(default_factory=list)

    @property
    def resources(self) -> int:
        return sum(o.count for o in self.outputs)


@dataclass(frozen=True)
class Progress:
    written: int
    total: int
    res_type: str
    transaction_time: float

    def text(self) -> str:
        pct = 100 * self.written // self.total if self.total else 100
        return f"{pct}% ({self.written:,} of {self.total:,} resources; {self.res_type})"


class ExportCancelled(Exception):
    """Raised by a progress callback to stop an export (its job was deleted)."""


def write_export(
    store: Store,
    spec: ExportSpec,
    out_dir: Path,
    progress: Callable[[Progress], None] | None = None,
) -> ExportResult:
    """Write ``spec``'s resources under ``out_dir``; ``progress`` is called about once a second."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with _snapshot(store) as conn:
        started = time.time()  # the snapshot starts with the first statement, just below
        members = _members(conn, spec.group_id, started) if spec.kind == "group" else None
        counts = {t: _count(conn, store, spec, t, members) for t in spec.types}
        result = ExportResult(round(started - SNAPSHOT_MARGIN, 3))
        total = sum(counts.values())
        done = 0
        last = 0.0

        def report(res_type: str, written: int, force: bool = False) -> None:
            nonlocal last
            now = time.monotonic()
            if progress is not None and (force or now - last >= PROGRESS_SECONDS):
                last = now
                progress(Progress(done + written, total, res_type, result.transaction_time))

        report(spec.types[0] if spec.types else "", 0, force=True)
        for res_type in spec.types:
            if not counts[res_type]:
                continue  # the IG: no file for a type without resources
            name = f"{res_type}.ndjson"
            stmt = _query(store, spec, res_type, R.c.content, members).order_by(R.c.pk)
            n = _write_lines(conn, stmt, out_dir / name, lambda w, t=res_type: report(t, w))
            result.outputs.append(OutputFile(res_type, name, n))
            done += n
        return result


@contextmanager
def _snapshot(store: Store) -> Iterator[Connection]:
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():  # SQLite (WAL): a read transaction is a snapshot from its first read
            yield conn


def _write_lines(conn: Connection, stmt, path: Path, tick: Callable[[int], None]) -> int:
    part = path.with_name(path.name + ".part")  # a finished file is never seen half-written
    written = 0
    with part.open("w", encoding="utf-8", newline="\n", buffering=1 << 20) as f:
        result = conn.execute(stmt, execution_options={"yield_per": FETCH_ROWS})
        for rows in result.scalars().partitions():
            f.write("\n".join(rows))
            f.write("\n")
            written += len(rows)
            tick(written)
    part.replace(path)
    return written


def _count(
    conn: Connection, store: Store, spec: ExportSpec, res_type: str, members: list[str] | None
) -> int:
    return conn.execute(_query(store, spec, res_type, func.count(), members)).scalar_one()


def _query(store: Store, spec: ExportSpec, res_type: str, column, members: list[str] | None):
    """``column`` of the current, undeleted resources of one type that the export holds."""
    sqlite = store.dialect == "sqlite"
    where = [R.c.res_type == res_type, R.c.deleted == false()]
    if spec.source is not None:
        where.append(R.c.source == spec.source)
    if spec.since is not None:
        # On SQLite `+ 0` keeps the planner on the (res_type, deleted, pk) index: with the
        # lastUpdated index it would sort every row, content included, in memory.
        updated = R.c.last_updated + 0 if sqlite else R.c.last_updated
        where.append(updated >= spec.since)
    if spec.kind == "patient":
        # Every Patient is in its own compartment, so this holds the Patients too.
        where.append(exists().where(C.c.res_pk == R.c.pk))
    elif spec.kind == "group":
        ids = _id_list(store, members or [])
        where.append(exists().where(C.c.res_pk == R.c.pk, C.c.patient_id.in_(ids)))
    filters = spec.filters_for(res_type)
    if filters:
        # Probes (EXISTS per row), not IN lists: the export walks every row of the type anyway.
        compiler = Compiler(store.base_url, probe=True)
        where.append(
            or_(
                *(
                    and_(*(compiler.condition(c, R, res_type) for c in q.criteria))
                    for q in (parse_search(res_type, pairs) for pairs in filters)
                )
            )
        )
    return select(column).select_from(R).where(*where)


def _members(conn: Connection, group_id: str | None, now: float) -> list[str]:
    """The ids of the Group's current Patient members, read from the Group in the snapshot.

    Not from the ``member`` index: it cannot tell a current member from one marked
    ``inactive`` or whose ``period`` has ended, and their data must not leave with the cohort's.
    """
    content = conn.execute(
        select(R.c.content).where(
            R.c.res_type == "Group", R.c.res_id == group_id, R.c.deleted == false()
        )
    ).scalar()
    if content is None:
        raise not_found(f"Group/{group_id} is not known.")
    ids = []
    for member in orjson.loads(content).get("member") or []:
        if member.get("inactive") is True:
            continue
        end = (member.get("period") or {}).get("end")
        if end and parse_date_range(end).high < now:
            continue
        # Local Patient references only, as the compartment index records them.
        ref = parse_reference((member.get("entity") or {}).get("reference") or "")
        if ref is not None and ref[0] == "Patient" and ref[2] is None:
            ids.append(ref[1])
    return ids


def _id_list(store: Store, ids: list[str]):
    """A sub-query of ``ids`` bound as one JSON parameter: a cohort may outgrow the limit on
    bind parameters per statement (32,766 in SQLite)."""
    if store.dialect == "sqlite":
        values = func.json_each(orjson.dumps(ids).decode()).table_valued("value")
    else:
        values = func.json_array_elements_text(literal(ids, JSON)).table_valued("value")
    return select(values.c.value)
