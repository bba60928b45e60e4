"""Checking an entry against a checkpoint, as the patient app does on the server:
``merkle.root_from_inclusion_proof`` against the RFC's own definitions, the person's entries
across their several records (``entries_for_patients``, on every engine), and
``verify_entry`` for an intact and a changed entry."""

from __future__ import annotations

import pytest
from audit_support import read_event
from rfc9162 import MTH, PATH, leaf

from carelight.apps.patient.verification import verify_entry
from carelight.audit import merkle
from carelight.audit.events import entry_bytes


def test_the_root_from_a_proof_is_the_tree_root_for_every_leaf_of_small_trees():
    for size in range(1, 34):
        entries = [bytes([i]) * 3 for i in range(size)]
        root = MTH(entries)
        for index in range(size):
            proof = PATH(index, entries)
            got = merkle.root_from_inclusion_proof(index, size, leaf(entries[index]), proof)
            assert got == root, (index, size)
            # Another entry's bytes, or a changed proof, lead somewhere else.
            other = leaf(entries[index] + b"!")
            assert merkle.root_from_inclusion_proof(index, size, other, proof) != root
            if proof:
                bent = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
                assert (
                    merkle.root_from_inclusion_proof(index, size, leaf(entries[index]), bent)
                    != root
                )


def test_a_proof_of_the_wrong_shape_is_refused():
    entries = [b"a", b"b", b"c", b"d", b"e"]
    proof = PATH(2, entries)
    with pytest.raises(ValueError, match="too short"):
        merkle.root_from_inclusion_proof(2, 5, leaf(b"c"), proof[:-1])
    with pytest.raises(ValueError, match="shape"):
        merkle.root_from_inclusion_proof(2, 5, leaf(b"c"), [*proof, proof[0]])
    with pytest.raises(ValueError, match="not in a tree"):
        merkle.root_from_inclusion_proof(5, 5, leaf(b"c"), proof)


def test_entries_for_a_persons_records_are_listed_once_each_newest_first(trail, log):
    trail.record(read_event("pat-1", 0))
    trail.record(read_event("pat-9", 1))
    trail.record(read_event("pat-2", 2))
    trail.record(read_event("pat-1", 3, patients=("pat-1", "pat-2")))  # both of the person's
    rows = log.entries_for_patients(["pat-1", "pat-2"], 0, 10)
    assert [i for i, _ in rows] == [3, 2, 0]
    assert [i for i, _ in log.entries_for_patients(["pat-1", "pat-2"], 1, 1)] == [2]
    assert log.entries_for_patients([], 0, 10) == []


def test_an_entry_verifies_and_a_changed_one_does_not(trail, log):
    indices = [trail.record(read_event("pat-1", n)) for n in range(6)]
    entry = log.leaf(indices[4])
    checked = verify_entry(log, indices[4], entry)
    assert checked.ok, checked.explanation
    assert checked.tree_size >= 5 and "unchanged" in checked.headline
    assert checked.public_key == log.signer.vkey
    changed = entry_bytes(read_event("pat-1", 4, reason="altered"))
    refused = verify_entry(log, indices[4], changed)
    assert not refused.ok and "may have been changed" in refused.explanation
