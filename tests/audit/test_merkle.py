"""The log's Merkle tree and proofs against the plain RFC 9162 reference in ``rfc9162.py``.

Property tests (Hypothesis): every root, inclusion proof and consistency proof the log gives
must equal the RFC's recursive definitions and pass the RFC's verification algorithms; changed
proofs must fail them. Checked on the pure tree code, on a stored log (SQLite), and
exhaustively for small trees on every engine.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rfc9162 import MTH, PATH, PROOF, leaf, verify_consistency, verify_inclusion

from carelight.audit import merkle
from carelight.audit.checkpoint import LogSigner
from carelight.audit.log import LogError, TransparencyLog
from carelight.fhir.db import make_engine, migrate

entries_strategy = st.lists(st.binary(max_size=12), max_size=70)


def stored_tree(entries: list[bytes]) -> dict[int, bytes]:
    """Every stored hash, by stored index, as the writer produces them."""
    frontier = merkle.Frontier()
    out: list[bytes] = []
    for entry in entries:
        frontier.append(merkle.leaf_hash(entry), out)
    return dict(enumerate(out))


def hashes_for(ranges, stored: dict[int, bytes]) -> list[bytes]:
    return [
        merkle.fold([stored[merkle.stored_index(lv, ix)] for lv, ix in merkle.subtrees(a, b)])
        for a, b in ranges
    ]


@given(entries_strategy)
def test_stored_hashes_are_the_complete_subtrees_in_append_order(entries):
    stored = stored_tree(entries)
    n = len(entries)
    assert sorted(stored) == list(range(merkle.stored_count(n)))
    level = 0
    while (1 << level) <= n:
        for index in range(n >> level):
            chunk = entries[index << level : (index + 1) << level]
            assert stored[merkle.stored_index(level, index)] == MTH(chunk)
        level += 1


@given(entries_strategy)
def test_root_at_every_size_is_the_rfc_tree_hash(entries):
    stored = stored_tree(entries)
    frontier = merkle.Frontier()
    assert frontier.root() == MTH([]) == merkle.EMPTY_ROOT
    for m in range(len(entries) + 1):
        if m:
            assert hashes_for([(0, m)], stored)[0] == MTH(entries[:m])
        peaks = [stored[i] for i in merkle.Frontier.peak_indices(m)]
        assert merkle.Frontier(m, peaks).root() == MTH(entries[:m])


@given(st.data())
def test_inclusion_proofs_are_rfc_paths_and_verify(data):
    entries = data.draw(st.lists(st.binary(max_size=8), min_size=1, max_size=70))
    size = data.draw(st.integers(1, len(entries)))
    index = data.draw(st.integers(0, size - 1))
    proof = hashes_for(merkle.inclusion_ranges(index, size), stored_tree(entries))
    assert proof == PATH(index, entries[:size])
    root = MTH(entries[:size])
    assert verify_inclusion(index, size, leaf(entries[index]), proof, root)


@given(st.data())
def test_consistency_proofs_are_rfc_proofs_and_verify(data):
    entries = data.draw(st.lists(st.binary(max_size=8), min_size=2, max_size=70))
    new = data.draw(st.integers(2, len(entries)))
    old = data.draw(st.integers(1, new - 1))
    proof = hashes_for(merkle.consistency_ranges(old, new), stored_tree(entries))
    assert proof == PROOF(old, entries[:new])
    assert verify_consistency(old, new, MTH(entries[:old]), MTH(entries[:new]), proof)


def test_trivial_consistency_proofs_are_empty():
    assert merkle.consistency_ranges(0, 5) == []
    assert merkle.consistency_ranges(5, 5) == []
    with pytest.raises(ValueError):
        merkle.consistency_ranges(6, 5)
    with pytest.raises(ValueError):
        merkle.inclusion_ranges(5, 5)


# -- a stored log -----------------------------------------------------------------------------

LOG_SIZE = 150


@pytest.fixture(scope="module")
def stored_log(tmp_path_factory):
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('merkle') / 'log.db'}")
    migrate(engine)
    signer = LogSigner(Ed25519PrivateKey.generate(), "test.carelight.example/merkle")
    log = TransparencyLog(engine, signer)
    entries = [f"entry {i}".encode() * (i % 5 + 1) for i in range(LOG_SIZE)]
    # Uneven batches, so batch edges fall everywhere in the tree.
    at = 0
    for batch in (1, 2, 3, 7, 16, 1, 40, 80):
        log.append_many([(e, ()) for e in entries[at : at + batch]])
        at += batch
    assert at == LOG_SIZE
    yield log, entries
    log.close()
    engine.dispose()


def test_stored_log_roots(stored_log):
    log, entries = stored_log
    assert log.size() == LOG_SIZE
    for m in range(LOG_SIZE + 1):
        assert log.root_hash(m) == MTH(entries[:m])
    assert log.root_hash() == MTH(entries)
    assert [log.leaf(i) for i in (0, 77, LOG_SIZE - 1)] == [entries[0], entries[77], entries[-1]]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(st.data())
def test_stored_log_inclusion_proofs(stored_log, data):
    log, entries = stored_log
    size = data.draw(st.integers(1, LOG_SIZE))
    index = data.draw(st.integers(0, size - 1))
    proof = log.inclusion_proof(index, size)
    root = log.root_hash(size)
    assert verify_inclusion(index, size, leaf(entries[index]), proof, root)
    # Any changed hash, another leaf, or another index must fail.
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        bad = [*proof]
        bad[at] = bytes([bad[at][0] ^ 1]) + bad[at][1:]
        assert not verify_inclusion(index, size, leaf(entries[index]), bad, root)
        other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
        assert not verify_inclusion(other, size, leaf(entries[index]), proof, root)
    assert not verify_inclusion(index, size, leaf(b"not in the log"), proof, root)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(st.data())
def test_stored_log_consistency_proofs(stored_log, data):
    log, entries = stored_log
    new = data.draw(st.integers(2, LOG_SIZE))
    old = data.draw(st.integers(1, new - 1))
    proof = log.consistency_proof(old, new)
    old_root, new_root = log.root_hash(old), log.root_hash(new)
    assert verify_consistency(old, new, old_root, new_root, proof)
    at = data.draw(st.integers(0, len(proof) - 1))
    bad = [*proof]
    bad[at] = bytes([bad[at][0] ^ 0x80]) + bad[at][1:]
    assert not verify_consistency(old, new, old_root, new_root, bad)
    forged = MTH([*entries[: old - 1], b"forged"])
    assert not verify_consistency(old, new, forged, new_root, proof)


def test_stored_log_refuses_out_of_range(stored_log):
    log, _ = stored_log
    for call in (
        lambda: log.inclusion_proof(LOG_SIZE, LOG_SIZE),
        lambda: log.inclusion_proof(0, LOG_SIZE + 1),
        lambda: log.consistency_proof(3, LOG_SIZE + 1),
        lambda: log.consistency_proof(9, 8),
        lambda: log.root_hash(LOG_SIZE + 1),
        lambda: log.leaf(LOG_SIZE),
    ):
        with pytest.raises(LogError):
            call()
    assert log.consistency_proof(0, 10) == []
    assert log.consistency_proof(10, 10) == []


# -- every engine, small trees exhaustively ---------------------------------------------------


def test_every_proof_of_small_trees(log):
    entries = [bytes([i]) * (i + 1) for i in range(17)]
    for i, entry in enumerate(entries):
        assert log.append(entry) == i
    for n in range(1, 18):
        root = log.root_hash(n)
        assert root == MTH(entries[:n])
        for i in range(n):
            assert verify_inclusion(i, n, leaf(entries[i]), log.inclusion_proof(i, n), root)
        for m in range(1, n):
            proof = log.consistency_proof(m, n)
            assert verify_consistency(m, n, MTH(entries[:m]), root, proof)
