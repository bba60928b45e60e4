"""The FHIR store: current resources, their full history, and the search index.

Every write validates the resource, gives it a new version and ``meta``, records the version,
and rewrites its search-index rows, all in one database transaction. Reads return the stored
JSON text untouched, so a read never parses or re-serialises a resource.

The store is the data layer's one door to the database; the REST API and (later) the access
gate call it, applications never open the database themselves.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import re
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

import jsonpatch
import orjson
from sqlalchemy import Connection, Engine, delete, false, insert, or_, select, true, update
from sqlalchemy.exc import IntegrityError

from carelight.fhir import schema
from carelight.fhir.db import make_engine, migrate
from carelight.fhir.errors import (
    FhirError,
    Issue,
    bad_request,
    conflict,
    gone,
    not_found,
    precondition_failed,
)
from carelight.fhir.extract import extract_rows
from carelight.fhir.relationships import care_relationships
from carelight.fhir.resource_types import SUPPORTED
from carelight.fhir.scope import Access, condition_of
from carelight.fhir.validation import validate_resource

R = schema.resource
V = schema.resource_version


def now_instant() -> float:
    # Millisecond precision: the same instant is written to meta.lastUpdated and the column.
    return round(time.time(), 3)


def instant_text(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class StoredResource:
    res_type: str
    res_id: str
    version_id: int
    last_updated: float
    deleted: bool
    content: str | None  # JSON text with meta; None for a deletion
    pk: int | None = None
    source: str | None = None  # meta.source: the system that wrote it (kept after a delete)

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    @property
    def last_modified(self) -> str:
        return formatdate(self.last_updated, usegmt=True)

    @property
    def location(self) -> str:
        return f"{self.res_type}/{self.res_id}/_history/{self.version_id}"

    def json(self) -> dict:
        if self.content is None:
            raise gone(f"{self.res_type}/{self.res_id} was deleted.")
        return orjson.loads(self.content)


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    stored: StoredResource
    created: bool  # a new resource (201) rather than a new version of one (200)
    changed: bool = True  # False for a conditional create that found a match


@dataclass
class LoadReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[Any, str]] = field(default_factory=list)  # (label, reason): refused

    @property
    def loaded(self) -> int:
        return self.created + self.updated


def _parse_etag(value: str) -> int:
    v = value.strip()
    if v.startswith("W/"):
        v = v[2:]
    v = v.strip('"')
    try:
        return int(v)
    except ValueError as exc:
        raise bad_request(f'If-Match must be an ETag like W/"3", not {value!r}.') from exc


def check_type(res_type: str) -> None:
    if res_type not in SUPPORTED:
        raise not_found(f"Resource type '{res_type}' is not supported by this server.")


def _without_volatile_meta(resource: dict) -> dict:
    """The resource as the writer gave it: no versionId/lastUpdated, so re-loads compare equal."""
    meta = resource.get("meta")
    if not meta:
        return resource
    trimmed = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
    out = dict(resource)
    if trimmed:
        out["meta"] = trimmed
    else:
        out.pop("meta")
    return out


class Store:
    """SQLAlchemy Core over SQLite or PostgreSQL. Thread-safe; one per process."""

    def __init__(self, engine: Engine, base_url: str = "") -> None:
        self.engine = engine
        self.base_url = base_url.rstrip("/")
        self.dialect = engine.dialect.name
        mark = "?" if self.dialect == "sqlite" else "%s"
        from carelight.identity.mpi.core import MasterPatientIndex

        # Every Patient write decides the record's person in the same transaction.
        self.mpi = MasterPatientIndex(self)
        self._read_sql = (
            "SELECT pk, version_id, last_updated, deleted, content, source FROM resource "
            f"WHERE res_type = {mark} AND res_id = {mark}"
        )

    # -- transactions --------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction (on SQLite: BEGIN IMMEDIATE)."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(carelight_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read_conn(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    # -- read ----------------------------------------------------------------------------
    def read(
        self,
        res_type: str,
        res_id: str,
        conn: Connection | None = None,
        access: Access | None = None,
    ) -> StoredResource:
        check_type(res_type)
        if conn is None:
            with self.engine.connect() as c:
                return self.read(res_type, res_id, c, access)
        row = self._current(conn, res_type, res_id)
        if row is None:
            raise not_found(f"{res_type}/{res_id} is not known.")
        if access is not None:
            self._check_visible(conn, row, access)
        if row.deleted:
            raise gone(f"{res_type}/{res_id} was deleted.")
        return row

    @staticmethod
    def _check_visible(conn: Connection, row: StoredResource, access: Access) -> None:
        """Raise the access policy's refusal unless the caller may see this resource."""
        what = f"{row.res_type}/{row.res_id}"
        if row.deleted:
            if not access.may_see_deleted(row):
                raise access.refused(what)
            return
        if not access.visible(conn, row.pk):
            raise access.refused(what)

    def vread(
        self,
        res_type: str,
        res_id: str,
        version_id: str,
        conn: Connection | None = None,
        access: Access | None = None,
    ) -> StoredResource:
        check_type(res_type)
        try:
            vid = int(version_id)
        except ValueError as exc:
            raise not_found(f"{res_type}/{res_id} has no version '{version_id}'.") from exc
        if conn is None:
            with self.engine.connect() as c:
                return self.vread(res_type, res_id, version_id, conn=c, access=access)
        if access is not None:
            # Versions are as visible as the resource is now.
            current = self._current(conn, res_type, res_id)
            if current is None:
                raise not_found(f"{res_type}/{res_id} is not known.")
            self._check_visible(conn, current, access)
        row = conn.execute(
            select(V.c.version_id, V.c.last_updated, V.c.deleted, V.c.content).where(
                V.c.res_type == res_type, V.c.res_id == res_id, V.c.version_id == vid
            )
        ).first()
        if row is None:
            raise not_found(f"{res_type}/{res_id} has no version {vid}.")
        stored = StoredResource(res_type, res_id, row[0], row[1], row[2], row[3])
        if stored.deleted:
            raise gone(f"Version {vid} of {res_type}/{res_id} is a deletion.")
        return stored

    def _current(
        self, conn: Connection, res_type: str, res_id: str, *, for_update: bool = False
    ) -> StoredResource | None:
        if not for_update:
            # The hottest query of all (every read): straight to the driver, skipping
            # SQLAlchemy's statement handling.
            row = conn.exec_driver_sql(self._read_sql, (res_type, res_id)).first()
            if row is None:
                return None
            return StoredResource(
                res_type, res_id, row[1], row[2], row[3], row[4], pk=row[0], source=row[5]
            )
        stmt = select(
            R.c.pk, R.c.version_id, R.c.last_updated, R.c.deleted, R.c.content, R.c.source
        ).where(R.c.res_type == res_type, R.c.res_id == res_id)
        if for_update and self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None:
            return None
        return StoredResource(
            res_type, res_id, row[1], row[2], row[3], row[4], pk=row[0], source=row[5]
        )

    # -- write ---------------------------------------------------------------------------
    def create(
        self,
        resource: dict,
        *,
        if_none_exist: str | None = None,
        source: str | None = None,
        conn: Connection | None = None,
        res_id: str | None = None,
        access: Access | None = None,
    ) -> WriteOutcome:
        if conn is None:
            with self.write() as c:
                return self.create(
                    resource,
                    if_none_exist=if_none_exist,
                    source=source,
                    conn=c,
                    res_id=res_id,
                    access=access,
                )
        validate_resource(resource, allow_urn=False)
        res_type = resource["resourceType"]
        if if_none_exist:
            from carelight.fhir.search.execute import match_ids, parse_query_string

            found = match_ids(
                self, conn, res_type, parse_query_string(if_none_exist), limit=2, access=access
            )
            if len(found) > 1:
                raise precondition_failed(
                    f"If-None-Exist matched {len(found)} {res_type} resources; it must match at most one."
                )
            if found:
                existing = self.read(res_type, found[0], conn=conn, access=access)
                return WriteOutcome(existing, created=False, changed=False)
        new_id = res_id or str(uuid.uuid4())
        stored = self._write(conn, res_type, new_id, resource, "POST", None, source, access)
        return WriteOutcome(stored, created=True)

    def update(
        self,
        res_type: str,
        res_id: str,
        resource: dict,
        *,
        if_match: str | None = None,
        source: str | None = None,
        conn: Connection | None = None,
        method: str = "PUT",
        access: Access | None = None,
    ) -> WriteOutcome:
        if conn is None:
            with self.write() as c:
                return self.update(
                    res_type,
                    res_id,
                    resource,
                    if_match=if_match,
                    source=source,
                    conn=c,
                    method=method,
                    access=access,
                )
        check_type(res_type)
        validate_resource(resource, expected_type=res_type, allow_urn=False)
        body_id = resource.get("id")
        if body_id is None:
            raise bad_request("The resource in an update must have an id.", f"{res_type}.id")
        if body_id != res_id:
            raise bad_request(
                f"The resource id '{body_id}' does not match the id in the URL '{res_id}'.",
                f"{res_type}.id",
            )
        current = self._current(conn, res_type, res_id, for_update=True)
        if if_match is not None:
            wanted = _parse_etag(if_match)
            if current is None or current.deleted or current.version_id != wanted:
                have = (
                    "no current version"
                    if current is None or current.deleted
                    else f"version {current.version_id}"
                )
                raise precondition_failed(
                    f"{res_type}/{res_id} has {have}, not version {wanted} (If-Match): "
                    "someone else changed it; read it again and re-apply your change."
                )
        stored = self._write(conn, res_type, res_id, resource, method, current, source, access)
        return WriteOutcome(stored, created=current is None or current.deleted)

    def patch(
        self,
        res_type: str,
        res_id: str,
        operations: Any,
        *,
        if_match: str | None = None,
        source: str | None = None,
        conn: Connection | None = None,
        access: Access | None = None,
    ) -> WriteOutcome:
        if conn is None:
            with self.write() as c:
                return self.patch(
                    res_type,
                    res_id,
                    operations,
                    if_match=if_match,
                    source=source,
                    conn=c,
                    access=access,
                )
        if not isinstance(operations, list):
            raise bad_request("A JSON Patch body must be an array of operations.")
        current = self.read(res_type, res_id, conn=conn, access=access)
        try:
            patched = jsonpatch.JsonPatch(operations).apply(current.json())
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise FhirError(
                422, [_issue("processing", f"The JSON Patch could not be applied: {exc}")]
            ) from exc
        except (TypeError, KeyError, ValueError) as exc:
            raise bad_request(f"The JSON Patch is malformed: {exc}") from exc
        if patched.get("resourceType") != res_type or patched.get("id") != res_id:
            raise FhirError(
                422, [_issue("processing", "A patch may not change resourceType or id.")]
            )
        # Patch what was read: a concurrent change in between is a lost update, so 412.
        return self.update(
            res_type,
            res_id,
            patched,
            if_match=if_match or current.etag,
            source=source,
            conn=conn,
            method="PATCH",
            access=access,
        )

    def delete(
        self,
        res_type: str,
        res_id: str,
        *,
        conn: Connection | None = None,
        access: Access | None = None,
    ) -> bool:
        """Delete; history is kept. True if something was deleted now, False if already gone."""
        if conn is None:
            with self.write() as c:
                return self.delete(res_type, res_id, conn=c, access=access)
        check_type(res_type)
        current = self._current(conn, res_type, res_id, for_update=True)
        if current is None:
            raise not_found(f"{res_type}/{res_id} is not known.")
        if access is not None:
            self._check_visible(conn, current, access)
            if not current.deleted:
                access.before_delete(current)
        if current.deleted:
            return False
        ts = now_instant()
        version = current.version_id + 1
        self._clear_index(conn, current.pk)
        if res_type == "Patient":
            self.mpi.forget(conn, res_id)
        conn.execute(
            update(R)
            .where(R.c.pk == current.pk)
            .values(version_id=version, last_updated=ts, deleted=True, content=None)
        )
        conn.execute(
            insert(V).values(
                res_type=res_type,
                res_id=res_id,
                version_id=version,
                last_updated=ts,
                method="DELETE",
                deleted=True,
                source=current.source,
                content=None,
            )
        )
        return True

    def _write(
        self,
        conn: Connection,
        res_type: str,
        res_id: str,
        resource: dict,
        method: str,
        current: StoredResource | None,
        source: str | None,
        access: Access | None = None,
        *,
        linking: bool = True,
    ) -> StoredResource:
        ts = now_instant()
        version = 1 if current is None else current.version_id + 1
        if access is not None and source is None:
            source = access.source
        pending = None
        if res_type == "Patient" and linking:
            pending = self.mpi.before_write(conn, res_id, resource)
            resource = pending.resource
        content = self._with_meta(resource, res_id, version, ts, source)
        rows = index_rows(content)
        if access is not None:
            if current is not None:
                self._check_visible(conn, current, access)
            access.before_write(content, current, rows)
        text = orjson.dumps(content).decode()
        meta_source = content["meta"].get("source")
        if current is None:
            try:
                pk = conn.execute(
                    insert(R)
                    .values(
                        res_type=res_type,
                        res_id=res_id,
                        version_id=version,
                        last_updated=ts,
                        deleted=False,
                        source=meta_source,
                        content=text,
                    )
                    .returning(R.c.pk)
                ).scalar_one()
            except IntegrityError as exc:
                raise conflict(
                    f"{res_type}/{res_id} was created by another request at the same time; retry."
                ) from exc
        else:
            pk = current.pk
            self._clear_index(conn, pk)
            conn.execute(
                update(R)
                .where(R.c.pk == pk)
                .values(
                    version_id=version,
                    last_updated=ts,
                    deleted=False,
                    source=meta_source,
                    content=text,
                )
            )
        conn.execute(
            insert(V).values(
                res_type=res_type,
                res_id=res_id,
                version_id=version,
                last_updated=ts,
                method=method,
                deleted=False,
                source=meta_source,
                content=text,
            )
        )
        self._write_index(conn, pk, res_type, rows)
        if pending is not None:
            self.mpi.after_write(conn, pk, pending)
            self.mpi.log(pending.events)
        return StoredResource(res_type, res_id, version, ts, False, text, pk=pk, source=meta_source)

    @staticmethod
    def _with_meta(
        resource: dict, res_id: str, version: int, ts: float, source: str | None
    ) -> dict:
        given = resource.get("meta") or {}
        # versionId and lastUpdated first: the bulk loader fills them into prepared JSON text.
        meta = {"versionId": str(version), "lastUpdated": instant_text(ts)}
        meta.update((k, v) for k, v in given.items() if k not in meta)
        if source and not meta.get("source"):
            meta["source"] = source
        out: dict = {"resourceType": resource["resourceType"], "id": res_id, "meta": meta}
        for key, value in resource.items():
            if key not in out:
                out[key] = value
        return out

    def set_assigned_number(self, conn: Connection, res_id: str, number: str | None) -> bool:
        """Give a Patient record the NHS number of the person the index linked it to (or take
        away one it gave before, with None): a new version when that changes anything."""
        from carelight.identity.mpi.core import assign_number, has_nhs_identifier, strip_assigned

        current = self._current(conn, "Patient", res_id, for_update=True)
        if current is None or current.deleted:
            return False
        doc = current.json()
        clean = strip_assigned(doc)
        want = assign_number(clean, number) if number and not has_nhs_identifier(clean) else clean
        if want == doc:
            return False
        self._write(conn, "Patient", res_id, want, "PUT", current, None, linking=False)
        return True

    # -- search index --------------------------------------------------------------------
    @staticmethod
    def _clear_index(conn: Connection, pk: int | None) -> None:
        for table in (*schema.INDEX_TABLES, *schema.DERIVED_TABLES):
            conn.execute(delete(table).where(table.c.res_pk == pk))

    @staticmethod
    def _write_index(conn: Connection, pk: int, res_type: str, entries: Compact) -> None:
        """One resource's index rows, through the same row builder and insert as bulk loads."""
        rows: list[list[tuple]] = [[] for _ in _INDEX_COLUMNS]
        _add_index_tuples(rows, pk, res_type, entries)
        _insert_index_rows(conn, rows)

    # -- bulk load -----------------------------------------------------------------------
    def bulk_load(
        self,
        resources: Iterable[Any],
        *,
        batch_size: int = 2000,
        source: str | None = None,
        progress: Any = None,
        workers: int | None = None,
    ) -> LoadReport:
        """Load resources that carry their own ids (update-with-id semantics, idempotent).

        Each item is a resource (a dict, or JSON bytes), or a ``(label, resource[, source])``
        tuple where the label (e.g. ``"Patient.ndjson:12"``) names it in the report and the
        source is the writing system's URI for resources without ``meta.source``. Invalid resources are reported
        and skipped; the rest load. Unchanged resources (same content) are not re-versioned.

        Validation and index extraction, the costly part, run in ``workers`` processes
        (default: one per CPU) while this process writes the previous batch; each batch is
        one transaction.
        """
        # Into an empty store, build the search index's B-trees once at the end (a sort)
        # instead of row by row: about a quarter less work for the single writer. If the
        # load dies half-way, the next open_store() puts the indexes back.
        deferred = self._is_empty()
        if deferred:
            self.drop_search_indexes()
        try:
            report = self._bulk_load(resources, batch_size, source, progress, workers)
        finally:
            if deferred:
                self.ensure_indexes()
        if report.loaded:
            self.analyze()
        return report

    def _is_empty(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(R.c.pk).limit(1)).first() is None

    @staticmethod
    def _search_indexes() -> list:
        """Every non-unique index of the resource, version, index and derived tables."""
        tables = (*schema.INDEX_TABLES, *schema.DERIVED_TABLES, R, V)
        return [ix for t in tables for ix in t.indexes]

    @staticmethod
    def _deferred_indexes() -> list:
        """Indexes a load into an empty store builds at the end: those whose entries land all
        over the B-tree (values, codes, targets). Indexes a load appends to in order stay:
        ``res_pk`` grows with every batch, and lastUpdated and type follow the load, so they
        cost the writer little as it goes, while building those on ``resource`` and
        ``resource_version`` at the end would read both tables, JSON and all, five times over.
        """
        # person_link stays: the master patient index reads it for every loaded Patient.
        tables = (*schema.INDEX_TABLES, *schema.DERIVED_TABLES)
        return [
            ix
            for t in tables
            if t is not schema.person_link
            for ix in t.indexes
            if [c.name for c in ix.columns] != ["res_pk"]
        ]

    def drop_search_indexes(self) -> None:
        for ix in self._deferred_indexes():
            ix.drop(self.engine, checkfirst=True)

    def ensure_indexes(self) -> None:
        """Create any index of the schema that is missing (after an interrupted bulk load)."""
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                # Sort on disk, not in memory: an index build must not need RAM in
                # proportion to the store.
                # (on the driver connection: SQLite refuses it inside a transaction)
                conn.connection.driver_connection.execute("PRAGMA temp_store=FILE")
                # Sort with helper threads: the build is the one serial step of a load.
                conn.connection.driver_connection.execute(f"PRAGMA threads={os.cpu_count() or 1}")
            try:
                for ix in self._search_indexes():
                    ix.create(conn, checkfirst=True)
                conn.commit()
            finally:
                if self.dialect == "sqlite":
                    conn.rollback()
                    conn.connection.driver_connection.execute("PRAGMA temp_store=MEMORY")
                    conn.connection.driver_connection.execute("PRAGMA threads=0")

    def _bulk_load(self, resources, batch_size, source, progress, workers) -> LoadReport:
        # Up to _AHEAD batches per worker are prepared ahead of the writer: enough for the
        # workers to keep going while the writer is slower than they are (the Patients, which
        # come first and which the master patient index decides one by one, cost the writer
        # several times a usual resource), few enough that memory stays bounded (~6 MB each).
        report = LoadReport()
        # On SQLite the workers hand each batch back as a small SQLite database (see
        # pack_batch), which the writer copies with INSERT … SELECT: no Python objects per row,
        # and the writer needs about a fifth of a worker's CPU, so one worker per core. On
        # PostgreSQL the writer (this process) is busy about as long as a worker: one core
        # each; more workers than cores - 1 only take CPU from the writer.
        pack = self.dialect == "sqlite"
        if workers is None:
            workers = max(1, (os.cpu_count() or 1) - (0 if pack else 1))
        batches = _batches(resources, batch_size, report, as_bytes=workers > 0)
        if workers <= 0:
            for batch in batches:
                self._write_batch(prepare_batch(batch, source), report, source)
                if progress:
                    progress(len(batch))
            return report
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_exit_with_parent
        ) as pool:
            pending: deque = deque()
            for batch in batches:
                pending.append((len(batch), pool.submit(prepare_batch, batch, source, pack)))
                if len(pending) > _AHEAD * workers:
                    n, fut = pending.popleft()
                    self._write_batch(fut.result(), report, source)
                    if progress:
                        progress(n)
            while pending:
                n, fut = pending.popleft()
                self._write_batch(fut.result(), report, source)
                if progress:
                    progress(n)
        return report

    def analyze(self) -> None:
        """Refresh the planner's statistics (after a bulk load; cheap on both engines)."""
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                # Sampled statistics: milliseconds even on a multi-gigabyte file.
                conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            conn.exec_driver_sql("ANALYZE")
            conn.commit()

    def _write_batch(self, prepared: PreparedBatch, report: LoadReport, source: str | None) -> None:
        report.errors.extend(prepared.errors)
        if prepared.packed is not None:
            self._write_packed(prepared.packed, report)
            return
        valid = prepared.resources
        if not valid:
            return
        with self.write() as conn:
            existing = {
                (row.res_type, row.res_id): row
                for row in conn.execute(
                    select(
                        R.c.pk, R.c.res_type, R.c.res_id, R.c.version_id, R.c.deleted, R.c.content
                    ).where(schema.keys_condition(valid))
                )
            }
            ts = now_instant()
            stamp = instant_text(ts)
            new_rows, changed = [], []
            for key, (text, entries) in valid.items():
                row = existing.get(key)
                if row is not None and not row.deleted and row.content is not None:
                    stored = _VOLATILE_META.sub(_PLACEHOLDER_META, row.content, count=1)
                    # Same text is the common case on a re-load; otherwise compare content, so
                    # key order or 48 vs 48.0 do not make a new version.
                    if stored == text or _same_content(key[0], stored, text):
                        report.unchanged += 1
                        continue
                version = 1 if row is None else row.version_id + 1
                content = text.replace(
                    _PLACEHOLDER_META,
                    f'"meta":{{"versionId":"{version}","lastUpdated":"{stamp}"',
                    1,
                )
                record = {
                    "res_type": key[0],
                    "res_id": key[1],
                    "version_id": version,
                    "last_updated": ts,
                    "deleted": False,
                    "source": prepared.sources.get(key),
                    "content": content,
                }
                if row is None:
                    new_rows.append((record, entries))
                else:
                    changed.append((row.pk, record, entries))
            index_rows: list[list[tuple]] = [[] for _ in _INDEX_COLUMNS]
            pks = self._reserve_pks(conn, len(new_rows))
            resource_rows = []
            for pk, (rec, entries) in zip(pks, new_rows, strict=True):
                resource_rows.append((pk, *(rec[c] for c in _RESOURCE_COLUMNS)))
                _add_index_tuples(index_rows, pk, rec["res_type"], entries)
            if resource_rows:
                _insert_rows(conn, R, ("pk", *_RESOURCE_COLUMNS), resource_rows)
            for pk, rec, entries in changed:
                self._clear_index(conn, pk)
                conn.execute(update(R).where(R.c.pk == pk).values(**rec))
                _add_index_tuples(index_rows, pk, rec["res_type"], entries)
            versions = [
                (*(rec[c] for c in _RESOURCE_COLUMNS), "PUT" if rec["version_id"] > 1 else "POST")
                for rec in [r for r, _ in new_rows] + [r for _, r, _ in changed]
            ]
            if versions:
                _insert_rows(conn, V, (*_RESOURCE_COLUMNS, "method"), versions)
            _insert_index_rows(conn, index_rows)
            report.created += len(new_rows)
            report.updated += len(changed)
            written = [(pk, rec, entries) for pk, (rec, entries) in zip(pks, new_rows, strict=True)]
            self._link_patients(conn, written + changed)

    def _link_patients(self, conn: Connection, written: list[tuple[int, dict, Compact]]) -> None:
        """The master patient index decides each loaded Patient's person, one after another
        (so records of one person in one batch find each other), in the batch's transaction."""
        events = []
        for pk, rec, entries in written:
            if rec["res_type"] != "Patient":
                continue
            doc = orjson.loads(rec["content"])
            pending = self.mpi.before_write(conn, rec["res_id"], doc)
            if pending.resource is not doc:  # the index gave it the person's NHS number
                text = orjson.dumps(pending.resource).decode()
                conn.execute(update(R).where(R.c.pk == pk).values(content=text))
                conn.execute(
                    update(V)
                    .where(
                        V.c.res_type == "Patient",
                        V.c.res_id == rec["res_id"],
                        V.c.version_id == rec["version_id"],
                    )
                    .values(content=text)
                )
                new = index_rows(pending.resource)
                if any(set(old) - set(now) for old, now in zip(entries, new, strict=True)):
                    self._clear_index(conn, pk)  # something was taken away: rebuild
                    self._write_index(conn, pk, "Patient", new)
                else:  # only added: insert the new rows (no delete, which needs the indexes)
                    added = tuple(
                        [r for r in now if r not in set(old)]
                        for old, now in zip(entries, new, strict=True)
                    )
                    self._write_index(conn, pk, "Patient", added)
            self.mpi.after_write(conn, pk, pending)
            events += pending.events
        self.mpi.log(events)

    def _write_packed(self, packed: bytes, report: LoadReport) -> None:
        """Write a batch packed by :func:`pack_batch` (SQLite): the same rows, decisions and
        report as the unpacked path, but rows go from the attached batch to the store in C."""
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            # ATTACH and deserialize are refused inside a transaction: both come first.
            raw.execute("ATTACH DATABASE ':memory:' AS w")
            try:
                raw.deserialize(packed, name="w")
                conn = conn.execution_options(carelight_write=True)
                with conn.begin():
                    self._copy_packed(conn, report)
                    self._link_patients(conn, self._packed_patients(conn))
            finally:
                raw.execute("DETACH DATABASE w")

    @staticmethod
    def _packed_patients(conn: Connection) -> list[tuple[int, dict, Compact]]:
        """The Patients a packed batch wrote, as :meth:`_link_patients` takes them (new ones
        first, as the plain path lists them); their index rows are extracted again here, which
        costs little: Patients are about one resource in a hundred."""
        rows = conn.exec_driver_sql(
            "SELECT r.pk, r.res_id, r.version_id, r.content "
            "FROM w.res AS w CROSS JOIN main.resource AS r ON r.pk = w.pk "
            "WHERE w.pk IS NOT NULL AND w.res_type = 'Patient' ORDER BY w.is_new DESC, w.i"
        ).all()
        out = []
        for pk, res_id, version, content in rows:
            rec = {"res_type": "Patient", "res_id": res_id, "version_id": version}
            out.append((pk, {**rec, "content": content}, index_rows(orjson.loads(content))))
        return out

    @staticmethod
    def _copy_packed(conn: Connection, report: LoadReport) -> None:
        sql = conn.exec_driver_sql
        matched = sql(
            # CROSS JOIN keeps the batch as the outer loop: one unique-index probe per row.
            "SELECT w.i, r.pk, r.version_id, r.deleted, r.content, w.head, w.tail, w.res_type "
            "FROM w.res AS w CROSS JOIN main.resource AS r "
            "ON r.res_type = w.res_type AND r.res_id = w.res_id"
        ).all()
        ts = now_instant()
        stamp = instant_text(ts)
        # This transaction holds the write lock (BEGIN IMMEDIATE), so max(pk) is ours.
        top = sql("SELECT coalesce(max(pk), 0) FROM main.resource").scalar_one()
        if not matched:  # the common case: all new, numbered in batch order
            sql("UPDATE w.res SET pk = ? + i, version_id = 1, is_new = 1", (top + 1,))
        else:  # new ones numbered without gaps, as the plain path numbers them
            sql("UPDATE w.res SET version_id = 1, is_new = 1")
            known = {m[0] for m in matched}
            size = sql("SELECT count(*) FROM w.res").scalar_one()
            if fresh := [i for i in range(size) if i not in known]:
                sql(
                    "UPDATE w.res SET pk = ? WHERE i = ?",
                    [(top + 1 + n, i) for n, i in enumerate(fresh)],
                )
        marks, changed = [], []
        for i, pk, version, deleted, stored, head, tail, res_type in matched:
            text = head + _PLACEHOLDER_META + tail
            if not deleted and stored is not None:
                stored = _VOLATILE_META.sub(_PLACEHOLDER_META, stored, count=1)
                if stored == text or _same_content(res_type, stored, text):
                    report.unchanged += 1
                    marks.append((None, None, i))
                    continue
            marks.append((pk, version + 1, i))
            changed.append((pk, version + 1, head, tail))
        if marks:
            sql("UPDATE w.res SET pk = ?, version_id = ?, is_new = 0 WHERE i = ?", marks)
        content = (
            'head || \'"meta":{"versionId":"\' || version_id || '
            '\'","lastUpdated":"\' || ? || \'"\' || tail'
        )
        new = sql(
            "INSERT INTO main.resource "
            "(pk, res_type, res_id, version_id, last_updated, deleted, source, content) "
            f"SELECT pk, res_type, res_id, version_id, ?, 0, source, {content} "
            "FROM w.res WHERE is_new = 1 ORDER BY i",
            (ts, stamp),
        ).rowcount
        for pk, version, head, tail in changed:
            Store._clear_index(conn, pk)
            meta = f'"meta":{{"versionId":"{version}","lastUpdated":"{stamp}"'
            sql(
                "UPDATE main.resource SET version_id = ?, last_updated = ?, deleted = 0, "
                "source = (SELECT source FROM w.res WHERE pk = ?), content = ? WHERE pk = ?",
                (version, ts, pk, head + meta + tail, pk),
            )
        sql(
            "INSERT INTO main.resource_version "
            "(res_type, res_id, version_id, last_updated, deleted, source, content, method) "
            f"SELECT res_type, res_id, version_id, ?, 0, source, {content}, "
            "CASE WHEN version_id > 1 THEN 'PUT' ELSE 'POST' END "
            "FROM w.res WHERE pk IS NOT NULL ORDER BY is_new DESC, i",
            (ts, stamp),
        )
        for k, (table, columns) in enumerate(_INDEX_COLUMNS):
            prefix = ("res_pk",) if table in _NO_RES_TYPE else ("res_pk", "res_type")
            picked = ("r.pk",) if table in _NO_RES_TYPE else ("r.pk", "r.res_type")
            sql(
                f"INSERT INTO main.{table.name} ({', '.join((*prefix, *columns))}) "
                f"SELECT {', '.join((*picked, *(f't.{c}' for c in columns)))} "
                f"FROM w.t{k} AS t CROSS JOIN w.res AS r ON r.i = t.i WHERE r.pk IS NOT NULL"
            )
        report.created += new
        report.updated += len(changed)

    def _reserve_pks(self, conn: Connection, n: int) -> list[int]:
        """Primary keys for n new resources, so the bulk path can insert without RETURNING."""
        if n == 0:
            return []
        if self.dialect == "postgresql":
            return list(
                conn.exec_driver_sql(
                    "SELECT nextval('resource_pk_seq') FROM generate_series(1, %(n)s)", {"n": n}
                ).scalars()
            )
        # SQLite: this transaction holds the write lock (BEGIN IMMEDIATE), so max(pk) is ours.
        top = conn.exec_driver_sql("SELECT coalesce(max(pk), 0) FROM resource").scalar_one()
        return list(range(top + 1, top + 1 + n))

    # -- history -------------------------------------------------------------------------
    def history(
        self,
        res_type: str | None = None,
        res_id: str | None = None,
        *,
        since: float | None = None,
        count: int = 50,
        offset: int = 0,
        access: Access | None = None,
    ) -> tuple[list[dict], bool]:
        """Versions newest first, as dicts; and whether more follow.

        With ``access``, only versions of resources the caller may see now are listed.
        """
        if res_type is not None:
            check_type(res_type)
        stmt = select(
            V.c.res_type,
            V.c.res_id,
            V.c.version_id,
            V.c.last_updated,
            V.c.method,
            V.c.deleted,
            V.c.content,
        )
        if res_type is not None:
            stmt = stmt.where(V.c.res_type == res_type)
        if res_id is not None:
            stmt = stmt.where(V.c.res_id == res_id)
        if since is not None:
            stmt = stmt.where(V.c.last_updated >= since)
        if access is not None:
            # Deleted resources have no index rows left; the policy says whether the caller
            # may see that they were deleted (their own), so those are listed by source.
            live = condition_of(access, R)
            if live is not None:
                cur = R.alias("cur")
                visible = select(R.c.pk).where(
                    R.c.res_type == V.c.res_type, R.c.res_id == V.c.res_id, live
                )
                deleted_own = select(cur.c.pk).where(
                    cur.c.res_type == V.c.res_type,
                    cur.c.res_id == V.c.res_id,
                    cur.c.deleted == true(),
                    cur.c.source.is_not(None),
                    cur.c.source == access.source,
                )
                stmt = stmt.where(or_(visible.exists(), deleted_own.exists()))
        stmt = stmt.order_by(V.c.last_updated.desc(), V.c.pk.desc()).limit(count + 1).offset(offset)
        with self.engine.connect() as conn:
            if res_id is not None:
                current = self._current(conn, res_type, res_id)
                if current is None:
                    raise not_found(f"{res_type}/{res_id} is not known.")
                if access is not None:
                    self._check_visible(conn, current, access)
            rows = conn.execute(stmt).all()
        return [row._asdict() for row in rows[:count]], len(rows) > count

    def _referenced_outside(
        self,
        conn: Connection,
        patient_ids: list[str],
        since: float | None,
        types: Sequence[str] | None,
        access: Access | None = None,
    ) -> list[StoredResource]:
        C, ref = schema.compartment, schema.sp_reference
        members = set(
            conn.execute(
                select(R.c.res_type, R.c.res_id)
                .join(C, C.c.res_pk == R.c.pk)
                .where(C.c.patient_id.in_(patient_ids))
            ).all()
        )
        targets = {
            (t, i)
            for t, i in conn.execute(
                select(ref.c.target_type, ref.c.target_id)
                .join(C, C.c.res_pk == ref.c.res_pk)
                .where(C.c.patient_id.in_(patient_ids), ref.c.target_id.is_not(None))
                .distinct()
            )
            if (t, i) not in members
            and t != "Patient"
            and t in SUPPORTED
            and (not types or t in types)
        }
        if not targets:
            return []
        stmt = select(
            R.c.pk, R.c.res_type, R.c.res_id, R.c.version_id, R.c.last_updated, R.c.content
        ).where(schema.keys_condition(sorted(targets)), R.c.deleted == false())
        if since is not None:
            stmt = stmt.where(R.c.last_updated >= since)
        if (cond := condition_of(access, R)) is not None:
            stmt = stmt.where(cond)
        rows = conn.execute(stmt.order_by(R.c.pk)).all()
        return [StoredResource(r[1], r[2], r[3], r[4], False, r[5], pk=r[0]) for r in rows]

    # -- $everything ---------------------------------------------------------------------
    def everything(
        self,
        patient_id: str,
        *,
        since: float | None = None,
        types: Sequence[str] | None = None,
        count: int = 1000,
        offset: int = 0,
        access: Access | None = None,
    ) -> tuple[list[StoredResource], bool]:
        """The person's record: this Patient and every other Patient record the master patient
        index links to the same person, everything in their compartments, and what those
        refer to.

        With ``access``: refused unless the caller may see the Patient, and filtered to what
        the caller may see.
        """
        C = schema.compartment
        with self.engine.connect() as conn:
            self.read("Patient", patient_id, conn=conn, access=access)
            records = self.person_records(conn, patient_id)
            stmt = select(
                R.c.pk, R.c.res_type, R.c.res_id, R.c.version_id, R.c.last_updated, R.c.content
            ).where(
                R.c.pk.in_(select(C.c.res_pk).where(C.c.patient_id.in_(records))),
                R.c.deleted == false(),
            )
            if since is not None:
                stmt = stmt.where(R.c.last_updated >= since)
            if types:
                stmt = stmt.where(R.c.res_type.in_(list(types)))
            if (cond := condition_of(access, R)) is not None:
                stmt = stmt.where(cond)
            stmt = stmt.order_by(R.c.pk).limit(count + 1).offset(offset)
            rows = conn.execute(stmt).all()
            more = len(rows) > count
            rows = rows[:count]
            found = [StoredResource(r[1], r[2], r[3], r[4], False, r[5], pk=r[0]) for r in rows]
            if offset == 0:
                # Resources the record refers to but that are nobody's compartment members
                # (practitioners, organisations, locations) come once, on the first page.
                found += self._referenced_outside(conn, records, since, types, access)
        return found, more

    @staticmethod
    def person_records(conn: Connection, patient_id: str) -> list[str]:
        """The ids of every Patient record of this record's person (at least itself)."""
        PL = schema.person_link
        person = select(PL.c.person).where(PL.c.patient_id == patient_id).scalar_subquery()
        found = (
            conn.execute(
                select(PL.c.patient_id).where(PL.c.person == person).order_by(PL.c.patient_id)
            )
            .scalars()
            .all()
        )
        return found if patient_id in found else [patient_id, *found]


