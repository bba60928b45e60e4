"""``run_extract``: a project's research store, from the data layer through the gate.

1. The gate's named code path for research (``carelight.access.research.extract_access``)
   refuses unless the project is approved or active, and gives a context whose SQL condition
   leaves out everyone opted out of research (unless the project's basis exempts it) and every
   security-labelled resource.
2. The extract is recorded (``sde_extract``, status running) with the transparency log's
   checkpoint it is taken at: tree size and root hash of a freshly signed checkpoint.
3. In one read snapshot: counts per resource type, the number of people left out for their
   opt-out (never who), the number of labelled resources withheld; then each needed resource
   type is streamed in primary-key order, each resource mapped to pseudonymised staging rows
   (``mapping``), written to a staging DuckDB in batches (``staging``). Which Patient records
   were included goes to ``sde_extract_person`` (operational side only).
4. The research tables are built from staging (``build``): with DuckDB into ``research.duckdb``
   and ``parquet/<table>.parquet``; with Spark (local mode) the Parquet only. The folder is
   written as ``<id>.part`` and renamed when complete, so a store is never seen half-written.
5. The record is completed and an ``sde-extract`` entry appended to the log, in one transaction.
   On any failure the record says failed (with the error's kind, never data) and the partial
   folder and the inclusion rows are removed.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import Connection, delete, false, func, insert, select, update

from carelight.access.accounts import write_transaction
from carelight.access.gate import Gate
from carelight.access.optout import opted_out_records
from carelight.access.principal import Purpose
from carelight.access.research import ResearchExtractContext, extract_access, withheld_label
from carelight.config import Settings
from carelight.fhir import schema
from carelight.fhir.errors import FhirError
from carelight.fhir.store import Store
from carelight.sde.extract.mapping import SOURCES, Directory, Mapper
from carelight.sde.extract.pseudonyms import Pseudonymiser
from carelight.sde.extract.staging import BATCH_ROWS, Staging
from carelight.sde.governance import Governance
from carelight.sde.tables import sde_extract as X
from carelight.sde.tables import sde_extract_person as XP
from carelight.sde.transparency import project_reference, record_sde_event

R, C, PL = schema.resource, schema.compartment, schema.person_link
ENGINES = ("duckdb", "spark")
FETCH_ROWS = 2000
INCLUDED_BATCH = 5000
Progress = Callable[[int, int, str], None]


class ExtractError(Exception):
    """The extract was refused or failed; the message says why (never patient data)."""


@dataclass
class ExtractResult:
    id: str
    project_id: int
    folder: Path
    engine: str
    started: float
    finished: float
    log_tree_size: int
    log_root_hash: str
    tables: list[str]
    source_counts: dict[str, int] = field(default_factory=dict)
    table_rows: dict[str, int] = field(default_factory=dict)
    people: int = 0
    opted_out: int = 0
    opt_outs_applied: bool = True
    withheld: int = 0
    log_index: int | None = None
    resources: int = 0


def extract_folder(home: Path, project_id: int, extract_id: str) -> Path:
    return home / "sde" / "projects" / str(project_id) / "extracts" / extract_id


def run_extract(
    store: Store,
    trail,
    settings: Settings,
    project_id: int,
    *,
    engine: str = "duckdb",
    progress: Progress | None = None,
    batch_rows: int | None = None,
) -> ExtractResult:
    """Build project ``project_id``'s research store; see the module's docstring."""
    if engine not in ENGINES:
        raise ExtractError(f"Unknown engine {engine!r}; use duckdb or spark.")
    try:
        ctx = extract_access(Gate(store), project_id)
    except FhirError as exc:
        raise ExtractError(exc.message) from None
    project = Governance(store.engine, trail).get(project_id)
    tables = list(project.tables)
    started = time.time()
    stamp = dt.datetime.fromtimestamp(started, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    extract_id = f"{stamp}-{secrets.token_hex(3)}"
    checkpoint = trail.log.latest_checkpoint(force=True)
    result = ExtractResult(
        extract_id, project_id, extract_folder(settings.home, project_id, extract_id), engine,
        started, 0.0, checkpoint.tree_size, checkpoint.root_hash.hex(), tables,
        opt_outs_applied=ctx.opt_outs_apply,
    )  # fmt: skip
    with write_transaction(store.engine) as conn:
        conn.execute(
            insert(X).values(
                id=extract_id, project_id=project_id, status="running", engine=engine,
                started=started, log_tree_size=result.log_tree_size,
                log_root_hash=result.log_root_hash, tables=orjson.dumps(tables).decode(),
                opt_outs_applied=ctx.opt_outs_apply,
            )
        )  # fmt: skip
    work = settings.home / "sde" / "work" / extract_id
    part = result.folder.with_name(result.folder.name + ".part")
    try:
        work.mkdir(parents=True)
        part.mkdir(parents=True)
        pseudonymiser = Pseudonymiser.for_project(settings.home, project_id)
        staging = Staging(work / "staging.duckdb", batch_rows or BATCH_ROWS)
        try:
            _stage(store, ctx, tables, pseudonymiser, staging, result, progress)
            staging.flush()
            staging.close()
            if engine == "duckdb":
                from carelight.sde.extract.write_duckdb import write_duckdb

                result.table_rows = write_duckdb(work / "staging.duckdb", part, tables, progress)
            else:
                from carelight.sde.extract.write_spark import write_spark

                result.table_rows = write_spark(work / "staging.duckdb", work, part, tables,
                                                progress)  # fmt: skip
            from carelight.sde.extract.write_duckdb import complete_layout

            complete_layout(part, tables)
        finally:
            staging.close()
        result.people = result.table_rows.get("patients", 0)
        part.rename(result.folder)
        result.finished = time.time()
        _complete(store, trail, result)
    except BaseException as exc:
        _fail(store, extract_id, exc)
        shutil.rmtree(part, ignore_errors=True)
        shutil.rmtree(result.folder, ignore_errors=True)
        if isinstance(exc, ExtractError | KeyboardInterrupt):
            raise
        raise ExtractError(
            f"The extract {extract_id} failed ({type(exc).__name__}); nothing was kept."
        ) from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


@contextmanager
def _snapshot(store: Store):
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def _types_for(tables: list[str]) -> list[str]:
    types: dict[str, None] = {}
    for t in tables:
        for res_type in SOURCES[t][1]:
            types[res_type] = None
    return list(types)


def _stage(
    store: Store,
    ctx: ResearchExtractContext,
    tables: list[str],
    pseudonymiser: Pseudonymiser,
    staging: Staging,
    result: ExtractResult,
    progress: Progress | None,
) -> None:
    staging_tables = {s for t in tables for s in SOURCES[t][0]}
    types = _types_for(tables)
    with _snapshot(store) as conn:
        directory = Directory()
        for (content,) in conn.execute(
            select(R.c.content).where(
                R.c.res_type.in_(["Organization", "Questionnaire"]), R.c.deleted == false(),
                ctx.condition(R),
            )
        ):  # fmt: skip
            directory.add(orjson.loads(content))
        # For the progress bar only (an index count): what was read under the gate's
        # condition is counted as it streams, and that is what is recorded.
        total = sum(
            conn.execute(
                select(func.count()).where(R.c.res_type == res_type, R.c.deleted == false())
            ).scalar_one()
            for res_type in types
        )
        result.opted_out = _opted_out(conn) if ctx.opt_outs_apply else 0
        result.withheld = _withheld(conn, types)
        mapper = Mapper(directory, secrets.token_bytes(32), staging_tables)
        done = 0
        included: list[dict] = []
        for res_type in types:
            stmt = (
                select(R.c.pk, R.c.last_updated, R.c.content, C.c.patient_id, PL.c.person)
                .select_from(
                    R.join(C, C.c.res_pk == R.c.pk).join(PL, PL.c.patient_id == C.c.patient_id)
                )
                .where(
                    R.c.res_type == res_type,
                    R.c.deleted == false(),
                    ctx.condition_for(R, res_type),
                )
                .order_by(R.c.pk)
            )
            rows = conn.execute(stmt, execution_options={"yield_per": FETCH_ROWS})
            last_pk = None
            read = 0
            for batch in rows.partitions():
                for pk, updated, content, holder, person in batch:
                    if pk != last_pk:  # a row per compartment: count each resource once
                        read += 1
                        last_pk = pk
                    resource = orjson.loads(content)
                    if _subject(resource) != holder:
                        continue  # in this person's compartment, but about someone else
                    pid = pseudonymiser.pseudonym(person)
                    for table, row in mapper.rows(resource, pid, updated, pk):
                        staging.add(table, row)
                    if res_type == "Patient":
                        included.append({"extract_id": result.id, "patient_id": holder})
                if len(included) >= INCLUDED_BATCH:
                    _include(store, included)
                    included = []
                if progress is not None:
                    progress(done + read, total, f"Reading {res_type}")
            result.source_counts[res_type] = read
            done += read
        _include(store, included)
        result.resources = done


def _subject(resource: dict) -> str | None:
    """The Patient a resource is about (its own id for a Patient)."""
    if resource.get("resourceType") == "Patient":
        return resource.get("id")
    for key in ("subject", "patient"):
        ref = (resource.get(key) or {}).get("reference") or ""
        if ref.startswith("Patient/"):
            return ref[len("Patient/") :]
    return None


def _include(store: Store, rows: list[dict]) -> None:
    if rows:
        with write_transaction(store.engine) as conn:
            conn.execute(insert(XP), rows)


def _opted_out(conn: Connection) -> int:
    """How many people (persons) are left out for their research opt-out: a count only."""
    return conn.execute(
        select(func.count(func.distinct(PL.c.person))).where(
            PL.c.patient_id.in_(opted_out_records(Purpose.HRESCH))
        )
    ).scalar_one()


def _withheld(conn: Connection, types: list[str]) -> int:
    """How many resources of these types carry a withheld security label: a count only."""
    return conn.execute(
        select(func.count()).where(
            R.c.res_type.in_(types), R.c.deleted == false(), withheld_label(R)
        )
    ).scalar_one()


def _complete(store: Store, trail, result: ExtractResult) -> None:
    from carelight.access.principal import Principal, Role

    service = Principal(
        username=f"sde-extract/project-{result.project_id}",
        role=Role.RESEARCH_EXTRACT,
        display=f"Research extract for project {result.project_id}",
    )
    with write_transaction(store.engine) as conn:
        result.log_index = record_sde_event(
            trail, service, "sde-extract",
            (project_reference(result.project_id), f"Binary/sde-extract-{result.id}"),
            f"extract {result.id}: {result.people} people, {result.opted_out} opted out, "
            f"taken at log size {result.log_tree_size}",
        )  # fmt: skip
        conn.execute(
            update(X)
            .where(X.c.id == result.id)
            .values(
                status="completed", finished=result.finished,
                source_counts=orjson.dumps(result.source_counts).decode(),
                table_rows=orjson.dumps(result.table_rows).decode(), people=result.people,
                opted_out=result.opted_out, withheld=result.withheld, log_index=result.log_index,
            )
        )  # fmt: skip


def _fail(store: Store, extract_id: str, exc: BaseException) -> None:
    try:
        with write_transaction(store.engine) as conn:
            conn.execute(delete(XP).where(XP.c.extract_id == extract_id))
            conn.execute(
                update(X)
                .where(X.c.id == extract_id)
                .values(status="failed", finished=time.time(), error=type(exc).__name__)
            )
    except Exception:  # the original failure matters more; the record stays "running"
        pass
