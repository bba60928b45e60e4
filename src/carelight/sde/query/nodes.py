"""The query model: a typed, immutable tree that every engine runs and dummy data reads.

The researcher's language (``language.py``) builds these nodes; the engines
(``engines/``) turn them into results. Nodes are frozen dataclasses, so two equal
definitions are equal trees and a node can be a dictionary key (the SQL engines share one
CTE per distinct node). Every node checks its own types when it is made, so a mistake is
reported when the definition is written, not when it runs; the language adds friendlier
wording on top.

Two kinds of node:

*Frames* are sets of rows: a whole table (``SelectTable``, ``SelectPatientTable``), a table's
rows kept by a condition (``Filter``), rows in an order (``Sort``), or one row per patient
picked from a sorted frame (``PickOneRowPerPatient``).

*Series* are values: one per patient (*patient-level*) or one per row of an event frame
(*event-level*). ``series.frame`` is ``None`` for a patient-level series and the event frame
whose rows it ranges over for an event-level one. Event-level series from frames of one table
combine when one frame is derived from the other (``events.where(events.code == x)`` filters
by a column of ``events``); the result ranges over the more derived frame.

Semantics, the same on every engine (the in-memory engine is the reference):

- NULL propagates through arithmetic and comparisons; ``&``, ``|`` and ``~`` follow SQL's
  three-valued logic; ``where`` keeps rows whose condition is true (not NULL).
- Aggregates ignore NULLs; over no rows ``count`` is 0, ``exists`` false, the rest NULL.
- Sorting puts NULLs first; ties on the sort keys are broken by every column of the table in
  order (NULLs first), so ``first_for_patient`` and ``last_for_patient`` (the last row of the
  same order) pick the same row on every engine.
- Division by zero is NULL; ``/`` gives a float, ``//`` an integer rounded down.
- Adding months or years to a date clamps to the month's last day (31 Jan + 1 month is
  28 or 29 Feb). Differences in whole years or months count completed periods, rounding down.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, fields
from typing import Literal

from carelight.sde import model

TYPES: dict[str, type] = {
    "str": str,
    "int": int,
    "float": float,
    "date": datetime.date,
    "bool": bool,
}
TYPE_NAMES: dict[type, str] = {v: k for k, v in TYPES.items()}
NUMERIC = (int, float)


class QueryModelError(TypeError):
    """A definition that cannot mean anything: wrong types, or mixing incompatible frames."""


def type_name(t: type) -> str:
    return {datetime.date: "date"}.get(t, t.__name__)


class Node:
    """Base of every node."""


# --- Frames ---------------------------------------------------------------------------


class Frame(Node):
    table: str

    @property
    def is_patient_level(self) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class SelectTable(Frame):
    """Every row of an event-level table."""

    name: str

    def __post_init__(self) -> None:
        if model.table(self.name).kind != "event":
            raise QueryModelError(f"{self.name} is patient-level: use SelectPatientTable")

    @property
    def table(self) -> str:
        return self.name

    @property
    def is_patient_level(self) -> bool:
        return False


@dataclass(frozen=True)
class SelectPatientTable(Frame):
    """A patient-level table (at most one row per patient)."""

    name: str

    def __post_init__(self) -> None:
        if model.table(self.name).kind != "patient":
            raise QueryModelError(f"{self.name} is event-level: use SelectTable")

    @property
    def table(self) -> str:
        return self.name

    @property
    def is_patient_level(self) -> bool:
        return True


@dataclass(frozen=True)
class Filter(Frame):
    """The rows of ``source`` for which ``condition`` is true."""

    source: Frame
    condition: Series

    def __post_init__(self) -> None:
        _need_event_frame(self.source, "where")
        _need_type(self.condition, bool, "a where condition")
        _need_row_wise(self.condition, self.source, "a where condition")

    @property
    def table(self) -> str:
        return self.source.table

    @property
    def is_patient_level(self) -> bool:
        return False


@dataclass(frozen=True)
class Sort(Frame):
    """The rows of ``source`` ordered by ``key``, then by the keys of any Sort below it.

    ``sort_by(a, b)`` is ``Sort(Sort(frame, b), a)``: the outermost key sorts first.
    """

    source: Frame
    key: Series

    def __post_init__(self) -> None:
        _need_event_frame(self.source, "sort_by")
        _need_row_wise(self.key, self.source, "a sort key")

    @property
    def table(self) -> str:
        return self.source.table

    @property
    def is_patient_level(self) -> bool:
        return False


@dataclass(frozen=True)
class PickOneRowPerPatient(Frame):
    """The first or last row per patient of a sorted frame: a patient-level frame."""

    source: Frame
    position: Literal["first", "last"]

    def __post_init__(self) -> None:
        if not sort_keys(self.source):
            raise QueryModelError(
                "first_for_patient/last_for_patient need a sorted frame: call sort_by(…) first"
            )
        if self.position not in ("first", "last"):
            raise QueryModelError(f"position must be 'first' or 'last', not {self.position!r}")

    @property
    def table(self) -> str:
        return self.source.table

    @property
    def is_patient_level(self) -> bool:
        return True


def sort_keys(frame: Frame) -> tuple[Series, ...]:
    """The sort keys of a frame, most significant first (Filters between Sorts are skipped)."""
    keys: list[Series] = []
    while not isinstance(frame, SelectTable | SelectPatientTable):
        if isinstance(frame, Sort):
            keys.append(frame.key)
        frame = frame.source  # type: ignore[attr-defined]
    return tuple(keys)


def filter_conditions(frame: Frame) -> tuple[Series, ...]:
    """Every Filter condition applied to a frame, innermost first."""
    conditions: list[Series] = []
    while not isinstance(frame, SelectTable | SelectPatientTable):
        if isinstance(frame, Filter):
            conditions.append(frame.condition)
        frame = frame.source  # type: ignore[attr-defined]
    return tuple(reversed(conditions))


def root(frame: Frame) -> Frame:
    while not isinstance(frame, SelectTable | SelectPatientTable):
        frame = frame.source  # type: ignore[attr-defined]
    return frame


def derives_from(frame: Frame, ancestor: Frame) -> bool:
    """Whether ``frame`` is ``ancestor`` or is made from it by filters and sorts."""
    while True:
        if frame == ancestor:
            return True
        if isinstance(frame, SelectTable | SelectPatientTable | PickOneRowPerPatient):
            return False
        frame = frame.source  # type: ignore[attr-defined]


# --- Series ---------------------------------------------------------------------------


class Series(Node):
    """A value per patient (``frame is None``) or per row of ``frame``."""

    @property
    def type(self) -> type:
        raise NotImplementedError

    @property
    def frame(self) -> Frame | None:
        raise NotImplementedError


@dataclass(frozen=True)
class Value(Series):
    """A constant."""

    value: object
    value_type: type

    def __post_init__(self) -> None:
        if self.value is not None and not _is_instance(self.value, self.value_type):
            raise QueryModelError(f"{self.value!r} is not a {type_name(self.value_type)}")
        if isinstance(self.value, float) and not math.isfinite(self.value):
            raise QueryModelError(f"{self.value!r} is not a usable number: use a finite value")
        if self.value_type is int and self.value is not None and not -(2**63) <= self.value < 2**63:  # type: ignore[operator]
            raise QueryModelError(f"{self.value} does not fit in a 64-bit integer")

    @property
    def type(self) -> type:
        return self.value_type

    @property
    def frame(self) -> Frame | None:
        return None


@dataclass(frozen=True)
class SelectColumn(Series):
    """A column of a frame: event-level from an event frame, else patient-level."""

    source: Frame
    name: str

    def __post_init__(self) -> None:
        try:
            model.table(self.source.table).column(self.name)
        except KeyError as e:
            raise QueryModelError(str(e.args[0])) from None

    @property
    def type(self) -> type:
        return TYPES[model.table(self.source.table).column(self.name).type]

    @property
    def frame(self) -> Frame | None:
        return None if self.source.is_patient_level else self.source


@dataclass(frozen=True)
class IntervalStart(Series):
    """The first day of the measure's interval, filled in when the measure runs."""

    @property
    def type(self) -> type:
        return datetime.date

    @property
    def frame(self) -> Frame | None:
        return None


