"""The Trail: durable, gap-free, group-committed appends that fail closed, on every engine."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest
from audit_support import read_event
from rfc9162 import MTH
from sqlalchemy import create_engine

from carelight.audit.events import entry_bytes, patients_in_entry
from carelight.audit.log import TransparencyLog
from carelight.audit.trail import AuditUnavailable, open_trail
from carelight.audit.verify import verify_log


def url_of(store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def test_record_returns_gap_free_indices_and_commits(store, trail, log):
    assert trail.record(read_event(n=0)) == 0
    assert trail.record_many([read_event(n=i) for i in (1, 2, 3)]) == [1, 2, 3]
    assert trail.record_many([]) == []
    # Another connection (another process, in effect) sees every entry at once.
    other = create_engine(url_of(store))
    try:
        with other.connect() as conn:
            rows = conn.exec_driver_sql("SELECT idx, entry FROM audit_leaf ORDER BY idx").all()
    finally:
        other.dispose()
    assert [(i, bytes(e)) for i, e in rows] == [(i, entry_bytes(read_event(n=i))) for i in range(4)]
    assert log.root_hash() == MTH([entry_bytes(read_event(n=i)) for i in range(4)])


def test_entries_about_a_patient_newest_first(trail, log):
    trail.record(read_event("pat-1", 0))
    trail.record(read_event("pat-2", 1))
    trail.record(read_event("pat-1", 2, patients=("pat-1", "pat-2")))
    assert [i for i, _ in log.entries_for_patient("pat-1")] == [2, 0]
    assert [i for i, _ in log.entries_for_patient("pat-2")] == [2, 1]
    assert [i for i, _ in log.entries_for_patient("pat-1", offset=1, limit=5)] == [0]
    assert log.count_for_patient("pat-1") == 2
    assert log.entries_for_patient("nobody") == []
    index, entry = log.entries_for_patient("pat-2", limit=1)[0]
    assert entry == log.leaf(index) and patients_in_entry(entry) == ["pat-1", "pat-2"]


def test_concurrent_records_share_transactions_and_stay_in_order(trail, log):
    threads, per_thread = 8, 40
    results: dict[int, list[int]] = {}
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()
        results[t] = [trail.record(read_event(f"pat-{t}", t * 1000 + i)) for i in range(per_thread)]

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    every = sorted(i for indices in results.values() for i in indices)
    assert every == list(range(threads * per_thread))
    for t, indices in results.items():
        assert indices == sorted(indices)  # one thread's records keep their order
        for i, index in enumerate(indices):
            assert log.leaf(index) == entry_bytes(read_event(f"pat-{t}", t * 1000 + i))
        assert log.count_for_patient(f"pat-{t}") == per_thread
    assert verify_log(log.engine, log.signer.public_key).ok


def test_two_logs_on_one_database_interleave_without_gaps(store, trail, log):
    """A second writer (as another server process would be) appends between ours."""
    second = TransparencyLog(store.engine, log.signer)
    try:
        entries = []
        for i in range(20):
            writer = log if i % 3 else second
            entry = entry_bytes(read_event(n=i))
            assert writer.append(entry, ("pat-1",)) == i
            entries.append(entry)
            assert writer.root_hash() == MTH(entries)
        assert log.root_hash(7) == second.root_hash(7) == MTH(entries[:7])
    finally:
        second.close()
    assert verify_log(log.engine, log.signer.public_key).ok


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from carelight.audit.events import AccessEvent
    from carelight.audit.trail import open_trail
    from carelight.config import Settings
    from carelight.fhir.db import make_engine

    url, home, name = sys.argv[1:4]
    engine = make_engine(url)
    trail = open_trail(engine, Settings(Path(home), url, "http://x/fhir"), origin="t.example/log")
    for i in range(150):
        trail.record(AccessEvent("read", "success", name, patients=(f"{name}-{i % 7}",)))
    trail.close()
    engine.dispose()
    """
)


