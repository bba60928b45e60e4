"""Tamper tests: change the stored log with SQL, and `carelight audit verify` must say where.

Each test builds a small log (12 entries, checkpoints at sizes 5 and 12) on each engine, edits
its rows directly as an attacker with database access would, and runs the command.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from audit_support import read_event
from sqlalchemy import text
from typer.testing import CliRunner

from carelight.audit import merkle
from carelight.audit.cli import app
from carelight.audit.events import entry_bytes

SIZE = 12


def url_of(store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


@pytest.fixture
def built(store, trail, log, settings):
    """A log of 12 entries about two patients, checkpoints at 5 and 12."""
    trail.record_many([read_event(f"pat-{i % 2}", i) for i in range(5)])
    log.latest_checkpoint(force=True)
    trail.record_many([read_event(f"pat-{i % 2}", i) for i in range(5, SIZE)])
    saved = log.latest_checkpoint(force=True)
    return store, settings, saved


def sql(store, statement: str, **params) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement), params)


def entry_of(store, index: int) -> bytes:
    with store.engine.connect() as conn:
        return bytes(
            conn.execute(text("SELECT entry FROM audit_leaf WHERE idx = :i"), {"i": index}).scalar()
        )


def verify(store, settings, *args: str):
    env = {
        "CARELIGHT_HOME": str(settings.home),
        "CARELIGHT_DATABASE_URL": url_of(store),
        "CARELIGHT_AUDIT_DATABASE_URL": url_of(store),  # these tests keep the log beside the data
    }
    return CliRunner().invoke(app, ["verify", *args], env=env)


def assert_damaged(result, *phrases: str) -> None:
    assert result.exit_code == 1, result.output
    for phrase in phrases:
        assert phrase in result.output, result.output


def test_an_intact_log_verifies(built):
    store, settings, _ = built
    result = verify(store, settings)
    assert result.exit_code == 0, result.output
    assert "The transparency log is intact: 12 entries, 2 checkpoints" in result.output


def test_altered_entry(built):
    store, settings, _ = built
    changed = entry_of(store, 5).replace(b"Observation/obs-5", b"Observation/obs-X")
    sql(store, "UPDATE audit_leaf SET entry = :e WHERE idx = 5", e=changed)
    assert_damaged(
        verify(store, settings), "damaged from entry 5", "entry 5 does not match its stored"
    )


def test_removed_entry(built):
    store, settings, _ = built
    sql(store, "DELETE FROM audit_leaf WHERE idx = 7")
    assert_damaged(verify(store, settings), "damaged from entry 7", "entry 7 is missing")


def test_removed_last_entries(built):
    store, settings, _ = built
    sql(store, "DELETE FROM audit_leaf WHERE idx >= 10")
    sql(store, "DELETE FROM audit_patient WHERE idx >= 10")
    assert_damaged(
        verify(store, settings),
        "damaged from entry 10",
        "checkpoint signed at size 12 is beyond the log's 10 entries",
        "stored hashes beyond the log's 10 entries",
    )


def test_inserted_entry_at_the_end(built):
    store, settings, _ = built
    forged = entry_bytes(read_event("pat-1", 99))
    sql(store, "INSERT INTO audit_leaf (idx, entry) VALUES (12, :e)", e=forged)
    assert_damaged(verify(store, settings), "damaged from entry 12", "entry 12 has no stored hash")


def test_inserted_entry_in_the_middle(built):
    store, settings, _ = built
    # Shift entries 4… up by one (through negative keys, so no key collides), then insert.
    sql(store, "UPDATE audit_leaf SET idx = -(idx + 1) WHERE idx >= 4")
    sql(store, "UPDATE audit_leaf SET idx = -idx WHERE idx < 0")
    sql(store, "INSERT INTO audit_leaf (idx, entry) VALUES (4, :e)", e=entry_of(store, 3))
    assert_damaged(verify(store, settings), "damaged from entry 4", "entry 4 does not match")


def test_reordered_entries(built):
    store, settings, _ = built
    third, ninth = entry_of(store, 3), entry_of(store, 9)
    sql(store, "UPDATE audit_leaf SET entry = :e WHERE idx = 3", e=ninth)
    sql(store, "UPDATE audit_leaf SET entry = :e WHERE idx = 9", e=third)
    assert_damaged(verify(store, settings), "damaged from entry 3", "entry 3 does not match")


def test_altered_leaf_hash(built):
    store, settings, _ = built
    sql(
        store,
        "UPDATE audit_node SET hash = :h WHERE id = :i",
        h=b"\x00" * 32,
        i=merkle.stored_index(0, 6),
    )
    assert_damaged(verify(store, settings), "damaged from entry 6", "entry 6 does not match")


def test_entry_altered_and_its_leaf_hash_rewritten(built):
    store, settings, _ = built
    changed = entry_of(store, 6).replace(b"obs-6", b"obs-7")
    sql(store, "UPDATE audit_leaf SET entry = :e WHERE idx = 6", e=changed)
    sql(
        store,
        "UPDATE audit_node SET hash = :h WHERE id = :i",
        h=merkle.leaf_hash(changed),
        i=merkle.stored_index(0, 6),
    )
    assert_damaged(verify(store, settings), "damaged from entry 6", "stored hash over entries 6-7")


def rewrite_tree(store) -> None:
    """Recompute every stored hash from the (altered) entries, as a careful attacker would."""
    with store.engine.begin() as conn:
        entries = [
            bytes(row[0]) for row in conn.execute(text("SELECT entry FROM audit_leaf ORDER BY idx"))
        ]
        frontier, hashes = merkle.Frontier(), []
        for entry in entries:
            frontier.append(merkle.leaf_hash(entry), hashes)
        for i, h in enumerate(hashes):
            conn.execute(text("UPDATE audit_node SET hash = :h WHERE id = :i"), {"h": h, "i": i})


def test_a_rewritten_tree_is_caught_by_the_signed_checkpoints(built):
    store, settings, _ = built
    changed = entry_of(store, 2).replace(b"obs-2", b"obs-3")
    sql(store, "UPDATE audit_leaf SET entry = :e WHERE idx = 2", e=changed)
    rewrite_tree(store)
    assert_damaged(
        verify(store, settings),
        "checkpoint at size 5: its signed root does not match the entries",
    )


def test_a_rewritten_tree_without_checkpoints_is_caught_by_a_saved_one(built, tmp_path):
    store, settings, saved = built
    changed = entry_of(store, 2).replace(b"obs-2", b"obs-3")
    sql(store, "UPDATE audit_leaf SET entry = :e WHERE idx = 2", e=changed)
    rewrite_tree(store)
    sql(store, "DELETE FROM audit_checkpoint")
    assert verify(store, settings).exit_code == 0  # nothing inside the database shows it…
    kept = tmp_path / "checkpoint.txt"
    kept.write_text(saved.note, encoding="utf-8")
    assert_damaged(  # …but a checkpoint anyone saved earlier does
        verify(store, settings, "--checkpoint", str(kept)),
        "given checkpoint 1 (size 12): its signed root does not match",
    )


def test_altered_checkpoint_note(built):
    store, settings, _ = built
    with store.engine.connect() as conn:
        note = conn.execute(text("SELECT note FROM audit_checkpoint WHERE tree_size = 5")).scalar()
    forged = note.replace("\n5\n", "\n4\n", 1)
    sql(store, "UPDATE audit_checkpoint SET note = :n WHERE tree_size = 5", n=forged)
    assert_damaged(verify(store, settings), "checkpoint at size 5", "does not verify")


def test_altered_checkpoint_root(built):
    store, settings, _ = built
    sql(store, "UPDATE audit_checkpoint SET root_hash = :r WHERE tree_size = 12", r=b"\x01" * 32)
    assert_damaged(
        verify(store, settings), "checkpoint at size 12: its stored size, root or time differ"
    )


def test_checkpoints_need_the_right_public_key(built):
    store, settings, _ = built
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from carelight.audit.checkpoint import LogSigner

    stranger = LogSigner(Ed25519PrivateKey.generate(), "test.carelight.example/log")
    assert_damaged(
        verify(store, settings, "--public-key", stranger.vkey), "not signed by the log's key"
    )
    result = verify(store, settings, "--public-key", "nonsense")
    assert result.exit_code == 2 and "--public-key" in result.output


def test_patient_index_tampering(built):
    store, settings, _ = built
    sql(store, "DELETE FROM audit_patient WHERE idx = 8")
    assert_damaged(verify(store, settings), "patient index for entry 8 does not match")


def test_no_log_yet(tmp_path):
    env = {
        "CARELIGHT_HOME": str(tmp_path),
        "CARELIGHT_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
    }
    result = CliRunner().invoke(app, ["verify"], env=env)
    assert result.exit_code == 2
    assert "no transparency log yet" in result.output


def test_the_installed_command_exits_non_zero(built):
    store, settings, _ = built
    env = {
        **os.environ,
        "CARELIGHT_HOME": str(settings.home),
        "CARELIGHT_DATABASE_URL": url_of(store),
        "CARELIGHT_AUDIT_DATABASE_URL": url_of(store),
    }
    command = [sys.executable, "-m", "carelight.cli", "audit", "verify"]
    ok = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    sql(store, "DELETE FROM audit_leaf WHERE idx = 3")
    bad = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "entry 3 is missing" in bad.stderr