@dataclass(frozen=True)
class IntervalEnd(Series):
    """The last day of the measure's interval, filled in when the measure runs."""

    @property
    def type(self) -> type:
        return datetime.date

    @property
    def frame(self) -> Frame | None:
        return None


COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge")
LOGICAL = ("and", "or")
ARITHMETIC = ("add", "sub", "mul", "truediv", "floordiv")
BINARY_OPS = COMPARISONS + LOGICAL + ARITHMETIC
UNARY_OPS = ("not", "neg", "is_null", "year", "month", "day", "to_float")


@dataclass(frozen=True)
class BinaryOp(Series):
    """``op`` is one of ``BINARY_OPS``: comparisons, ``and``/``or``, arithmetic."""

    op: str
    lhs: Series
    rhs: Series

    def __post_init__(self) -> None:
        lt, rt = self.lhs.type, self.rhs.type
        if self.op in COMPARISONS:
            if not (lt is rt or (lt in NUMERIC and rt in NUMERIC)):
                raise QueryModelError(f"cannot compare a {type_name(lt)} with a {type_name(rt)}")
            if self.op not in ("eq", "ne") and lt is bool:
                raise QueryModelError("true/false values have no order: use == or !=")
        elif self.op in LOGICAL:
            if lt is not bool or rt is not bool:
                raise QueryModelError(
                    f"& and | combine true/false series, not {type_name(lt)} and {type_name(rt)}"
                )
        elif self.op in ARITHMETIC:
            if lt not in NUMERIC or rt not in NUMERIC:
                raise QueryModelError(
                    f"arithmetic needs numbers, not {type_name(lt)} and {type_name(rt)}"
                    + (
                        " (use years(…), months(…) or days(…) with dates)"
                        if datetime.date in (lt, rt)
                        else ""
                    )
                )
        else:
            raise QueryModelError(f"unknown operator {self.op!r}")
        _combined_frame(self.lhs, self.rhs)

    @property
    def type(self) -> type:
        if self.op in COMPARISONS or self.op in LOGICAL:
            return bool
        if self.op == "truediv":
            return float
        if self.op == "floordiv":
            return int
        return int if (self.lhs.type is int and self.rhs.type is int) else float

    @property
    def frame(self) -> Frame | None:
        return _combined_frame(self.lhs, self.rhs)


