"""Checking the whole stored log: what ``carelight audit verify`` runs.

Every entry's leaf hash is recomputed from its bytes and the whole tree rebuilt from them, in
one pass, and compared with every stored hash; every checkpoint's signatures are checked and
its root compared with the rebuilt tree at its size; the patient index is compared with what
the entries say. Since all roots come from one rebuilt sequence of entries, checkpoints that
match it are consistent with each other, which is what a consistency proof would show.

The first problem in the tree stops the scan (later ones would be its echoes) and names the
first bad leaf index: an altered or moved entry no longer matches its stored hash, a removed
one leaves a gap, an inserted one has no stored hash, and a rewritten tree no longer matches
the signed checkpoints.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import orjson
from sqlalchemy import Engine, inspect

from carelight.audit.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from carelight.audit.events import entry_names_patients, patients_in_entry
from carelight.audit.merkle import EMPTY_ROOT, Frontier, leaf_hash, stored_count
from carelight.audit.schema import TABLES

FETCH = 5000
_CURSORS = itertools.count()


@dataclass
class VerifyReport:
    entries: int = 0  # the log's size as scanned
    checkpoints: int = 0  # stored checkpoints checked
    external: int = 0  # checkpoints given by the caller, checked
    root: bytes = EMPTY_ROOT
    problems: list[str] = field(default_factory=list)
    first_bad_index: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, message: str, index: int | None = None) -> None:
        self.problems.append(message)
        if index is not None and (self.first_bad_index is None or index < self.first_bad_index):
            self.first_bad_index = index


class _Problem(Exception):
    def __init__(self, message: str, index: int | None) -> None:
        super().__init__(message)
        self.index = index


def has_log(engine: Engine) -> bool:
    names = set(inspect(engine).get_table_names())
    return all(table.name in names for table in TABLES)


def _stream(engine: Engine, sql: str, params: tuple) -> Iterator[tuple]:
    """Rows in batches, straight from the driver (plain tuples, no per-row wrapping): the log
    may not fit in memory. On PostgreSQL through a server-side (named) cursor."""
    conn = engine.raw_connection()
    try:
        if engine.dialect.name == "postgresql":
            cur = conn.driver_connection.cursor(name=f"audit_verify_{next(_CURSORS)}")
        else:
            cur = conn.cursor()
        try:
            cur.execute(sql, params)
            while rows := cur.fetchmany(FETCH):
                yield from rows
        finally:
            cur.close()
    finally:
        conn.close()


def verify_log(
    engine: Engine,
    public_key: bytes | None,
    *,
    extra_checkpoints: Sequence[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Check the log in ``engine``'s database; ``public_key`` is the log's Ed25519 key."""
    report = VerifyReport()
    mark = "?" if engine.dialect.name == "sqlite" else "%s"
    size = _size(engine)
    report.entries = size

    # Checkpoints to compare along the way: stored ones first, then any the caller kept.
    wanted: dict[int, list[tuple[str, Checkpoint]]] = {}
    beyond: list[Checkpoint] = []
    last_stamp = -1
    rows = _stream(
        engine,
        "SELECT tree_size, root_hash, timestamp, note FROM audit_checkpoint ORDER BY tree_size",
        (),
    )
    for tree_size, root, stamp, note in rows:
        report.checkpoints += 1
        label = f"checkpoint at size {tree_size}"
        if public_key is None:
            report.fail(
                f"{label}: its signature cannot be checked without the log's public key "
                "(give --public-key, or restore the key file)"
            )
            continue
        try:
            cp = open_checkpoint(note, public_key)
        except CheckpointError as exc:
            report.fail(f"{label}: {exc}")
            continue
        if (cp.tree_size, cp.root_hash, cp.timestamp) != (tree_size, bytes(root), stamp):
            report.fail(f"{label}: its stored size, root or time differ from its signed note")
            continue
        if cp.timestamp < last_stamp:
            report.fail(f"{label}: signed at an earlier time than the checkpoint before it")
        last_stamp = cp.timestamp
        if tree_size > size:
            beyond.append(cp)
        else:
            wanted.setdefault(tree_size, []).append((label, cp))
    for n, note in enumerate(extra_checkpoints, 1):
        label = f"given checkpoint {n}"
        try:
            cp = open_checkpoint(note, public_key) if public_key else None
        except CheckpointError as exc:
            report.fail(f"{label}: {exc}")
            continue
        if cp is None:
            report.fail(f"{label}: cannot be checked without the log's public key")
            continue
        report.external += 1
        if cp.tree_size > size:
            beyond.append(cp)
        else:
            wanted.setdefault(cp.tree_size, []).append((f"{label} (size {cp.tree_size})", cp))

    try:
        report.root = _scan(engine, mark, size, wanted, progress)
    except _Problem as problem:
        report.fail(str(problem), problem.index)
    # The log may have grown while it was scanned: only what is still missing is a problem.
    grown = _size(engine) if beyond or report.ok else size
    if report.ok:
        _check_nothing_after(engine, mark, size, grown, report)
    for cp in beyond:
        if cp.tree_size <= grown:
            continue  # signed while the scan ran; the next run checks it
        report.fail(
            f"a checkpoint signed at size {cp.tree_size} is beyond the log's {size} entries: "
            f"entries from {size} on were removed",
            size,
        )
    return report