def _issue(code: str, diagnostics: str) -> Issue:
    return Issue(code, diagnostics)


# (table, columns) in the order of extract_rows; compact tuples pickle ~20x faster than
# the entry dataclasses, which matters when worker processes hand batches back.
_INDEX_COLUMNS = (
    (schema.sp_token, ("param", "system", "code", "text")),
    (schema.sp_string, ("param", "value", "exact")),
    (schema.sp_date, ("param", "low", "high")),
    (schema.sp_number, ("param", "value")),
    (schema.sp_quantity, ("param", "value", "system", "code")),
    (schema.sp_reference, ("param", "target_type", "target_id", "url")),
    (schema.sp_uri, ("param", "value")),
    (schema.compartment, ("patient_id",)),
    (schema.care_relationship, ("patient_id", "org", "kind", "period_start", "period_end")),
)
_NO_RES_TYPE = (schema.compartment, schema.care_relationship)


def index_rows(content: dict) -> Compact:
    """Every derived row of one resource: search index, compartments, relationships.

    (A Patient's person, ``person_link``, is the master patient index's decision, written by
    ``carelight.identity.mpi`` in the same transaction.)
    """
    return (*extract_rows(content), care_relationships(content))


Compact = tuple[list[tuple], ...]
_RESOURCE_COLUMNS = (
    "res_type",
    "res_id",
    "version_id",
    "last_updated",
    "deleted",
    "source",
    "content",
)


