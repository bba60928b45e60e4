"""Signed checkpoints: C2SP formats, checked by an independent reader (``signed_note.py``)."""

from __future__ import annotations

import base64
import hashlib
import stat

import pytest
from audit_support import read_event
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rfc9162 import MTH, verify_consistency
from signed_note import parse_vkey, verify

from carelight.audit.checkpoint import (
    DEFAULT_ORIGIN,
    KEY_FILE,
    CheckpointError,
    LogSigner,
    load_signer,
    open_checkpoint,
)
from carelight.audit.events import entry_bytes

ORIGIN = "test.carelight.example/log"


def verifiers(signer: LogSigner):
    return [parse_vkey(signer.vkey), parse_vkey(signer.cosignature_vkey)]


def test_checkpoint_is_a_tlog_checkpoint_that_an_independent_reader_accepts(trail, log):
    events = [read_event(n=i) for i in range(5)]
    trail.record_many(events)
    cp = log.latest_checkpoint(force=True)
    lines = cp.note.split("\n")
    assert lines[:4] == [ORIGIN, "5", base64.b64encode(log.root_hash(5)).decode(), ""]
    assert [line.split(" ")[:2] for line in lines[4:6]] == [["\u2014", ORIGIN]] * 2
    assert lines[6:] == [""]

    seen = verify(cp.note.encode(), verifiers(log.signer))
    assert seen is not None
    assert (seen.origin, seen.tree_size, seen.extensions) == (ORIGIN, 5, [])
    assert seen.root_hash == MTH([entry_bytes(e) for e in events])
    assert seen.timestamps == [cp.timestamp]
    assert seen.key_types == {0x01, 0x04}
    # A reader that knows only the plain Ed25519 key (as Go's sumdb/note would) accepts it too.
    assert verify(cp.note.encode(), [parse_vkey(log.signer.vkey)]) is not None


def test_every_changed_byte_is_rejected(trail, log):
    """A change in the signed text fails every reader. A change in a signature line makes
    that line fail or become unknown (ignored, as the spec says), so the note no longer
    carries both of the log's signatures, which is what Carelight's own reader demands."""
    trail.record(read_event())
    note = log.latest_checkpoint(force=True).note.encode()
    text_end = note.index(b"\n\n") + 1
    keys = verifiers(log.signer)
    for position in range(len(note)):
        for flip in (0x01, 0x20):
            changed = bytearray(note)
            changed[position] ^= flip
            changed = bytes(changed)
            where = f"byte {position} ^ {flip:#x}"
            seen = verify(changed, keys)
            if position < text_end:
                assert seen is None, f"{where} of the text went unnoticed"
                assert verify(changed, keys[:1]) is None, f"{where}: sumdb-style reader"
            else:
                assert seen is None or seen.key_types != {0x01, 0x04}, f"{where} went unnoticed"
            try:
                text = changed.decode()
            except UnicodeDecodeError:
                continue
            with pytest.raises(CheckpointError):
                open_checkpoint(text, log.signer.public_key)


def test_vkeys_follow_the_signed_note_spec(log):
    pub = log.signer.public_key
    for vkey, key_type in ((log.signer.vkey, 0x01), (log.signer.cosignature_vkey, 0x04)):
        name, hex_id, encoded = vkey.split("+", 2)
        assert name == ORIGIN
        raw = base64.b64decode(encoded)
        assert raw == bytes([key_type]) + pub
        expected = hashlib.sha256(ORIGIN.encode() + b"\n" + bytes([key_type]) + pub).digest()
        assert hex_id == expected[:4].hex()


def test_other_signers_lines_are_ignored_and_wrong_keys_refused(trail, log):
    trail.record(read_event())
    cp = log.latest_checkpoint(force=True)
    witness = LogSigner(Ed25519PrivateKey.generate(), "witness.example/w1")
    witnessed = witness.sign(cp.tree_size, cp.root_hash, cp.timestamp).note
    extra = witnessed.split("\n\n", 1)[1]
    cosigned = cp.note + extra
    assert open_checkpoint(cosigned, log.signer.public_key).tree_size == cp.tree_size
    assert verify(cosigned.encode(), verifiers(log.signer)) is not None
    with pytest.raises(CheckpointError, match="not signed by the log's key"):
        open_checkpoint(cp.note, witness.public_key)
    with pytest.raises(CheckpointError, match="for log"):
        open_checkpoint(cp.note, log.signer.public_key, origin="another.example/log")


def test_the_key_is_created_once_private_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv("CARELIGHT_LOG_ORIGIN", raising=False)
    first = load_signer(tmp_path)
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.origin == DEFAULT_ORIGIN
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    monkeypatch.setenv("CARELIGHT_LOG_ORIGIN", "nhs.example/carelight")
    again = load_signer(tmp_path)
    assert again.public_key == first.public_key
    assert again.origin == "nhs.example/carelight"
    monkeypatch.setenv("CARELIGHT_LOG_ORIGIN", "has space")
    with pytest.raises(CheckpointError, match="cannot be a log origin"):
        load_signer(tmp_path)


def test_checkpoints_are_signed_when_due_and_stay_consistent(trail, log):
    first = log.latest_checkpoint()
    assert first.tree_size == 0 and first.root_hash == MTH([])
    log.checkpoint_interval = 3600
    trail.record_many([read_event(n=i) for i in range(3)])
    assert log.latest_checkpoint() == first  # grown, but the last one is recent
    second = log.latest_checkpoint(force=True)
    assert second.tree_size == 3
    assert log.latest_checkpoint(force=True) == second  # not grown: nothing new to sign
    log.checkpoint_interval = 0
    trail.record_many([read_event(n=i) for i in range(3, 10)])
    third = log.latest_checkpoint()
    assert third.tree_size == 10 and third.timestamp >= second.timestamp
    assert [c.tree_size for c in log.checkpoints()] == [0, 3, 10]
    proof = log.consistency_proof(3, 10)
    assert verify_consistency(3, 10, second.root_hash, third.root_hash, proof)


def test_the_trail_signs_checkpoints_regularly(trail, log):
    log.checkpoint_interval = 0  # every append is past the interval
    trail.record(read_event(n=0))
    trail.record(read_event(n=1))
    assert [c.tree_size for c in log.checkpoints()] == [1, 2]
