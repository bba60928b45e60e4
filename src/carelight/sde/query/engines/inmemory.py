"""The in-memory engine: the query model evaluated in plain Python, the reference for the others.

It is written to be obviously right rather than fast: a frame is a list of row dicts, a
patient-level series is computed per patient, and every operator is spelt out with its NULL
rule. The SQL engines are tested against it (``tests/sde/spec``, ``test_query_agreement``).

    engine = InMemoryEngine({"patients": [{"patient_id": "a", "sex": "female", ...}], ...})
    rows = engine.get_rows(dataset_node)
"""

from __future__ import annotations

import math
import operator
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from carelight.sde import model
from carelight.sde.query import dates
from carelight.sde.query.engines.base import Engine, Row
from carelight.sde.query.nodes import (
    AggregateByPatient,
    BinaryOp,
    Case,
    Count,
    Dataset,
    DateAdd,
    DateDifference,
    Exists,
    Filter,
    Frame,
    IntervalEnd,
    IntervalStart,
    IsIn,
    Node,
    PickOneRowPerPatient,
    SelectColumn,
    SelectPatientTable,
    SelectTable,
    Series,
    Sort,
    UnaryOp,
    Value,
    sort_keys,
    tables_used,
)

_COMPARE = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


class InMemoryEngine(Engine):
    """Runs a dataset over ``tables``: table name → rows (mappings of column → value).

    Missing tables are empty; missing columns are NULL; unknown tables or columns are an error.
    """

    name = "memory"

    def __init__(self, tables: Mapping[str, Iterable[Mapping[str, Any]]]):
        self.tables: dict[str, list[Row]] = {t.name: [] for t in model.TABLES}
        for name, rows in tables.items():
            table = model.table(name)
            known = set(table.names)
            for row in rows:
                extra = set(row) - known
                if extra:
                    raise KeyError(f"table {name!r} has no column(s) {sorted(extra)}")
                if row.get("patient_id") is None:
                    raise ValueError(f"a row of {name!r} has no patient_id")
                self.tables[name].append({c: row.get(c) for c in table.names})
        for t in model.TABLES:
            if t.kind == "patient":
                seen: set = set()
                for row in self.tables[t.name]:
                    if row["patient_id"] in seen:
                        raise ValueError(f"{t.name} is patient-level but has a patient twice")
                    seen.add(row["patient_id"])

    def get_rows(self, dataset: Dataset) -> list[Row]:
        run = _Run(self.tables)
        universe: set = set()
        for name in tables_used(dataset.population):
            universe.update(row["patient_id"] for row in self.tables[name])
        out = []
        for pid in sorted(universe):
            if run.value(dataset.population, pid, None) is not True:
                continue
            row = {"patient_id": pid}
            for name, series in dataset.variables:
                row[name] = run.value(series, pid, None)
            out.append(row)
        return out