def _add_index_tuples(out: list[list[tuple]], pk: int, res_type: str, entries: Compact) -> None:
    for i, values in enumerate(entries):
        if values:
            if _INDEX_COLUMNS[i][0] in _NO_RES_TYPE:
                out[i].extend((pk, *v) for v in values)
            else:
                out[i].extend((pk, res_type, *v) for v in values)


def _insert_index_rows(conn: Connection, rows: list[list[tuple]]) -> None:
    """Insert rows built by :func:`_add_index_tuples`, table by table."""
    for (table, columns), values in zip(_INDEX_COLUMNS, rows, strict=True):
        if values:
            prefix = ("res_pk",) if table in _NO_RES_TYPE else ("res_pk", "res_type")
            _insert_rows(conn, table, (*prefix, *columns), values)


def _insert_rows(conn: Connection, table: Any, columns: Sequence[str], rows: list[tuple]) -> None:
    """Insert many rows straight through the driver: COPY on PostgreSQL, executemany on SQLite.

    The bulk path spends most of its write time building parameters in SQLAlchemy otherwise.
    """
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)


def _same_content(res_type: str, stored: str, text: str) -> bool:
    """Same resource apart from key order and number spelling (and, for a Patient, an NHS
    number the master patient index gave it: the source never sent that)."""
    a, b = orjson.loads(stored), orjson.loads(text)
    if a == b:
        return True
    if res_type == "Patient":
        from carelight.identity.mpi.core import strip_assigned

        return strip_assigned(a) == strip_assigned(b)
    return False