@dataclass(frozen=True)
class UnaryOp(Series):
    """``op`` is one of ``UNARY_OPS``."""

    op: str
    arg: Series

    def __post_init__(self) -> None:
        t = self.arg.type
        need = {
            "not": (bool,),
            "neg": NUMERIC,
            "year": (datetime.date,),
            "month": (datetime.date,),
            "day": (datetime.date,),
            "to_float": NUMERIC,
            "is_null": tuple(TYPES.values()),
        }.get(self.op)
        if need is None:
            raise QueryModelError(f"unknown operator {self.op!r}")
        if t not in need:
            raise QueryModelError(
                f"{self.op} needs a {' or '.join(type_name(n) for n in need)}, not a {type_name(t)}"
            )

    @property
    def type(self) -> type:
        return {
            "not": bool,
            "is_null": bool,
            "neg": self.arg.type,
            "year": int,
            "month": int,
            "day": int,
            "to_float": float,
        }[self.op]

    @property
    def frame(self) -> Frame | None:
        return self.arg.frame


@dataclass(frozen=True)
class IsIn(Series):
    """Whether the value is one of ``values`` (NULL if the value is NULL)."""

    arg: Series
    values: frozenset

    def __post_init__(self) -> None:
        for v in self.values:
            if not _is_instance(v, self.arg.type):
                raise QueryModelError(
                    f"is_in: {v!r} is not a {type_name(self.arg.type)} like the series"
                )

    @property
    def type(self) -> type:
        return bool

    @property
    def frame(self) -> Frame | None:
        return self.arg.frame


@dataclass(frozen=True)
class DateAdd(Series):
    """``date`` plus ``amount`` days, months or years (months and years clamp to month end)."""

    date: Series
    amount: Series
    unit: Literal["days", "months", "years"]

    def __post_init__(self) -> None:
        _need_type(self.date, datetime.date, "the date in date arithmetic")
        _need_type(self.amount, int, "a number of days, months or years")
        if self.unit not in ("days", "months", "years"):
            raise QueryModelError(f"unit must be days, months or years, not {self.unit!r}")
        _combined_frame(self.date, self.amount)

    @property
    def type(self) -> type:
        return datetime.date

    @property
    def frame(self) -> Frame | None:
        return _combined_frame(self.date, self.amount)


@dataclass(frozen=True)
class DateDifference(Series):
    """Whole days, months or years from ``start`` to ``end`` (rounded down)."""

    start: Series
    end: Series
    unit: Literal["days", "months", "years"]

    def __post_init__(self) -> None:
        _need_type(self.start, datetime.date, "a date difference's start")
        _need_type(self.end, datetime.date, "a date difference's end")
        if self.unit not in ("days", "months", "years"):
            raise QueryModelError(f"unit must be days, months or years, not {self.unit!r}")
        _combined_frame(self.start, self.end)

    @property
    def type(self) -> type:
        return int

    @property
    def frame(self) -> Frame | None:
        return _combined_frame(self.start, self.end)


