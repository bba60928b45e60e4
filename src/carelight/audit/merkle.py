"""RFC 9162 Merkle tree hashing, and where each hash lives, independent of storage.

Hashes (RFC 9162 §2.1.1): a leaf is ``SHA-256(0x00 ‖ entry)``, an interior node
``SHA-256(0x01 ‖ left ‖ right)``, the empty tree ``SHA-256()``. A tree of ``n`` leaves splits at
``k``, the largest power of two below ``n``, so its root is built from the *complete* subtrees
(perfect binary trees of ``2**level`` leaves) along its right edge.

The log stores only complete subtrees, each once, in the order they come into being as leaves
are appended: leaf ``i`` and then every subtree that leaf completes. That order is
:func:`stored_index`; after ``n`` leaves exactly :func:`stored_count` hashes exist, numbered
``0 … stored_count(n) - 1`` with no gaps, so the table is append-only too and any hash of any
historical tree is one look-up away. Every root and proof is made of O(log n) stored hashes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def stored_index(level: int, index: int) -> int:
    """Where the complete subtree ``index`` of height ``level`` sits in append order.

    It is written right after its last leaf, ``last = (index + 1) * 2**level - 1``, whose own
    hash follows the ``stored_count(last)`` hashes of the tree before it; the subtrees that
    leaf completes come next, lowest first.
    """
    last = ((index + 1) << level) - 1
    return stored_count(last) + level


def stored_count(size: int) -> int:
    """How many complete-subtree hashes a tree of ``size`` leaves has: 2n - popcount(n)."""
    return 2 * size - size.bit_count()


def subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The complete subtrees, as (level, index), that make up leaves ``[start, end)``.

    Left to right, each as large as alignment allows. When ``start`` is a multiple of the
    smallest power of two ≥ ``end - start`` (true of every range RFC 9162 hashes: the whole
    tree and every node of a proof), folding their hashes from the right gives that range's
    Merkle tree hash.
    """
    out = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start & ((1 << level) - 1):
            level -= 1
        out.append((level, start >> level))
        start += 1 << level
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from its complete subtrees' hashes (left to right)."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _split(size: int) -> int:
    """k: the largest power of two smaller than ``size`` (size ≥ 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), in order."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    path = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
    path.reverse()  # the RFC lists the sibling nearest the leaf first
    return path


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to from a leaf hash (RFC 9162 §2.1.3.2): the entry
    is in the tree of ``size`` entries if and only if this equals that tree's root. Raises
    ValueError for a proof of the wrong shape (too long, too short, a hash not 32 bytes)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            raise ValueError("the proof does not have the shape of a proof for this leaf")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("the proof is too short for this leaf and tree size")
    return r


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1).

    Empty when ``old_size`` is 0 or equal to ``new_size``: there is nothing to prove.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    proof = []
    start, end = 0, new_size
    whole_old_tree_known = True  # SUBPROOF's flag b: the old root is the verifier's own
    while True:
        size = end - start
        m = old_size - start
        if m == size:
            if not whole_old_tree_known:
                proof.append((start, end))
            break
        k = _split(size)
        if m <= k:
            proof.append((start + k, end))
            end = start + k
        else:
            proof.append((start, start + k))
            start += k
            whole_old_tree_known = False
    proof.reverse()
    return proof


def needed(ranges: Iterable[tuple[int, int]]) -> list[int]:
    """The stored indices of every complete subtree the ranges are made of."""
    ids: list[int] = []
    for start, end in ranges:
        ids.extend(stored_index(level, index) for level, index in subtrees(start, end))
    return ids


class Frontier:
    """The right edge of a growing tree: one hash per complete subtree, largest first.

    Appending a leaf yields its hash and the hashes of every subtree it completes, in
    stored order, so a writer inserts exactly what :func:`stored_index` expects.
    """

    __slots__ = ("peaks", "size")

    def __init__(self, size: int = 0, peaks: Sequence[bytes] = ()) -> None:
        if len(peaks) != size.bit_count():
            raise ValueError(
                f"a tree of size {size} has {size.bit_count()} peaks, not {len(peaks)}"
            )
        self.size = size
        self.peaks = list(peaks)

    def copy(self) -> Frontier:
        return Frontier(self.size, self.peaks)

    def append(self, leaf: bytes, out: list[bytes]) -> None:
        """Add a leaf hash; extend ``out`` with the new stored hashes."""
        out.append(leaf)
        h = leaf
        n = self.size
        peaks = self.peaks
        while n & 1:
            h = node_hash(peaks.pop(), h)
            out.append(h)
            n >>= 1
        peaks.append(h)
        self.size += 1

    def root(self) -> bytes:
        return fold(self.peaks)

    @staticmethod
    def peak_indices(size: int) -> list[int]:
        """Stored indices of the peaks of a tree of ``size`` leaves, largest first."""
        return [stored_index(level, index) for level, index in subtrees(0, size)]