@dataclass
class PreparedBatch:
    """A batch checked and indexed (in a worker process), ready to write."""

    resources: dict[tuple[str, str], tuple[str, Compact]]  # JSON text with placeholder meta
    errors: list[tuple[Any, str]]
    sources: dict[tuple[str, str], str]
    packed: bytes | None = None  # the resources as a serialised SQLite database (pack_batch)


_VOLATILE_META = re.compile(r'"meta":\{"versionId":"[^"]*","lastUpdated":"[^"]*"')
_PLACEHOLDER_META = '"meta":{"versionId":"","lastUpdated":""'


_AHEAD = 8  # batches in flight per worker process (see Store._bulk_load)


def _exit_with_parent() -> None:
    """Make a loader's worker process end when the loader does, however it ends.

    A worker waits for batches on a queue whose both ends it holds, so when the loader is
    killed (SIGKILL, out of memory) it would wait for ever; a daemon thread notices the parent
    has gone (the worker is re-parented) and ends the process.
    """
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _batches(
    items: Iterable[Any], size: int, report: LoadReport, as_bytes: bool
) -> Iterator[list[tuple[Any, Any]]]:
    """Labelled batches; dicts become JSON bytes for worker processes (far cheaper to pickle)."""
    batch: list[tuple[Any, Any]] = []
    for n, item in enumerate(items):
        label, resource, *rest = item if isinstance(item, tuple) else (n, item)
        if as_bytes and isinstance(resource, dict):
            resource = orjson.dumps(resource)
        batch.append((label, resource, rest[0] if rest else None))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# The packed batch: ``res`` (one row per resource, ``i`` its place in the batch; the writer