@dataclass(frozen=True)
class Case(Series):
    """The value of the first true condition in ``cases``, else ``default`` (may be NULL)."""

    cases: tuple[tuple[Series, Series], ...]
    default: Series | None = None

    def __post_init__(self) -> None:
        if not self.cases:
            raise QueryModelError("case needs at least one when(…).then(…)")
        values = [v for _, v in self.cases] + ([self.default] if self.default is not None else [])
        first = values[0].type
        for cond, _ in self.cases:
            _need_type(cond, bool, "a when condition")
        for v in values:
            if v.type is not first and not (v.type in NUMERIC and first in NUMERIC):
                raise QueryModelError(
                    f"case values must share a type: {type_name(first)} and {type_name(v.type)}"
                )
        parts = [c for c, _ in self.cases] + values
        frame = None
        for p in parts:
            frame = _merge_frames(frame, p.frame)

    @property
    def type(self) -> type:
        types = {v.type for _, v in self.cases} | (
            {self.default.type} if self.default is not None else set()
        )
        if len(types) > 1:
            return float
        return types.pop()

    @property
    def frame(self) -> Frame | None:
        frame = None
        for c, v in self.cases:
            frame = _merge_frames(_merge_frames(frame, c.frame), v.frame)
        return _merge_frames(frame, self.default.frame if self.default is not None else None)


AGGREGATES = ("min", "max", "sum", "mean", "count_distinct")


@dataclass(frozen=True)
class AggregateByPatient(Series):
    """A patient-level summary of an event-level series: ``fn`` is one of ``AGGREGATES``."""

    fn: str
    arg: Series

    def __post_init__(self) -> None:
        if self.arg.frame is None:
            raise QueryModelError(
                f"{self.fn} for patient needs an event-level series; this one is already "
                "one value per patient"
            )
        t = self.arg.type
        if self.fn in ("min", "max") and t is bool:
            raise QueryModelError("minimum/maximum need numbers, dates or strings, not bool")
        if self.fn in ("sum", "mean") and t not in NUMERIC:
            raise QueryModelError(f"{self.fn} needs numbers, not {type_name(t)}")
        if self.fn not in AGGREGATES:
            raise QueryModelError(f"unknown aggregate {self.fn!r}")

    @property
    def type(self) -> type:
        if self.fn == "mean":
            return float
        if self.fn == "count_distinct":
            return int
        return self.arg.type

    @property
    def frame(self) -> Frame | None:
        return None


@dataclass(frozen=True)
class Exists(Series):
    """Whether the patient has any row in an event frame."""

    source: Frame

    def __post_init__(self) -> None:
        _need_event_frame(self.source, "exists_for_patient")

    @property
    def type(self) -> type:
        return bool

    @property
    def frame(self) -> Frame | None:
        return None


@dataclass(frozen=True)
class Count(Series):
    """How many rows the patient has in an event frame (0 if none)."""

    source: Frame

    def __post_init__(self) -> None:
        _need_event_frame(self.source, "count_for_patient")

    @property
    def type(self) -> type:
        return int

    @property
    def frame(self) -> Frame | None:
        return None


# --- Dataset and measures -------------------------------------------------------------