class _Run:
    """One evaluation: caches per-frame and per-aggregate results by node."""

    def __init__(self, tables: dict[str, list[Row]]):
        self.tables = tables
        self.cache: dict[Node, Any] = {}

    # Frames -----------------------------------------------------------------------------

    def rows(self, frame: Frame) -> list[Row]:
        """The rows of an event frame (in table order; Sort only matters when picking)."""
        if frame not in self.cache:
            if isinstance(frame, SelectTable):
                result = self.tables[frame.name]
            elif isinstance(frame, Filter):
                cond = frame.condition
                result = [
                    r
                    for r in self.rows(frame.source)
                    if self.value(cond, r["patient_id"], r) is True
                ]
            elif isinstance(frame, Sort):
                result = self.rows(frame.source)
            else:
                raise TypeError(f"not an event frame: {type(frame).__name__}")
            self.cache[frame] = result
        return self.cache[frame]

    def patient_rows(self, frame: Frame) -> dict[Any, Row]:
        """patient_id → the patient's row, for a patient-level frame."""
        if frame not in self.cache:
            if isinstance(frame, SelectPatientTable):
                result = {r["patient_id"]: r for r in self.tables[frame.name]}
            elif isinstance(frame, PickOneRowPerPatient):
                result = self._pick(frame)
            else:
                raise TypeError(f"not a patient-level frame: {type(frame).__name__}")
            self.cache[frame] = result
        return self.cache[frame]

    def _pick(self, frame: PickOneRowPerPatient) -> dict[Any, Row]:
        keys = sort_keys(frame.source)
        columns = model.table(frame.table).names

        def order(row: Row) -> tuple:
            pid = row["patient_id"]
            values = [self.value(k, pid, row) for k in keys] + [row[c] for c in columns]
            return tuple((v is not None, v) for v in values)

        picked: dict[Any, tuple[tuple, Row]] = {}
        better = operator.lt if frame.position == "first" else operator.gt
        for row in self.rows(frame.source):
            key = order(row)
            pid = row["patient_id"]
            if pid not in picked or better(key, picked[pid][0]):
                picked[pid] = (key, row)
        return {pid: row for pid, (_, row) in picked.items()}

    def per_patient(self, node: Series) -> dict[Any, Any]:
        """patient_id → value, for aggregates (patients without rows are absent)."""
        if node not in self.cache:
            groups: dict[Any, list] = defaultdict(list)
            if isinstance(node, Exists | Count):
                for r in self.rows(node.source):
                    groups[r["patient_id"]].append(r)
                result = {
                    pid: (True if isinstance(node, Exists) else len(rs))
                    for pid, rs in groups.items()
                }
            else:
                assert isinstance(node, AggregateByPatient)
                frame = node.arg.frame
                assert frame is not None
                for r in self.rows(frame):
                    pid = r["patient_id"]
                    groups[pid].append(self.value(node.arg, pid, r))
                result = {pid: _aggregate(node.fn, vs) for pid, vs in groups.items()}
            self.cache[node] = result
        return self.cache[node]

    # Series -----------------------------------------------------------------------------

    def value(self, s: Series, pid: Any, row: Row | None) -> Any:
        """The value of ``s`` for patient ``pid`` (and, if event-level, for ``row``)."""
        if isinstance(s, Value):
            return s.value
        if isinstance(s, SelectColumn):
            if s.source.is_patient_level:
                found = self.patient_rows(s.source).get(pid)
                return None if found is None else found[s.name]
            assert row is not None, "event-level series evaluated without a row"
            return row[s.name]
        if isinstance(s, Exists):
            return self.per_patient(s).get(pid, False)
        if isinstance(s, Count):
            return self.per_patient(s).get(pid, 0)
        if isinstance(s, AggregateByPatient):
            default = 0 if s.fn == "count_distinct" else None
            return self.per_patient(s).get(pid, default)
        if isinstance(s, BinaryOp):
            return _binary(s.op, self.value(s.lhs, pid, row), lambda: self.value(s.rhs, pid, row))
        if isinstance(s, UnaryOp):
            return _unary(s.op, self.value(s.arg, pid, row))
        if isinstance(s, IsIn):
            v = self.value(s.arg, pid, row)
            return None if v is None else v in s.values
        if isinstance(s, DateAdd):
            d, n = self.value(s.date, pid, row), self.value(s.amount, pid, row)
            return None if d is None or n is None else dates.add(d, n, s.unit)
        if isinstance(s, DateDifference):
            a, b = self.value(s.start, pid, row), self.value(s.end, pid, row)
            return None if a is None or b is None else dates.difference(a, b, s.unit)
        if isinstance(s, Case):
            for cond, then in s.cases:
                if self.value(cond, pid, row) is True:
                    return _as(s.type, self.value(then, pid, row))
            return None if s.default is None else _as(s.type, self.value(s.default, pid, row))
        if isinstance(s, IntervalStart | IntervalEnd):
            raise TypeError("interval dates are only known when a measure runs")
        raise TypeError(f"the in-memory engine cannot evaluate {type(s).__name__}")


def _as(t: type, v: Any) -> Any:
    return float(v) if t is float and v is not None else v


def _binary(op: str, a: Any, b_thunk) -> Any:
    b = b_thunk()
    if op == "and":
        if a is False or b is False:
            return False
        return None if a is None or b is None else True
    if op == "or":
        if a is True or b is True:
            return True
        return None if a is None or b is None else False
    if a is None or b is None:
        return None
    if op in _COMPARE:
        return _COMPARE[op](a, b)
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "truediv":
        return None if b == 0 else a / b
    if op == "floordiv":
        return None if b == 0 else math.floor(a / b)
    raise TypeError(f"unknown operator {op!r}")


def _unary(op: str, v: Any) -> Any:
    if op == "is_null":
        return v is None
    if v is None:
        return None
    if op == "not":
        return not v
    if op == "neg":
        return -v
    if op == "year":
        return v.year
    if op == "month":
        return v.month
    if op == "day":
        return v.day
    if op == "to_float":
        return float(v)
    raise TypeError(f"unknown operator {op!r}")


def _aggregate(fn: str, values: list) -> Any:
    present = [v for v in values if v is not None]
    if fn == "count_distinct":
        return len(set(present))
    if not present:
        return None
    if fn == "min":
        return min(present)
    if fn == "max":
        return max(present)
    if fn == "sum":
        return sum(present)
    if fn == "mean":
        return sum(present) / len(present)
    raise TypeError(f"unknown aggregate {fn!r}")
