"""Helpers for the disclosure-control tests: microdata from a table of counts, and an
attacker that reads only the published files.

The attacker is deliberately independent of the checker's own audit: it parses the released
CSV files as text, knows only the policy's published rules, and solves an *integer* program
(``scipy.optimize.milp``) for the smallest and largest value each redacted cell can take. It
does not know which redacted cells are primary, so it is weaker than the checker's audit; the
checker must protect against it with room to spare.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp

from carelight.sde.disclosure.policy import Policy

REDACTED = "[REDACTED]"


def microdata(counts: dict[tuple[str, str], int], *, prefix: str = "p") -> pd.DataFrame:
    """One row per person, with ``sex`` and ``age`` giving the cell they fall in."""
    rows = []
    i = 0
    for (sex, age), n in counts.items():
        for _ in range(n):
            rows.append((f"{prefix}{i:05d}", sex, age))
            i += 1
    return pd.DataFrame(rows, columns=["patient_id", "sex", "age"])


def read_wide(path: Path) -> tuple[list[str], list[str], dict[tuple[str, str], str]]:
    """(row labels, column labels, cell text) of a one-index crosstab, totals included
    under the label ``Total``."""
    reader = list(csv.reader(io.StringIO(path.read_text())))
    header = reader[0]
    cols = header[1:]
    cells = {}
    rows = []
    for line in reader[1:]:
        rows.append(line[0])
        for c, v in zip(cols, line[1:], strict=True):
            cells[(line[0], c)] = v
    return rows, cols, cells


def read_long(path: Path) -> dict[str, str]:
    reader = list(csv.reader(io.StringIO(path.read_text())))
    return {line[0]: line[1] for line in reader[1:]}


@dataclass
class Attacker:
    """Integer unknowns: the interior cells of the finest table, by (sex, age)."""

    policy: Policy
    rows: list[str]
    cols: list[str]

    def __post_init__(self) -> None:
        self.index = {
            (r, c): i for i, (r, c) in enumerate((r, c) for r in self.rows for c in self.cols)
        }
        self.constraints: list[tuple[np.ndarray, float, float]] = []
        self.lower = np.zeros(len(self.index))

    def published_interval(self, text: str) -> tuple[float, float] | None:
        """What a published number says about the truth, or None for a redacted one."""
        if text == REDACTED:
            return None
        r = int(text)
        b = self.policy.rounding_base
        if b > 1:
            if r == 0:
                return (0, 0)
            return (max(r - b // 2, self.policy.min_count), r + (b + 1) // 2 - 1)
        return (r, r)

    def fact(self, cells: list[tuple[str, str]], text: str) -> None:
        interval = self.published_interval(text)
        vec = np.zeros(len(self.index))
        for cell in cells:
            vec[self.index[cell]] = 1
        if interval is None:
            if len(cells) == 1:  # a redacted cell: at least the smallest redactable count
                self.lower[self.index[cells[0]]] = self.policy.primary_range[0]
            return
        self.constraints.append((vec, *interval))

    def add_crosstab(self, path: Path, *, totals: bool) -> None:
        _, _, cells = read_wide(path)
        for (r, c), text in cells.items():
            if r != "Total" and c != "Total":
                self.fact([(r, c)], text)
            elif totals:
                members = [
                    (rr, cc)
                    for rr in self.rows
                    for cc in self.cols
                    if (r == "Total" or rr == r) and (c == "Total" or cc == c)
                ]
                self.fact(members, text)

    def add_by_sex(self, path: Path, *, totals: bool) -> None:
        for label, text in read_long(path).items():
            if label == "Total" and not totals:
                continue
            members = [
                (r, c) for r in self.rows for c in self.cols if label == "Total" or r == label
            ]
            self.fact(members, text)

    def interval(self, cell: tuple[str, str]) -> tuple[float, float]:
        n = len(self.index)
        cons = [LinearConstraint(np.array([v]), lo, hi) for v, lo, hi in self.constraints]
        target = np.zeros(n)
        target[self.index[cell]] = 1
        out = []
        for sign in (1, -1):
            # a large cap instead of infinity keeps the integer program bounded
            res = milp(
                sign * target,
                constraints=cons,
                integrality=np.ones(n),
                bounds=Bounds(self.lower, np.full(n, 1e6)),
            )
            assert res.status == 0, res.message
            value = sign * res.fun
            out.append(math.inf if value > 1e5 else round(value))
        return (out[0], out[1])


@dataclass
class JointAttacker:
    """The same attacker over any number of dimensions: unknowns are the cells of the joint
    table (one per combination of ``labels``), facts are read from published crosstabs."""

    policy: Policy
    dims: tuple[str, ...]
    labels: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        from itertools import product

        self.keys = list(product(*self.labels))
        self.constraints: list[tuple[np.ndarray, float, float]] = []

    def _members(self, fixed: dict[str, str]) -> np.ndarray:
        pos = {d: i for i, d in enumerate(self.dims)}
        return np.array(
            [all(k[pos[d]] == v for d, v in fixed.items()) for k in self.keys], dtype=float
        )

    def add_crosstab(self, path: Path, row_dim: str, col_dim: str, *, totals: bool) -> None:
        probe = Attacker(self.policy, [], [])
        for (r, c), text in read_wide(path)[2].items():
            if not totals and "Total" in (r, c):
                continue
            interval = probe.published_interval(text)
            if interval is None:
                continue
            fixed = {d: v for d, v in ((row_dim, r), (col_dim, c)) if v != "Total"}
            self.constraints.append((self._members(fixed), *interval))

    def interval(self, fixed: dict[str, str]) -> tuple[float, float]:
        n = len(self.keys)
        cons = [LinearConstraint(np.array([v]), lo, hi) for v, lo, hi in self.constraints]
        target = self._members(fixed)
        out = []
        for sign in (1, -1):
            res = milp(
                sign * target,
                constraints=cons,
                integrality=np.ones(n),
                bounds=Bounds(np.zeros(n), np.full(n, 1e6)),
            )
            assert res.status == 0, res.message
            value = sign * res.fun
            out.append(math.inf if value > 1e5 else round(value))
        return (out[0], out[1])