# fills pk, version_id and is_new) and ``t<k>`` per entry of _INDEX_COLUMNS (``i`` + columns).
_PACK_SCHEMA = ";".join(
    [
        "CREATE TABLE res (i INTEGER PRIMARY KEY, res_type, res_id, source, head, tail, "
        "pk INTEGER, version_id INTEGER, is_new INTEGER)"
    ]
    + [f"CREATE TABLE t{k} (i, {', '.join(cols)})" for k, (_, cols) in enumerate(_INDEX_COLUMNS)]
)
_PACK_INSERTS = [
    f"INSERT INTO t{k} VALUES ({', '.join('?' * (len(cols) + 1))})"
    for k, (_, cols) in enumerate(_INDEX_COLUMNS)
]


def pack_batch(prepared: PreparedBatch) -> bytes:
    """A prepared batch as a serialised in-memory SQLite database, for a SQLite writer.

    Unpickling a batch's row tuples and binding them one by one cost the single writer about
    as much as the inserts themselves; built here, in the worker, the writer only attaches the
    bytes and copies rows with ``INSERT … SELECT``. The JSON text is split around the
    placeholder meta (``head``/``tail``) so the writer can put versionId/lastUpdated in SQL.
    """
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_PACK_SCHEMA)
        res_rows = []
        rows: list[list[tuple]] = [[] for _ in _INDEX_COLUMNS]
        for i, (key, (text, entries)) in enumerate(prepared.resources.items()):
            cut = text.index(_PLACEHOLDER_META)
            tail = text[cut + len(_PLACEHOLDER_META) :]
            res_rows.append((i, key[0], key[1], prepared.sources.get(key), text[:cut], tail))
            for k, values in enumerate(entries):
                if values:
                    rows[k].extend((i, *v) for v in values)
        db.executemany(
            "INSERT INTO res (i, res_type, res_id, source, head, tail) VALUES (?, ?, ?, ?, ?, ?)",
            res_rows,
        )
        for k, values in enumerate(rows):
            if values:
                db.executemany(_PACK_INSERTS[k], values)
        db.commit()
        return db.serialize()
    finally:
        db.close()


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one batch, then let it run again.

    A batch allocates hundreds of thousands of short-lived dicts and lists (parsed JSON, index
    rows), which trigger collection after collection, each walking the young objects and, now
    and then, the long-lived fhir.resources models: about a fifth of a worker's CPU per
    resource. Reference counting frees a batch's objects as they go; what cyclic garbage a
    batch leaves (rarely any: a refused line's exception, say) is collected once the batch is
    done, so memory stays bounded. The switch is process-wide: in a worker process that is
    the point; in-process (``workers=0``) other threads go without collection for a batch.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def prepare_batch(
    batch: list[tuple[Any, Any]], source: str | None, pack: bool = False
) -> PreparedBatch:
    """Validate and extract index entries; the part of a bulk load that runs in parallel.

    The index does not depend on versionId or lastUpdated, so it is extracted here from the
    resource with its final ``meta`` apart from those two, which the writer fills in. With
    ``pack`` the result carries the batch as :func:`pack_batch` bytes instead of objects.
    """
    with _gc_paused():
        return _prepare_batch(batch, source, pack)


def _prepare_batch(batch: list[tuple[Any, Any]], source: str | None, pack: bool) -> PreparedBatch:
    prepared = PreparedBatch({}, [], {})
    for label, resource, item_source in batch:
        if isinstance(resource, Exception):
            prepared.errors.append((label, str(resource)))
            continue
        if isinstance(resource, bytes | str):
            try:
                resource = orjson.loads(resource)
            except orjson.JSONDecodeError as exc:
                prepared.errors.append((label, f"not valid JSON ({exc})"))
                continue
        try:
            # The complete walk alone: the same accept/reject decision and issue paths as the
            # full check (tests/fhir/test_validation_fast.py holds them together) at a seventh
            # of the cost; REST writes keep both passes.
            validate_resource(resource, allow_urn=False, thorough=False)
            res_id = resource.get("id")
            if not res_id:
                raise bad_request("A bulk-loaded resource must carry its id.", "id")
        except FhirError as exc:
            prepared.errors.append((label, exc.message))
            continue
        content = Store._with_meta(resource, res_id, 0, 0.0, item_source or source)
        entries = index_rows(content)  # the index ignores versionId/lastUpdated
        # Empty, they serialise as _PLACEHOLDER_META (meta comes third, those two first).
        content["meta"]["versionId"] = content["meta"]["lastUpdated"] = ""
        text = orjson.dumps(content).decode()
        key = (content["resourceType"], res_id)
        prepared.resources[key] = (text, entries)
        if content["meta"].get("source"):
            prepared.sources[key] = content["meta"]["source"]
    if pack and prepared.resources:
        prepared.packed = pack_batch(prepared)
        prepared.resources, prepared.sources = {}, {}
    return prepared


def open_store(
    url: str, base_url: str = "", *, run_migrations: bool = True, mmap: bool = True
) -> Store:
    """Open (and migrate) a store. ``mmap=False`` for bulk loaders: see ``make_engine``."""
    engine = make_engine(url, mmap=mmap)
    if run_migrations:
        migrate(engine)
    store = Store(engine, base_url)
    if run_migrations:
        store.ensure_indexes()
    return store


__all__ = ["LoadReport", "Store", "StoredResource", "WriteOutcome", "open_store"]
