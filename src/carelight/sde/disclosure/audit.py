"""The linear-programming audit: how precisely can an attacker pin down each redacted cell?

The unknowns are the true counts of the *joint* table: every combination of the labels of
every dimension used by the table being checked and by the project's released tables that are
linked to it (same population). Each published cell or margin is a fact: the sum of the joint
cells it covers lies in its interval (``published.py``). The joint counts are non-negative.
For a redacted cell, the smallest and largest value of its sum subject to all facts is the
interval an attacker can deduce from everything published (computed with HiGHS through
``scipy.optimize.linprog``). It is the relaxation of the integer problem, so it is never
narrower than the integer interval; for the margins of a two-way table the two coincide.

A released table whose facts contradict the new table's is from a different population (or
an older extract); it cannot be joined to this one and is left out, with a note.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix, vstack

from carelight.sde.disclosure.published import PublishedCell, PublishedTable
from carelight.sde.disclosure.tables import Key

#: the audit declines joint tables larger than this (an output checker must then look)
MAX_JOINT_CELLS = 50_000
#: seconds one linear program may take before the audit gives up (and a person must look)
LP_TIME_LIMIT = 20.0
_EPS = 1e-6


class AuditTooLarge(RuntimeError):
    """The joint table of the linked tables is too large to audit."""


@dataclass
class Joint:
    dims: tuple[str, ...]
    labels: tuple[tuple[str, ...], ...]
    codes: np.ndarray  # (cells, dims): the label index of each joint cell per dimension

    @classmethod
    def of(cls, tables: Sequence[PublishedTable]) -> Joint:
        dims: dict[str, dict[str, None]] = {}
        for t in tables:
            for d, labs in zip(t.dims, t.labels, strict=True):
                dims.setdefault(d, {}).update(dict.fromkeys(labs))
        names = tuple(dims)
        labels = tuple(tuple(dims[d]) for d in names)
        size = math.prod(len(x) for x in labels) if labels else 1
        if size > MAX_JOINT_CELLS:
            raise AuditTooLarge(
                f"the tables together have {size} cells, more than {MAX_JOINT_CELLS}"
            )
        if labels:
            grids = np.meshgrid(*[np.arange(len(x)) for x in labels], indexing="ij")
            codes = np.stack([g.ravel() for g in grids], axis=1)
        else:
            codes = np.zeros((1, 0), dtype=int)
        return cls(names, labels, codes)

    @property
    def size(self) -> int:
        return self.codes.shape[0]

    def row(self, table: PublishedTable, key: Key) -> np.ndarray:
        """Indicator of the joint cells a cell (or margin) of ``table`` adds up."""
        mask = np.ones(self.size, dtype=bool)
        for d, labs, label in zip(table.dims, table.labels, key, strict=True):
            j = self.dims.index(d)
            if label is not None:
                mask &= self.codes[:, j] == self.positions[j][label]
            elif len(labs) != len(self.labels[j]):
                mask &= np.isin(self.codes[:, j], [self.positions[j][lab] for lab in labs])
        return mask

    @property
    def positions(self) -> list[dict[str, int]]:
        cached = getattr(self, "_positions", None)
        if cached is None:
            cached = [{lab: i for i, lab in enumerate(labs)} for labs in self.labels]
            self._positions = cached
        return cached


@dataclass
class System:
    """Facts as ``A_ub x <= b_ub`` and ``A_eq x = b_eq`` over the joint cells."""

    joint: Joint
    ub_rows: list[csr_matrix] = field(default_factory=list)
    ub: list[float] = field(default_factory=list)
    eq_rows: list[csr_matrix] = field(default_factory=list)
    eq: list[float] = field(default_factory=list)

    def add(self, table: PublishedTable, cell: PublishedCell) -> None:
        vec = csr_matrix(self.joint.row(table, cell.key).astype(float))
        if cell.lo == cell.hi:
            self.eq_rows.append(vec)
            self.eq.append(cell.lo)
            return
        if math.isfinite(cell.hi):
            self.ub_rows.append(vec)
            self.ub.append(cell.hi)
        if cell.lo > 0:
            self.ub_rows.append(-vec)
            self.ub.append(-cell.lo)

    def add_table(self, table: PublishedTable) -> None:
        for cell in table.cells:
            self.add(table, cell)

    def _matrices(self) -> dict:
        """The stacked constraint matrices, built once per set of facts."""
        size = (len(self.ub_rows), len(self.eq_rows))
        cached = getattr(self, "_cache", None)
        if cached is not None and cached[0] == size:
            return cached[1]
        kwargs = {}
        if self.ub_rows:
            kwargs["A_ub"] = vstack(self.ub_rows).tocsr()
            kwargs["b_ub"] = np.array(self.ub)
        if self.eq_rows:
            kwargs["A_eq"] = vstack(self.eq_rows).tocsr()
            kwargs["b_eq"] = np.array(self.eq)
        self._cache = (size, kwargs)
        return kwargs

    def _solve(self, c: np.ndarray):
        return linprog(
            c,
            bounds=(0, None),
            method="highs",
            options={"time_limit": LP_TIME_LIMIT},
            **self._matrices(),
        )

    def feasible(self) -> bool:
        return self._solve(np.zeros(self.joint.size)).status == 0

    def interval(self, table: PublishedTable, key: Key) -> tuple[float, float]:
        """The smallest and largest value the cell can take given every fact."""
        c = self.joint.row(table, key).astype(float)
        low = self._solve(c)
        if low.status == 2:
            raise ValueError("the published facts contradict each other")
        if low.status != 0:  # never guess: a wrong bound could pass an exposed cell
            raise AuditTooLarge(f"a linear program did not finish: {low.message}")
        high = self._solve(-c)
        if high.status == 3:
            hi = math.inf
        elif high.status == 0:
            hi = float(-high.fun)
        else:
            raise AuditTooLarge(f"a linear program did not finish: {high.message}")
        return (_tidy(float(low.fun)), _tidy(hi))


def _tidy(x: float) -> float:
    return float(round(x)) if math.isfinite(x) and abs(x - round(x)) < _EPS else x


def protected(
    cell: PublishedCell, interval: tuple[float, float], primary_range: tuple[int, int]
) -> bool:
    """A cell redacted by a rule is protected when everything published leaves every count
    the rule redacts possible. A cell suppressed as secondary holds a publishable count, so
    working it out discloses nothing by itself; it needs no protection of its own."""
    lo, hi = interval
    if cell.status == "primary":
        return lo <= primary_range[0] + _EPS and hi >= primary_range[1] - _EPS
    return True


def determined(interval: tuple[float, float]) -> bool:
    """The published facts fix the cell's value exactly."""
    return interval[1] - interval[0] <= _EPS


@dataclass
class Linked:
    system: System
    linked: list[str]
    excluded: list[str]


def build_system(new: PublishedTable, released: Sequence[PublishedTable]) -> Linked:
    """The facts of ``new`` and of every released table that can be joined to it."""
    candidates = [
        t
        for t in released
        if t.population is None or new.population is None or t.population == new.population
    ]
    joint = Joint.of([new, *candidates])
    system = System(joint)
    system.add_table(new)
    linked: list[str] = []
    excluded: list[str] = [t.name for t in released if t not in candidates]
    for t in candidates:
        trial = System(
            joint, list(system.ub_rows), list(system.ub), list(system.eq_rows), list(system.eq)
        )
        trial.add_table(t)
        if trial.feasible():
            system = trial
            linked.append(t.name)
        else:
            excluded.append(t.name)
    return Linked(system, linked, excluded)
