"""The transparency log itself: an append-only RFC 9162 Merkle tree in the store's database.

:class:`TransparencyLog` appends entries (leaf bytes), answers the tree's root at any size,
inclusion and consistency proofs, and signs checkpoints. Every hash it needs is a stored
complete subtree (see :mod:`carelight.audit.merkle`), so a root or a proof is one indexed query
for O(log n) rows, however large the log.

Appends from any number of processes are serialised by the database: SQLite's write lock
(``BEGIN IMMEDIATE``) or, on PostgreSQL, a transaction-scoped advisory lock. Inside the lock
the writer reads the tree size, so leaf indices are gap-free and in commit order. The right
edge of the tree (its peaks) is cached between appends and re-read only when another process
has appended meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine

from carelight.audit.checkpoint import Checkpoint, LogSigner, parse_text, split_note
from carelight.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_ranges,
    fold,
    inclusion_ranges,
    leaf_hash,
    needed,
    stored_count,
    stored_index,
    subtrees,
)

log = logging.getLogger("carelight.audit")

# pg_advisory_xact_lock key for appends: "CLAUDIT" in ASCII, fixed so every process agrees.
PG_APPEND_LOCK = 0x434C4155444954
CHECKPOINT_INTERVAL = 10.0  # seconds: sign a new checkpoint at most this often
WAL_BACKSTOP_PAGES = 4000  # the writer's own automatic WAL checkpoint (SQLite's default: 1000)
WAL_CHECKPOINT_DELAY = 0.02  # seconds after an append before the background checkpoint


_PG_INSERT = (
    "WITH leaves AS (INSERT INTO audit_leaf (idx, entry) "
    "SELECT * FROM unnest(%s::bigint[], %b::bytea[])) "
    "INSERT INTO audit_node (id, hash) SELECT * FROM unnest(%s::bigint[], %b::bytea[])"
)
_PG_INSERT_WITH_PATIENTS = (
    "WITH leaves AS (INSERT INTO audit_leaf (idx, entry) "
    "SELECT * FROM unnest(%s::bigint[], %b::bytea[])), "
    "nodes AS (INSERT INTO audit_node (id, hash) "
    "SELECT * FROM unnest(%s::bigint[], %b::bytea[])) "
    "INSERT INTO audit_patient (patient_id, idx) SELECT * FROM unnest(%s::text[], %s::bigint[])"
)


class LogError(ValueError):
    """A request the log cannot answer as asked (an index or size out of range)."""


class LogCorrupted(RuntimeError):
    """The stored tree is missing a hash it must have: run ``carelight audit verify``."""


class _Dialect:
    """The few SQL spellings that differ between SQLite and PostgreSQL (driver level)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sqlite = name == "sqlite"
        self.mark = "?" if self.sqlite else "%s"

    def placeholders(self, n: int) -> str:
        return ", ".join([self.mark] * n)

    def in_list(self, column: str, values: Sequence[int]) -> tuple[str, tuple]:
        if self.sqlite:
            return f"{column} IN ({self.placeholders(len(values))})", tuple(values)
        return f"{column} = ANY(%s)", (list(values),)