@dataclass(frozen=True)
class Dataset(Node):
    """One row per patient for whom ``population`` is true, one column per variable.

    The patients considered are everyone with a row in a table the population mentions.
    """

    population: Series
    variables: tuple[tuple[str, Series], ...]

    def __post_init__(self) -> None:
        _need_patient_level(self.population, "the population")
        _need_type(self.population, bool, "the population")
        for name, series in self.variables:
            _need_patient_level(series, f"variable {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return ("patient_id", *(name for name, _ in self.variables))


@dataclass(frozen=True)
class Measure(Node):
    """numerator / denominator per interval and group: ``Dataset`` rows counted.

    ``denominator`` is a patient-level bool (the patients counted), ``numerator`` a
    patient-level bool (counted among the denominator) or int (summed over it). Both may
    mention ``IntervalStart()`` and ``IntervalEnd()``.
    """

    name: str
    numerator: Series
    denominator: Series
    group_by: tuple[tuple[str, Series], ...]
    intervals: tuple[tuple[datetime.date, datetime.date], ...]

    def __post_init__(self) -> None:
        _need_patient_level(self.numerator, f"measure {self.name!r}'s numerator")
        _need_patient_level(self.denominator, f"measure {self.name!r}'s denominator")
        _need_type(self.denominator, bool, f"measure {self.name!r}'s denominator")
        if self.numerator.type not in (bool, int):
            raise QueryModelError(
                f"measure {self.name!r}'s numerator must be true/false or an integer, "
                f"not {type_name(self.numerator.type)}"
            )
        for g, series in self.group_by:
            _need_patient_level(series, f"measure {self.name!r}'s group {g!r}")
        if not self.intervals:
            raise QueryModelError(f"measure {self.name!r} has no intervals")

    def dataset_for(self, start: datetime.date, end: datetime.date) -> Dataset:
        """The per-patient rows behind one interval: denominator as population."""
        values = {
            IntervalStart(): Value(start, datetime.date),
            IntervalEnd(): Value(end, datetime.date),
        }
        population = substitute(self.denominator, values)
        numerator = substitute(self.numerator, values)
        groups = tuple((g, substitute(s, values)) for g, s in self.group_by)
        return Dataset(population, (("numerator", numerator), *groups))


# --- Helpers --------------------------------------------------------------------------


def children(node: Node) -> list[Node]:
    """The nodes directly inside ``node`` (through tuples too)."""
    out: list[Node] = []

    def walk(value: object) -> None:
        if isinstance(value, Node):
            out.append(value)
        elif isinstance(value, tuple):
            for v in value:
                walk(v)

    for f in fields(node):  # type: ignore[arg-type]
        walk(getattr(node, f.name))
    return out


def all_nodes(node: Node) -> list[Node]:
    """Every node in the tree below and including ``node``, each once."""
    seen: dict[int, Node] = {}
    stack = [node]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen[id(n)] = n
        stack.extend(children(n))
    return list(seen.values())


def tables_used(node: Node) -> list[str]:
    """The names of the tables a tree reads, sorted."""
    names: list[str] = []
    for n in all_nodes(node):
        if isinstance(n, SelectTable | SelectPatientTable) and n.name not in names:
            names.append(n.name)
    return sorted(names)


def substitute(node: Node, values: dict[Node, Node]) -> Node:
    """A copy of ``node`` with each node in ``values`` replaced."""
    if node in values:
        return values[node]
    if not children(node):
        return node
    changes = {}
    for f in fields(node):  # type: ignore[arg-type]
        old = getattr(node, f.name)
        new = _substitute_value(old, values)
        if new is not old:
            changes[f.name] = new
    if not changes:
        return node
    return type(node)(**{f.name: changes.get(f.name, getattr(node, f.name)) for f in fields(node)})  # type: ignore[arg-type]


def _substitute_value(value: object, values: dict[Node, Node]) -> object:
    if isinstance(value, Node):
        return substitute(value, values)
    if isinstance(value, tuple):
        new = tuple(_substitute_value(v, values) for v in value)
        return value if all(a is b for a, b in zip(new, value, strict=True)) else new
    return value


def _is_instance(value: object, t: type) -> bool:
    if t is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if t is datetime.date:
        return isinstance(value, datetime.date) and not isinstance(value, datetime.datetime)
    return isinstance(value, t)


def _need_type(series: Series, t: type, what: str) -> None:
    if series.type is not t:
        raise QueryModelError(
            f"{what} must be a {type_name(t)} series, not {type_name(series.type)}"
        )


def _need_event_frame(frame: Frame, what: str) -> None:
    if frame.is_patient_level:
        raise QueryModelError(
            f"{what} works on event-level frames; {frame.table} here is patient-level"
        )


def _need_patient_level(series: Series, what: str) -> None:
    if series.frame is not None:
        raise QueryModelError(
            f"{what} must have one value per patient, but it is event-level (from "
            f"{series.frame.table}): aggregate it first, e.g. with first_for_patient(), "
            "exists_for_patient() or count_for_patient()"
        )


def _need_row_wise(series: Series, frame: Frame, what: str) -> None:
    if series.frame is not None and not derives_from(frame, series.frame):
        raise QueryModelError(
            f"{what} on {frame.table} uses a series from a different frame "
            f"({series.frame.table}); use columns of the frame being filtered or sorted "
            "(or of a frame it was made from), or patient-level series"
        )


def _merge_frames(a: Frame | None, b: Frame | None) -> Frame | None:
    if a is None:
        return b
    if b is None:
        return a
    if derives_from(a, b):
        return a
    if derives_from(b, a):
        return b
    raise QueryModelError(
        f"cannot combine event-level series from two different frames ({a.table} and "
        f"{b.table}): aggregate one of them per patient first"
    )


def _combined_frame(a: Series, b: Series) -> Frame | None:
    return _merge_frames(a.frame, b.frame)
