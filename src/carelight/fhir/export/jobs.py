"""Export jobs: their state in the ``export_job`` table, their work in background threads.

A kick-off inserts the row and starts a thread in the process that took the request. The
thread writes its heartbeat and progress to the row about once a second and checks, each time,
that the row still exists: a DELETE (answered by any server process) removes the row and the
files, and the thread, seeing its row gone, stops and removes anything it wrote since. A job
whose heartbeat is older than :data:`STALE_AFTER` died with its process (a restart) and is
reported as failed.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
from sqlalchemy import delete, insert, select, update

from carelight.fhir import schema
from carelight.fhir.errors import FhirError, error
from carelight.fhir.export.spec import ExportSpec
from carelight.fhir.export.writer import ExportCancelled, ExportResult, Progress, write_export
from carelight.fhir.store import Store, instant_text

log = logging.getLogger("carelight.export")

J = schema.export_job
MAX_RUNNING = 2  # exports at once per server process: each keeps a core and a disk busy
STALE_AFTER = 120.0  # seconds without a heartbeat
RETRY_AFTER = "2"


@dataclass(frozen=True)
class JobState:
    id: str
    status: str  # accepted | in-progress | completed | failed
    progress: str | None
    manifest: str | None
    error: str | None
    updated: float
    params: str = "{}"

    @property
    def owner(self) -> str | None:
        return orjson.loads(self.params).get("owner")

    @property
    def stale(self) -> bool:
        running = self.status in ("accepted", "in-progress")
        return running and time.time() - self.updated > STALE_AFTER


class ExportJobs:
    """The export jobs of one server process: start, look up, delete; one per app."""

    def __init__(self, store: Store, exports_dir: Path) -> None:
        self.store = store
        self.exports_dir = exports_dir
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def job_dir(self, job_id: str) -> Path:
        return self.exports_dir / job_id

    # -- requests --------------------------------------------------------------------------
    def start(self, spec: ExportSpec, request_url: str) -> str:
        with self._lock:
            self._threads = {k: t for k, t in self._threads.items() if t.is_alive()}
            if len(self._threads) >= MAX_RUNNING:
                err = error(
                    429, "throttled", "Too many exports are running; try again in a minute."
                )
                err.headers["Retry-After"] = "60"
                raise err
            job_id = uuid.uuid4().hex
            now = time.time()
            with self.store.write() as conn:
                conn.execute(
                    insert(J).values(
                        id=job_id,
                        kind=spec.kind,
                        request_url=request_url,
                        params=spec.to_json(),
                        status="accepted",
                        created=now,
                        updated=now,
                    )
                )
            thread = threading.Thread(
                target=self._run, args=(job_id, spec), name=f"export-{job_id[:8]}", daemon=True
            )
            self._threads[job_id] = thread
            thread.start()
        return job_id

    def get(self, job_id: str) -> JobState | None:
        with self.store.read_conn() as conn:
            row = conn.execute(
                select(
                    J.c.id,
                    J.c.status,
                    J.c.progress,
                    J.c.manifest,
                    J.c.error,
                    J.c.updated,
                    J.c.params,
                ).where(J.c.id == job_id)
            ).first()
        return JobState(*row) if row else None

    def delete(self, job_id: str) -> bool:
        """Cancel (if running) and delete a job and its files; False if there is no such job."""
        with self.store.write() as conn:
            found = conn.execute(delete(J).where(J.c.id == job_id)).rowcount > 0
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        return found

    def wait(self, timeout: float | None = None) -> None:
        """Wait for this process's running exports (tests; an orderly shutdown)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in list(self._threads.values()):
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    # -- the background thread -------------------------------------------------------------
    def _run(self, job_id: str, spec: ExportSpec) -> None:
        # Nothing may escape this thread: every outcome is written to the job's row.
        try:
            result = write_export(
                self.store, spec, self.job_dir(job_id), lambda p: self._heartbeat(job_id, p)
            )
            if not self._finish(job_id, "completed", manifest=self._manifest(job_id, result)):
                raise ExportCancelled
        except ExportCancelled:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        except FhirError as exc:  # e.g. the Group was deleted after the kick-off
            self._fail(job_id, exc.message)
        except Exception:
            if self._gone(job_id):  # deleted mid-write, its folder with it: a cancellation
                shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
                return
            log.exception("export %s failed", job_id)
            self._fail(job_id, "An internal error stopped the export; it has been logged.")

    def _heartbeat(self, job_id: str, p: Progress) -> None:
        with self.store.write() as conn:
            changed = conn.execute(
                update(J)
                .where(J.c.id == job_id)
                .values(
                    status="in-progress",
                    progress=p.text()[:100],
                    transaction_time=p.transaction_time,
                    updated=time.time(),
                )
            ).rowcount
        if not changed:
            raise ExportCancelled  # the job was deleted

    def _finish(self, job_id: str, status: str, **values) -> bool:
        with self.store.write() as conn:
            return (
                conn.execute(
                    update(J)
                    .where(J.c.id == job_id)
                    .values(status=status, updated=time.time(), **values)
                ).rowcount
                > 0
            )

    def _fail(self, job_id: str, message: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        try:
            self._finish(job_id, "failed", error=message)
        except Exception:  # the store itself is failing (or closed): the heartbeat goes stale
            log.exception("export %s: could not record its failure", job_id)

    def _manifest(self, job_id: str, result: ExportResult) -> str:
        row = self._row(job_id)
        base = self.store.base_url
        manifest = {
            "transactionTime": instant_text(result.transaction_time),
            "request": row.request_url if row else "",
            # The gate (sign-in, then files only with the token) arrives with the trust work.
            "requiresAccessToken": False,
            "output": [
                {"type": o.type, "url": f"{base}/$export-file/{job_id}/{o.name}", "count": o.count}
                for o in result.outputs
            ],
            "error": [],
        }
        return orjson.dumps(manifest).decode()

    def _gone(self, job_id: str) -> bool:
        try:
            return self._row(job_id) is None
        except Exception:
            return False

    def _row(self, job_id: str):
        with self.store.read_conn() as conn:
            return conn.execute(select(J.c.request_url).where(J.c.id == job_id)).first()