class _WalCheckpointer:
    """Moves SQLite's WAL checkpoints (two fsyncs each) off the request path.

    SQLite otherwise copies the WAL back into the database inside whichever commit crosses
    1,000 pages, so every few hundred appends one request waits milliseconds. A thread with
    its own connection runs PASSIVE checkpoints shortly after appends instead; they never
    block readers or writers. The writer keeps a larger automatic checkpoint as a backstop,
    which bounds the WAL under continuous load (when a passive checkpoint never catches up).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pending = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="carelight-audit-wal", daemon=True)
        self._thread.start()

    def appended(self) -> None:
        self._pending.set()

    def _run(self) -> None:
        conn = self._engine.raw_connection()
        try:
            cur = conn.cursor()
            cur.execute("PRAGMA wal_autocheckpoint=0")  # only the explicit ones below
            while not self._stopping:  # checked before each wait: a clear() may eat stop's set()
                self._pending.wait()
                if self._stopping:
                    return
                time.sleep(WAL_CHECKPOINT_DELAY)  # let a burst finish first
                self._pending.clear()
                try:
                    cur.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except Exception:  # the next append tries again; the backstop still holds
                    log.warning("transparency log: a background WAL checkpoint failed")
        finally:
            with contextlib.suppress(Exception):
                conn.cursor().execute("PRAGMA wal_autocheckpoint=1000")
            conn.close()

    def stop(self) -> None:
        self._stopping = True
        self._pending.set()
        self._thread.join(timeout=5)


class TransparencyLog:
    """An append-only Merkle tree log with signed checkpoints. Thread-safe; one per process."""

    def __init__(
        self,
        engine: Engine,
        signer: LogSigner,
        *,
        checkpoint_interval: float = CHECKPOINT_INTERVAL,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.checkpoint_interval = checkpoint_interval
        self._sql = _Dialect(engine.dialect.name)
        m = self._sql.mark
        self._insert_leaf = f"INSERT INTO audit_leaf (idx, entry) VALUES ({m}, {m})"
        self._insert_node = f"INSERT INTO audit_node (id, hash) VALUES ({m}, {m})"
        self._insert_patient = f"INSERT INTO audit_patient (patient_id, idx) VALUES ({m}, {m})"
        self._write_lock = threading.Lock()
        self._writer: Any = None  # a pooled DBAPI connection kept for appends
        self._wal: _WalCheckpointer | None = None  # SQLite only
        self._frontier: Frontier | None = None
        self._checkpoint_seen = 0.0  # the newest checkpoint time this process knows of

    # -- appending ---------------------------------------------------------------------------
    def append(self, entry: bytes, patients: Iterable[str] = ()) -> int:
        """Append one entry; return its leaf index once it is committed."""
        return self.append_many([(entry, tuple(patients))])[0]

    def append_many(self, items: Sequence[tuple[bytes, Iterable[str]]]) -> list[int]:
        """Append entries in one transaction; return their leaf indices (consecutive)."""
        if not items:
            return []
        with self._write_lock:
            conn = self._writer_connection()
            try:
                cur = conn.cursor()
                size = self._lock_and_size(cur)
                frontier = self._frontier_at(cur, size).copy()
                hashes: list[bytes] = []
                leaves = []
                patient_rows = []
                for idx, (entry, patients) in enumerate(items, size):
                    leaves.append((idx, entry))
                    frontier.append(leaf_hash(entry), hashes)
                    patient_rows.extend((p, idx) for p in dict.fromkeys(patients))
                nodes = list(enumerate(hashes, stored_count(size)))
                self._insert_and_commit(conn, cur, leaves, nodes, patient_rows)
            except BaseException:
                self._abandon(conn)
                raise
            self._frontier = frontier
            if self._wal is not None:
                self._wal.appended()
        return list(range(size, size + len(items)))

    def _insert_and_commit(self, conn: Any, cur: Any, leaves, nodes, patient_rows) -> None:
        if self._sql.sqlite:
            # One row each is the common case, and executemany costs more for one row.
            for sql, rows in (
                (self._insert_leaf, leaves),
                (self._insert_node, nodes),
                (self._insert_patient, patient_rows),
            ):
                if len(rows) == 1:
                    cur.execute(sql, rows[0])
                elif rows:
                    cur.executemany(sql, rows)
            conn.commit()
            return
        # PostgreSQL: one statement for all three tables (a round trip costs more than the
        # inserts), arrays unnested server-side.
        sql = _PG_INSERT_WITH_PATIENTS if patient_rows else _PG_INSERT
        params = [[i for i, _ in leaves], [e for _, e in leaves]]
        params += [[i for i, _ in nodes], [h for _, h in nodes]]
        if patient_rows:
            params += [[p for p, _ in patient_rows], [i for _, i in patient_rows]]
        cur.execute(sql, params)
        conn.commit()

    def _writer_connection(self) -> Any:
        if self._writer is None:
            conn = self.engine.raw_connection()
            if self._sql.sqlite and self._wal is None:
                self._wal = _WalCheckpointer(self.engine)
            if self._wal is not None:
                # Our WAL checkpoints run in the background; this is only the backstop.
                conn.cursor().execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
            if self._sql.sqlite:
                # Several server processes append to one file. SQLite's own busy handler
                # sleeps 1, 2, 5, 10… ms while another holds the lock, far longer than an
                # append takes: we wait for the lock ourselves (see _begin_immediate).
                conn.cursor().execute("PRAGMA busy_timeout=0")
            self._writer = conn
        return self._writer

    def _lock_and_size(self, cur: Any) -> int:
        """Take the log's write lock for this transaction; return the committed tree size."""
        if self._sql.sqlite:
            _begin_immediate(cur)
            cur.execute("SELECT coalesce(max(idx) + 1, 0) FROM audit_leaf")
            return cur.fetchone()[0]
        # Two statements, one round trip. Each statement takes its own snapshot (READ
        # COMMITTED), so the size is read after the lock is granted and counts every entry
        # an earlier holder committed.
        cur.execute(
            f"SELECT pg_advisory_xact_lock({PG_APPEND_LOCK}); "
            "SELECT coalesce(max(idx) + 1, 0) FROM audit_leaf"
        )
        cur.nextset()
        return cur.fetchone()[0]

    def _frontier_at(self, cur: Any, size: int) -> Frontier:
        cached = self._frontier
        if cached is not None and cached.size == size:
            return cached
        ids = Frontier.peak_indices(size)
        found = self._hashes_by_id(cur, ids)
        frontier = Frontier(size, [self._require(found, i) for i in ids])
        self._frontier = frontier
        return frontier

    def _abandon(self, conn: Any) -> None:
        try:
            conn.rollback()
        except Exception:  # the connection is broken: drop it, take a new one next time
            log.warning("transparency log: dropping a broken writer connection")
            try:
                conn.invalidate()
            finally:
                self._writer = None

    def close(self) -> None:
        """Stop the background checkpoints; hand the connections back to the pool."""
        with self._write_lock:
            if self._wal is not None:
                self._wal.stop()
                self._wal = None
            if self._writer is not None:
                try:
                    if self._sql.sqlite:  # back to SQLite's default for the next user
                        self._writer.cursor().execute("PRAGMA wal_autocheckpoint=1000")
                    self._writer.close()
                finally:
                    self._writer = None

    # -- reading -----------------------------------------------------------------------------
    def _rows(self, sql: str, params: tuple = ()) -> list:
        with self.engine.connect() as conn:
            return list(conn.exec_driver_sql(sql, params))

    def _hashes_by_id(self, cur: Any, ids: Sequence[int]) -> dict[int, bytes]:
        if not ids:
            return {}
        where, params = self._sql.in_list("id", ids)
        sql = f"SELECT id, hash FROM audit_node WHERE {where}"
        if cur is None:
            rows = self._rows(sql, params)
        else:
            cur.execute(sql, params)
            rows = cur.fetchall()
        return {row[0]: bytes(row[1]) for row in rows}

    @staticmethod
    def _require(found: dict[int, bytes], stored: int) -> bytes:
        try:
            return found[stored]
        except KeyError:
            raise LogCorrupted(
                f"the transparency log has no stored hash #{stored}: the tree is damaged; "
                "run `carelight audit verify` to find where"
            ) from None

    def size(self) -> int:
        """The number of committed entries."""
        return self._rows("SELECT coalesce(max(idx) + 1, 0) FROM audit_leaf")[0][0]

    def _check_size(self, size: int, what: str = "size") -> int:
        current = self.size()
        if not 0 <= size <= current:
            raise LogError(f"{what} {size} is out of range: the log has {current} entries")
        return current

    def leaf(self, index: int) -> bytes:
        """The exact bytes of entry ``index``."""
        m = self._sql.mark
        rows = self._rows(f"SELECT entry FROM audit_leaf WHERE idx = {m}", (index,))
        if not rows:
            raise LogError(f"there is no entry {index}: the log has {self.size()} entries")
        return bytes(rows[0][0])

    def _range_hashes(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        found = self._hashes_by_id(None, needed(ranges))
        out = []
        for start, end in ranges:
            parts = [stored_index(level, index) for level, index in subtrees(start, end)]
            out.append(fold([self._require(found, i) for i in parts]))
        return out

    def root_hash(self, size: int | None = None) -> bytes:
        """The Merkle tree hash of the first ``size`` entries (default: all of them)."""
        if size is None:
            size = self.size()
        else:
            self._check_size(size)
        if size == 0:
            return EMPTY_ROOT
        cached = self._frontier
        if cached is not None and cached.size == size:
            return cached.root()
        return self._range_hashes([(0, size)])[0]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` entries."""
        self._check_size(size)
        if not 0 <= index < size:
            raise LogError(f"index {index} is not in a tree of size {size}")
        return self._range_hashes(inclusion_ranges(index, size))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 consistency proof from the tree of ``old_size`` to that of ``new_size``.

        Empty when ``old_size`` is 0 or equals ``new_size`` (nothing to prove).
        """
        self._check_size(new_size, "to")
        if not 0 <= old_size <= new_size:
            raise LogError(f"from {old_size} must be between 0 and to ({new_size})")
        return self._range_hashes(consistency_ranges(old_size, new_size))

    def entries_for_patient(
        self, patient_id: str, offset: int = 0, limit: int = 50
    ) -> list[tuple[int, bytes]]:
        """(leaf index, entry bytes) of the entries about a Patient, newest first."""
        m = self._sql.mark
        rows = self._rows(
            "SELECT l.idx, l.entry FROM audit_patient p JOIN audit_leaf l ON l.idx = p.idx "
            f"WHERE p.patient_id = {m} ORDER BY p.idx DESC LIMIT {m} OFFSET {m}",
            (patient_id, limit, offset),
        )
        return [(row[0], bytes(row[1])) for row in rows]

    def entries_for_patients(
        self, patient_ids: Sequence[str], offset: int = 0, limit: int = 50
    ) -> list[tuple[int, bytes]]:
        """(leaf index, entry bytes) of the entries about any of these Patients (one
        person's several records), each once, newest first."""
        if not patient_ids:
            return []
        m = self._sql.mark
        where, params = self._sql.in_list("patient_id", list(patient_ids))
        rows = self._rows(
            "SELECT idx, entry FROM audit_leaf WHERE idx IN "
            f"(SELECT idx FROM audit_patient WHERE {where}) "
            f"ORDER BY idx DESC LIMIT {m} OFFSET {m}",
            (*params, limit, offset),
        )
        return [(row[0], bytes(row[1])) for row in rows]

    def count_for_patient(self, patient_id: str) -> int:
        m = self._sql.mark
        sql = f"SELECT count(*) FROM audit_patient WHERE patient_id = {m}"
        return self._rows(sql, (patient_id,))[0][0]

    # -- checkpoints -------------------------------------------------------------------------
    @staticmethod
    def _checkpoint(row: Any) -> Checkpoint:
        tree_size, root, timestamp, note = row
        text, _ = split_note(note)
        origin, _, _ = parse_text(text)
        return Checkpoint(origin, tree_size, bytes(root), timestamp, note)

    def _newest_checkpoint(self, cur: Any = None) -> Checkpoint | None:
        sql = (
            "SELECT tree_size, root_hash, timestamp, note FROM audit_checkpoint "
            "ORDER BY tree_size DESC LIMIT 1"
        )
        if cur is None:
            rows = self._rows(sql)
        else:
            cur.execute(sql)
            rows = cur.fetchall()
        if not rows:
            return None
        newest = self._checkpoint(rows[0])
        self._checkpoint_seen = max(self._checkpoint_seen, newest.timestamp)
        return newest

    def checkpoints(self, after_size: int = -1, limit: int | None = None) -> list[Checkpoint]:
        """Stored checkpoints with tree size above ``after_size``, smallest first."""
        m = self._sql.mark
        sql = (
            "SELECT tree_size, root_hash, timestamp, note FROM audit_checkpoint "
            f"WHERE tree_size > {m} ORDER BY tree_size"
        )
        params: tuple = (after_size,)
        if limit is not None:
            sql += f" LIMIT {m}"
            params += (limit,)
        return [self._checkpoint(row) for row in self._rows(sql, params)]

    def checkpoint_due(self) -> bool:
        """Whether the newest checkpoint this process knows of is older than the interval."""
        return time.time() - self._checkpoint_seen >= self.checkpoint_interval

    def latest_checkpoint(self, *, force: bool = False) -> Checkpoint:
        """The newest signed checkpoint, signing a new one first when the tree has grown
        since and the newest is older than the interval (or at once with ``force``)."""
        now = time.time()
        newest = self._newest_checkpoint()
        if newest is not None and not force and now - newest.timestamp < self.checkpoint_interval:
            return newest
        if newest is not None and newest.tree_size == self.size():
            return newest
        return self._sign_checkpoint(now, force)

    def _sign_checkpoint(self, now: float, force: bool) -> Checkpoint:
        with self._write_lock:
            conn = self._writer_connection()
            full_sync = False
            try:
                cur = conn.cursor()
                if self._sql.sqlite:
                    # Make this commit, and every append before it, survive a power cut: a
                    # published checkpoint must never lose the entries it commits to.
                    cur.execute("PRAGMA synchronous=FULL")
                    full_sync = True
                size = self._lock_and_size(cur)
                newest = self._newest_checkpoint(cur)
                if newest is not None and (
                    newest.tree_size >= size
                    or (not force and now - newest.timestamp < self.checkpoint_interval)
                ):
                    conn.rollback()
                    return newest  # another process signed meanwhile
                root = self._frontier_at(cur, size).root()
                stamp = max(int(now), newest.timestamp if newest else 0)
                checkpoint = self.signer.sign(size, root, stamp)
                m = self._sql.mark
                cur.execute(
                    "INSERT INTO audit_checkpoint (tree_size, root_hash, timestamp, note) "
                    f"VALUES ({m}, {m}, {m}, {m})",
                    (size, root, stamp, checkpoint.note),
                )
                conn.commit()
            except BaseException:
                self._abandon(conn)
                raise
            finally:
                if full_sync and self._writer is not None:
                    conn.cursor().execute("PRAGMA synchronous=NORMAL")
            self._checkpoint_seen = max(self._checkpoint_seen, stamp)
            return checkpoint


LOCK_WAIT_S = 30.0  # give up (and fail the access, closed) after this long


def _begin_immediate(cur: Any) -> None:
    """BEGIN IMMEDIATE, retrying every 50-500 µs while another process holds the lock."""
    import sqlite3

    deadline = time.monotonic() + LOCK_WAIT_S
    pause = 0.00005
    while True:
        try:
            cur.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.0005)
