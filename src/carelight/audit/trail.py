"""The audit trail: what the gate calls to record every access decision, failing closed.

``Trail.record(event)`` turns an :class:`~carelight.audit.events.AccessEvent` into its
AuditEvent entry, appends it to the transparency log and returns the leaf index once the entry
is committed. Any failure at all raises :class:`AuditUnavailable`, so the caller returns no
data ("audit first, fail closed").

Group commit: requests recorded at the same moment by different threads share one
transaction. The first thread to arrive writes everything queued so far; those arriving
meanwhile queue up, and when the write ends each is woken once, either with its result or,
for the first of the next queue, to write the next transaction. A lone request pays for one
small transaction; a busy server for far fewer transactions than requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from sqlalchemy import Engine

from carelight.audit.checkpoint import LogSigner, load_signer
from carelight.audit.events import AccessEvent, entry_bytes
from carelight.audit.log import CHECKPOINT_INTERVAL, TransparencyLog
from carelight.config import Settings

log = logging.getLogger("carelight.audit")


class AuditUnavailable(RuntimeError):
    """The access could not be recorded, so it must not happen: fail closed."""


class _Pending:
    """One caller's entries, and how the transaction that carried them ended."""

    __slots__ = ("error", "indices", "items", "lead", "woken")

    def __init__(self, items: list[tuple[bytes, tuple[str, ...]]]) -> None:
        self.items = items
        self.indices: list[int] | None = None
        self.error: BaseException | None = None
        self.lead = False  # woken to write the next transaction rather than with a result
        # Held until the writer wakes us: the cheapest one-shot signal CPython has.
        self.woken = threading.Lock()
        self.woken.acquire()


class Trail:
    """Records access decisions in a :class:`TransparencyLog`. Thread-safe; one per process."""

    def __init__(self, log_: TransparencyLog) -> None:
        self.log = log_
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._writing = False  # a leader is writing; newcomers queue for the next transaction
        self._contended = False  # did the last transaction carry more than one request?

    def record(self, event: AccessEvent) -> int:
        """Append one event; return its leaf index. Raises AuditUnavailable on any failure."""
        return self.record_many([event])[0]

    def record_many(self, events: Iterable[AccessEvent]) -> list[int]:
        """Append events in order (one transaction); return their leaf indices."""
        try:
            items = [(entry_bytes(e), tuple(dict.fromkeys(e.patients))) for e in events]
        except Exception as exc:
            raise AuditUnavailable(f"the access could not be recorded: {exc}") from exc
        if not items:
            return []
        return self._commit(_Pending(items))

    def _commit(self, mine: _Pending) -> list[int]:
        with self._lock:
            self._queue.append(mine)
            follower = self._writing
            self._writing = True
        if follower:
            mine.woken.acquire()  # with a result, or promoted to write the next transaction
        if not follower or mine.lead:
            self._lead()
        if mine.error is not None:
            raise AuditUnavailable(
                "the transparency log could not record the access, so it was not allowed; "
                "the operator should check the database"
            ) from mine.error
        assert mine.indices is not None
        return mine.indices

    def _lead(self) -> None:
        """Write every queued request in one transaction, wake each, hand over to the next."""
        if self._contended:
            # Requests are arriving together: give those about to queue a moment (the GIL)
            # to join this transaction. A lone request never waits here.
            time.sleep(0)
        with self._lock:
            batch, self._queue = self._queue, []
        self._contended = len(batch) > 1
        try:
            indices = self.log.append_many([item for p in batch for item in p.items])
            at = 0
            for pending in batch:
                pending.indices = indices[at : at + len(pending.items)]
                at += len(pending.items)
        except BaseException as exc:
            log.error("transparency log append failed: %s", type(exc).__name__)
            for pending in batch:
                pending.error = exc
        finally:
            with self._lock:
                if self._queue:  # arrived while we wrote: the first of them leads next
                    self._queue[0].lead = True
                    self._queue[0].woken.release()
                else:
                    self._writing = False
            for pending in batch:
                if pending.woken.locked():
                    pending.woken.release()
        if batch[0].indices is not None and self.log.checkpoint_due():
            self._checkpoint()

    def _checkpoint(self) -> None:
        # The entries are committed already: a failed checkpoint is retried next time, it
        # does not fail the access.
        try:
            self.log.latest_checkpoint()
        except Exception:
            log.exception("transparency log: signing a checkpoint failed")

    def close(self) -> None:
        self.log.close()


def log_engine(
    settings: Settings, store_engine: Engine | None = None, *, create: bool = True
) -> Engine:
    """The database the log lives in.

    ``CARELIGHT_AUDIT_DATABASE_URL`` if set; else, beside a SQLite store, its own file
    ``CARELIGHT_HOME/audit.db``, because every append to a file invalidates the page cache of
    every other connection to that file, which would make each logged read re-read the store's
    B-trees; else (PostgreSQL) the store's own database, where the log's tables come with the
    migrations.
    """
    import os

    from carelight.audit.schema import metadata
    from carelight.fhir.db import make_engine

    url = os.environ.get("CARELIGHT_AUDIT_DATABASE_URL", "").strip()
    if not url:
        store_url = (
            store_engine.url.render_as_string(hide_password=False)
            if store_engine is not None
            else settings.database_url
        )
        if not store_url.startswith("sqlite") or ":memory:" in store_url:
            return store_engine if store_engine is not None else make_engine(store_url)
        settings.ensure_home()
        url = f"sqlite:///{settings.home / 'audit.db'}"
    engine = make_engine(url)
    if create:
        metadata.create_all(engine)
    return engine


def open_trail(
    engine: Engine,
    settings: Settings,
    *,
    origin: str | None = None,
    checkpoint_interval: float = CHECKPOINT_INTERVAL,
    signer: LogSigner | None = None,
) -> Trail:
    """The trail over the store's database (migrated to 0004 or later) and the log's key.

    The key lives at ``settings.home / "keys" / "transparency-log.ed25519"`` and is created
    on first use; the origin comes from ``CARELIGHT_LOG_ORIGIN`` unless given.
    """
    if signer is None:
        signer = load_signer(settings.home, origin)
    return Trail(TransparencyLog(engine, signer, checkpoint_interval=checkpoint_interval))


__all__ = ["AuditUnavailable", "Trail", "log_engine", "open_trail"]