def test_server_processes_append_concurrently(store, trail, log, settings):
    log.latest_checkpoint()  # makes the key, so both processes share it
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url_of(store), str(settings.home), name],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alpha", "beta", "gamma")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert log.size() == 450
    writers = [orjson_user(log.leaf(i)) for i in range(450)]
    assert sorted(set(writers)) == ["alpha", "beta", "gamma"]
    assert all(writers.count(name) == 150 for name in ("alpha", "beta", "gamma"))
    report = verify_log(log.engine, log.signer.public_key)
    assert report.ok, report.problems
    assert report.entries == 450


def orjson_user(entry: bytes) -> str:
    import orjson

    return orjson.loads(entry)["agent"][0]["who"]["identifier"]["value"]


def _set_read_only(log, on: bool) -> None:
    conn = log._writer_connection()
    cur = conn.cursor()
    if log.engine.dialect.name == "sqlite":
        cur.execute(f"PRAGMA query_only={int(on)}")
    else:
        cur.execute(f"SET default_transaction_read_only = {'on' if on else 'off'}")
        conn.commit()


def test_a_failing_database_fails_closed_and_loses_no_index(trail, log):
    assert trail.record(read_event(n=0)) == 0
    _set_read_only(log, True)
    with pytest.raises(AuditUnavailable, match="was not allowed"):
        trail.record(read_event(n=1))
    with pytest.raises(AuditUnavailable):
        trail.record_many([read_event(n=i) for i in (1, 2)])
    _set_read_only(log, False)
    assert trail.record(read_event(n=1)) == 1
    assert log.size() == 2
    assert verify_log(log.engine, log.signer.public_key).ok


def test_every_waiting_request_fails_with_the_batch(trail, log, monkeypatch):
    gate = threading.Event()
    real = log.append_many
    calls = []

    def slow_then_broken(items):
        calls.append(len(items))
        if len(calls) == 1:
            gate.wait(5)
            return real(items)
        raise OSError("disk full")

    monkeypatch.setattr(log, "append_many", slow_then_broken)
    outcomes: list[object] = []

    def work(n: int) -> None:
        try:
            outcomes.append(trail.record(read_event(n=n)))
        except AuditUnavailable as exc:
            outcomes.append(exc)

    first = threading.Thread(target=work, args=(0,))
    first.start()
    while not calls:
        threading.Event().wait(0.001)
    waiting = [threading.Thread(target=work, args=(n,)) for n in range(1, 6)]
    for w in waiting:
        w.start()
    threading.Event().wait(0.1)  # let them queue behind the first transaction
    gate.set()
    for w in [first, *waiting]:
        w.join()
    assert outcomes.count(0) == 1
    failures = [o for o in outcomes if isinstance(o, AuditUnavailable)]
    assert len(failures) == 5
    assert calls[1:] == [5]  # the five queued requests went in one transaction


def test_a_bad_event_fails_closed(trail):
    with pytest.raises(AuditUnavailable, match="unknown audit action"):
        trail.record(read_event(action="peek"))


def test_open_trail_makes_the_key_and_uses_the_origin(store, settings, monkeypatch):
    monkeypatch.setenv("CARELIGHT_LOG_ORIGIN", "health.example/carelight-log")
    t = open_trail(store.engine, settings)
    try:
        assert (settings.home / "keys" / "transparency-log.ed25519").exists()
        assert t.log.signer.vkey.startswith("health.example/carelight-log+")
    finally:
        t.close()


def test_sqlite_wal_checkpoints_run_in_the_background_and_stop_on_close(store, trail, log):
    trail.record(read_event())
    workers = [t for t in threading.enumerate() if t.name == "carelight-audit-wal"]
    if log.engine.dialect.name != "sqlite":
        assert workers == []
        return
    assert len(workers) == 1 and workers[0].is_alive()
    for n in range(1, 30):
        trail.record(read_event(n=n))
    started = time.monotonic()
    trail.close()
    assert time.monotonic() - started < 1
    assert not workers[0].is_alive()
    assert trail.record(read_event(n=30)) == 30  # a closed trail reopens what it needs
    trail.close()
