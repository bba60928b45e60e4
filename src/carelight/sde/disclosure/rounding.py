"""Rounding counts to a base (the nearest 5 under nhs-england), and what a rounded count says.

Halves round up (with a base of 5 and whole counts there are none). A published ``r`` tells an
attacker the true count lies in ``[r - floor(b/2), r + ceil(b/2) - 1]``, and, because counts
below the threshold were redacted before rounding, that it is at least the smallest
publishable count (or exactly zero).
"""

from __future__ import annotations

import math


def round_count(x: int, base: int) -> int:
    if base <= 1:
        return x
    return base * math.floor(x / base + 0.5)


def rounded_interval(r: int, base: int, min_count: int) -> tuple[float, float]:
    """The true counts that publish as ``r``."""
    if base <= 1:
        return (float(r), float(r))
    lo, hi = r - base // 2, r + (base + 1) // 2 - 1
    if r == 0 and hi < min_count:
        return (0.0, 0.0)
    return (float(max(lo, min_count)), float(hi))
