"""Appends from several processes wait for SQLite's write lock themselves (not its busy
handler's millisecond sleeps), and give up - failing closed - only after LOCK_WAIT_S."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from carelight.audit import log as log_module


def _connect(path):
    conn = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=0")
    return conn


def test_waits_for_the_lock_and_gets_it_soon_after_release(tmp_path):
    path = tmp_path / "lock.db"
    holder, waiter = _connect(path), _connect(path)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    released = []

    def release():
        time.sleep(0.05)
        released.append(time.monotonic())
        holder.execute("COMMIT")

    threading.Thread(target=release).start()
    log_module._begin_immediate(waiter.cursor())
    got = time.monotonic()
    waiter.execute("COMMIT")
    # SQLite's busy handler would be sleeping 25 ms at a time by now
    assert released and 0 <= got - released[0] < 0.02


def test_gives_up_after_the_limit(tmp_path, monkeypatch):
    path = tmp_path / "lock.db"
    holder, waiter = _connect(path), _connect(path)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(log_module, "LOCK_WAIT_S", 0.05)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        log_module._begin_immediate(waiter.cursor())
    holder.execute("ROLLBACK")
