"""A plain reference of RFC 9162's Merkle tree, written from the RFC, for checking the log.

Nothing here imports Carelight: the tree hash and the proofs are the RFC's recursive
definitions (§2.1.1, §2.1.3.1, §2.1.4.1) and the verifiers follow the numbered steps of
§2.1.3.2 and §2.1.4.2 line by line. Slow and obvious on purpose.
"""

from __future__ import annotations

from hashlib import sha256


def HASH(data: bytes) -> bytes:  # the RFC's names, upper case as there
    return sha256(data).digest()


def leaf(entry: bytes) -> bytes:
    return HASH(b"\x00" + entry)


def largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def MTH(entries: list[bytes]) -> bytes:
    """§2.1.1: the Merkle Tree Hash of a list of entries."""
    n = len(entries)
    if n == 0:
        return HASH(b"")
    if n == 1:
        return leaf(entries[0])
    k = largest_power_of_two_below(n)
    return HASH(b"\x01" + MTH(entries[:k]) + MTH(entries[k:]))


def PATH(m: int, entries: list[bytes]) -> list[bytes]:
    """§2.1.3.1: the inclusion proof of entry m."""
    n = len(entries)
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return [*PATH(m, entries[:k]), MTH(entries[k:])]
    return [*PATH(m - k, entries[k:]), MTH(entries[:k])]


def PROOF(m: int, entries: list[bytes]) -> list[bytes]:
    """§2.1.4.1: the consistency proof from the first m entries to all of them."""
    return SUBPROOF(m, entries, True)


def SUBPROOF(m: int, entries: list[bytes], b: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if b else [MTH(entries)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return [*SUBPROOF(m, entries[:k], b), MTH(entries[k:])]
    return [*SUBPROOF(m - k, entries[k:], False), MTH(entries[:k])]


def LSB(x: int) -> int:
    return x & 1


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, inclusion_path: list[bytes], root_hash: bytes
) -> bool:
    """§2.1.3.2, step by step."""
    # 1. Compare leaf_index against tree_size. If leaf_index is greater than or equal to
    #    tree_size, then fail the proof verification.
    if leaf_index >= tree_size:
        return False
    # 2. Set fn to leaf_index and sn to tree_size - 1.
    fn, sn = leaf_index, tree_size - 1
    # 3. Set r to hash.
    r = leaf_hash
    # 4. For each value p in the inclusion_path array:
    for p in inclusion_path:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if LSB(fn) or fn == sn:
            # i. Set r to HASH(0x01 || p || r).
            r = HASH(b"\x01" + p + r)
            # ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
            #     LSB(fn) is set or fn is 0.
            if not LSB(fn):
                while not LSB(fn) and fn != 0:
                    fn >>= 1
                    sn >>= 1
        # Otherwise: Set r to HASH(0x01 || r || p).
        else:
            r = HASH(b"\x01" + r + p)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. Compare sn to 0. Compare r against the root_hash. If sn is equal to 0 and r and the
    #    root_hash are equal, then the log has proven the inclusion of hash. Otherwise, fail.
    return sn == 0 and r == root_hash


def verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, consistency_path: list[bytes]
) -> bool:
    """§2.1.4.2, step by step (for 0 < first < second, as the RFC's proofs are defined)."""
    if not 0 < first < second:
        return False
    path = list(consistency_path)
    # 1. If consistency_path is an empty array, stop and fail the proof verification.
    if not path:
        return False
    # 2. If first is an exact power of 2, then prepend first_hash to the consistency_path.
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn, sn = first - 1, second - 1
    # 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while LSB(fn):
        fn >>= 1
        sn >>= 1
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if LSB(fn) or fn == sn:
            # i. Set fr to HASH(0x01 || c || fr).
            fr = HASH(b"\x01" + c + fr)
            # ii. Set sr to HASH(0x01 || c || sr).
            sr = HASH(b"\x01" + c + sr)
            # iii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            #      either LSB(fn) is set or fn is 0.
            if not LSB(fn):
                while not LSB(fn) and fn != 0:
                    fn >>= 1
                    sn >>= 1
        # Otherwise: Set sr to HASH(0x01 || sr || c).
        else:
            sr = HASH(b"\x01" + sr + c)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. After completing iterating through the consistency_path array as described above,
    #    verify that the fr calculated is equal to the first_hash supplied, that the sr
    #    calculated is equal to the second_hash supplied, and that sn is 0.
    return fr == first_hash and sr == second_hash and sn == 0
