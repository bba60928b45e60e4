"""Jaro and Jaro-Winkler similarity, as DuckDB computes them.

The pure-Python scorer must put a pair in the same comparison level as Splink's SQL does, so
this follows DuckDB's ``jaro_winkler_similarity`` (the rapidfuzz algorithm): the usual match
window of max(len) // 2 - 1, the Winkler prefix bonus (0.1 per common leading character, at
most four) applied only when the Jaro similarity exceeds 0.7. A test compares the two on
thousands of name pairs.
"""

from __future__ import annotations

from functools import lru_cache


def jaro(a: str, b: str) -> float:
    if a == b:
        return 1.0
    la, lb = len(a), len(b)
    if not la or not lb:
        return 0.0
    window = max(max(la, lb) // 2 - 1, 0)
    matched_b = [False] * lb
    a_matches: list[str] = []
    for i, ch in enumerate(a):
        for j in range(max(0, i - window), min(lb, i + window + 1)):
            if not matched_b[j] and b[j] == ch:
                matched_b[j] = True
                a_matches.append(ch)
                break
    m = len(a_matches)
    if not m:
        return 0.0
    b_matches = [b[j] for j in range(lb) if matched_b[j]]
    transpositions = sum(x != y for x, y in zip(a_matches, b_matches, strict=True)) // 2
    return (m / la + m / lb + (m - transpositions) / m) / 3.0


@lru_cache(maxsize=65536)
def jaro_winkler(a: str, b: str) -> float:
    """Jaro-Winkler similarity in [0, 1] (1 for equal strings)."""
    sim = jaro(a, b)
    if sim > 0.7:
        prefix = 0
        for x, y in zip(a[:4], b[:4], strict=False):
            if x != y:
                break
            prefix += 1
        sim += prefix * 0.1 * (1.0 - sim)
    return sim