def _size(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT coalesce(max(idx) + 1, 0) FROM audit_leaf").scalar()


def _check_nothing_after(
    engine: Engine, mark: str, size: int, grown: int, report: VerifyReport
) -> None:
    """Hashes and patient rows past the scanned size must belong to entries appended since."""
    with engine.connect() as conn:
        nodes = conn.exec_driver_sql(
            f"SELECT count(*) FROM audit_node WHERE id >= {mark}", (stored_count(size),)
        ).scalar()
    if nodes > stored_count(grown) - stored_count(size):
        report.fail(
            f"there are stored hashes beyond the log's {size} entries: entries from {size} on "
            "were removed",
            size,
        )


def _scan(
    engine: Engine,
    mark: str,
    size: int,
    wanted: dict[int, list[tuple[str, Checkpoint]]],
    progress: Callable[[int, int], None] | None,
) -> bytes:
    with contextlib.ExitStack() as streams:
        return _scan_streams(engine, mark, size, wanted, progress, streams)


def _scan_streams(
    engine: Engine,
    mark: str,
    size: int,
    wanted: dict[int, list[tuple[str, Checkpoint]]],
    progress: Callable[[int, int], None] | None,
    streams: contextlib.ExitStack,
) -> bytes:
    frontier = Frontier()
    _compare_checkpoints(0, EMPTY_ROOT, wanted)
    leaves = _stream(
        engine, f"SELECT idx, entry FROM audit_leaf WHERE idx < {mark} ORDER BY idx", (size,)
    )
    nodes = _stream(
        engine,
        f"SELECT id, hash FROM audit_node WHERE id < {mark} ORDER BY id",
        (stored_count(size),),
    )
    patients = _stream(
        engine,
        f"SELECT idx, patient_id FROM audit_patient WHERE idx < {mark} ORDER BY idx, patient_id",
        (size,),
    )
    for stream in (leaves, nodes, patients):
        streams.callback(stream.close)
    next_patient = next(patients, None)
    produced: list[bytes] = []
    for expected, (idx, entry) in enumerate(leaves):
        if idx != expected:
            raise _Problem(
                f"entry {expected} is missing: it was removed (the next stored entry is {idx})",
                expected,
            )
        entry = bytes(entry)
        produced.clear()
        frontier.append(leaf_hash(entry), produced)
        first_id = stored_count(expected)
        for offset, computed in enumerate(produced):
            stored = next(nodes, None)
            want_id = first_id + offset
            if stored is None or stored[0] != want_id:
                raise _Problem(
                    f"entry {expected} has no stored hash: it was inserted outside the log, "
                    "or the tree was cut",
                    expected,
                )
            if bytes(stored[1]) != computed:
                if offset == 0:
                    raise _Problem(
                        f"entry {expected} does not match its stored leaf hash: it was "
                        "altered, moved or replaced",
                        expected,
                    )
                first = expected + 1 - (1 << offset)
                raise _Problem(
                    f"the stored hash over entries {first}-{expected} does not match them: "
                    f"one of them was altered and its leaf hash rewritten to hide it",
                    first,
                )
        mentioned = []
        while next_patient is not None and next_patient[0] == expected:
            mentioned.append(next_patient[1])
            next_patient = next(patients, None)
        if entry_names_patients(entry, mentioned):
            about = mentioned
        else:  # not the canonical form we write: parse it to be sure
            try:
                about = sorted(set(patients_in_entry(entry)))
            except (orjson.JSONDecodeError, AttributeError, TypeError):
                raise _Problem(f"entry {expected} is not an AuditEvent", expected) from None
            mentioned.sort()
        if about != mentioned:
            raise _Problem(
                f"the patient index for entry {expected} does not match the patients the entry "
                "is about: rows were added to or removed from audit_patient",
                expected,
            )
        _compare_checkpoints(expected + 1, None, wanted, frontier)
        if progress is not None and (expected + 1) % FETCH == 0:
            progress(expected + 1, size)
    if frontier.size < size:
        raise _Problem(f"entry {frontier.size} is missing: it was removed", frontier.size)
    if progress is not None:
        progress(size, size)
    return frontier.root()


def _compare_checkpoints(
    size: int,
    root: bytes | None,
    wanted: dict[int, list[tuple[str, Checkpoint]]],
    frontier: Frontier | None = None,
) -> None:
    checks = wanted.get(size)
    if not checks:
        return
    if root is None:
        assert frontier is not None
        root = frontier.root()
    for label, cp in checks:
        if cp.root_hash != root:
            raise _Problem(
                f"{label}: its signed root does not match the entries: an entry before {size} "
                "was altered, removed, inserted or reordered and the stored tree rewritten",
                None,
            )
