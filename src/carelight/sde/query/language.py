"""The language researchers write dataset definitions in: Python objects that build the query model.

    from carelight.sde.query import create_dataset, codelist_from_csv, tables, years

    diabetes = codelist_from_csv("diabetes.csv", column="code")
    events = tables.clinical_events
    dataset = create_dataset()
    dataset.define_population(tables.patients.exists_for_patient())
    dataset.age = tables.patients.age_on("2024-01-01")
    dataset.has_diabetes = events.where(events.snomedct_code.is_in(diabetes)).exists_for_patient()

This module holds series, frames, durations and ``case``; datasets are in ``dataset.py`` and
measures in ``measures.py``. Every object wraps a node of ``nodes.py`` and checks what it is
given as it is written:
comparing a date with a string, or giving a dataset an event-level series, fails on that line
with a message saying what was wrong (a ``QueryError``). Nothing runs until an engine is given
the finished ``dataset`` (``carelight.sde.query.run``).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from carelight.sde import model
from carelight.sde.query import dates, nodes
from carelight.sde.query.codelists import Codelist
from carelight.sde.query.nodes import QueryModelError


class QueryError(QueryModelError):
    """A dataset definition that cannot be right; the message says what to change."""


def _wrap_errors(fn):
    """Re-raise query-model errors as QueryError, so researchers see one kind of error."""

    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except QueryError:
            raise
        except QueryModelError as e:
            raise QueryError(str(e)) from None

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


# --- Values ---------------------------------------------------------------------------


def _node(value: Any, like: type | None = None) -> nodes.Series:
    """A series node for a Series or a Python constant (typed like ``like`` when ambiguous)."""
    if isinstance(value, Series):
        return value._node
    if isinstance(value, Duration | DateDifference):
        raise QueryError(
            "a duration or date difference is not a value: add it to a date, or take "
            ".days/.months/.years of it"
        )
    if value is None:
        if like is None:
            raise QueryError("None needs a series beside it to know its type")
        return nodes.Value(None, like)
    if isinstance(value, bool):
        return nodes.Value(value, bool)
    if isinstance(value, int):
        return nodes.Value(
            float(value) if like is float else value, float if like is float else int
        )
    if isinstance(value, float):
        return nodes.Value(value, float)
    if isinstance(value, datetime.datetime):
        raise QueryError(f"use a date, not a datetime: {value!r}")
    if isinstance(value, datetime.date):
        return nodes.Value(value, datetime.date)
    if isinstance(value, str):
        if like is datetime.date:
            try:
                return nodes.Value(dates.parse(value), datetime.date)
            except ValueError as e:
                raise QueryError(f"cannot use {value!r} as a date: {e}") from None
        return nodes.Value(value, str)
    raise QueryError(f"cannot use a {type(value).__name__} in a query: {value!r}")


def _series(node: nodes.Series) -> Series:
    return Series(node)


class Series:
    """A value per patient (patient-level) or per row of an event frame (event-level)."""

    __hash__ = None  # type: ignore[assignment]  (== builds a series, so no hashing)

    def __init__(self, node: nodes.Series):
        self._node = node

    def __repr__(self) -> str:
        level = (
            "patient-level" if self.is_patient_level else f"event-level ({self._node.frame.table})"
        )
        return f"<{nodes.type_name(self.type)} series, {level}>"

    def __bool__(self) -> bool:
        raise QueryError(
            "a series has no single truth value: use & | ~ instead of and/or/not, and "
            "case(when(…).then(…)) instead of if"
        )

    @property
    def type(self) -> type:
        return self._node.type

    @property
    def is_patient_level(self) -> bool:
        return self._node.frame is None

    # Comparisons and logic --------------------------------------------------------------

    @_wrap_errors
    def _binary(self, op: str, other: Any, swap: bool = False) -> Series:
        if other is None and op in nodes.COMPARISONS:
            raise QueryError(
                "comparing with None is never true (NULL is not a value): use is_null() or "
                "is_not_null()"
            )
        a, b = self._node, _node(other, like=self.type)
        if swap:
            a, b = b, a
        return _series(nodes.BinaryOp(op, a, b))

    def __eq__(self, other: Any) -> Series:  # type: ignore[override]
        return self._binary("eq", other)

    def __ne__(self, other: Any) -> Series:  # type: ignore[override]
        return self._binary("ne", other)

    def __lt__(self, other: Any) -> Series:
        return self._binary("lt", other)

    def __le__(self, other: Any) -> Series:
        return self._binary("le", other)

    def __gt__(self, other: Any) -> Series:
        return self._binary("gt", other)

    def __ge__(self, other: Any) -> Series:
        return self._binary("ge", other)

    def __and__(self, other: Any) -> Series:
        return self._binary("and", other)

    def __rand__(self, other: Any) -> Series:
        return self._binary("and", other, swap=True)

    def __or__(self, other: Any) -> Series:
        return self._binary("or", other)

    def __ror__(self, other: Any) -> Series:
        return self._binary("or", other, swap=True)

    @_wrap_errors
    def __invert__(self) -> Series:
        return _series(nodes.UnaryOp("not", self._node))

    @_wrap_errors
    def is_null(self) -> Series:
        return _series(nodes.UnaryOp("is_null", self._node))

    def is_not_null(self) -> Series:
        return ~self.is_null()

    @_wrap_errors
    def is_in(self, values: Codelist | Iterable[Any]) -> Series:
        """Whether the value is in a codelist or a collection of constants (NULL stays NULL)."""
        if isinstance(values, Series):
            raise QueryError("is_in takes a codelist or a list of values, not a series")
        if isinstance(values, str):
            raise QueryError(f"is_in takes a codelist or a list, not the string {values!r}")
        codes = values.codes if isinstance(values, Codelist) else values
        constants = frozenset(_node(v, like=self.type).value for v in codes)  # type: ignore[attr-defined]
        return _series(nodes.IsIn(self._node, constants))

    def is_not_in(self, values: Codelist | Iterable[Any]) -> Series:
        return ~self.is_in(values)

    @_wrap_errors
    def when_null_then(self, other: Any) -> Series:
        """This value, or ``other`` where this is NULL."""
        return _series(
            nodes.Case(((self.is_null()._node, _node(other, like=self.type)),), self._node)
        )

    def is_between(self, low: Any, high: Any) -> Series:
        """``low <= value <= high`` (both ends included, like SQL's BETWEEN)."""
        return (self >= low) & (self <= high)

    def is_between_but_not_on(self, low: Any, high: Any) -> Series:
        return (self > low) & (self < high)

    # Dates ------------------------------------------------------------------------------

    def is_on_or_after(self, other: Any) -> Series:
        return self._date_binary("ge", other)

    def is_after(self, other: Any) -> Series:
        return self._date_binary("gt", other)

    def is_on_or_before(self, other: Any) -> Series:
        return self._date_binary("le", other)

    def is_before(self, other: Any) -> Series:
        return self._date_binary("lt", other)

    def is_on_or_between(self, start: Any, end: Any) -> Series:
        return self.is_on_or_after(start) & self.is_on_or_before(end)

    def _date_binary(self, op: str, other: Any) -> Series:
        self._need_date("comparing dates")
        return self._binary(op, other)

    def _need_date(self, what: str) -> None:
        if self.type is not datetime.date:
            raise QueryError(
                f"{what} needs a date series; this one is {nodes.type_name(self.type)}"
            )

    @property
    @_wrap_errors
    def year(self) -> Series:
        return _series(nodes.UnaryOp("year", self._node))

    @property
    @_wrap_errors
    def month(self) -> Series:
        return _series(nodes.UnaryOp("month", self._node))

    @property
    @_wrap_errors
    def day(self) -> Series:
        return _series(nodes.UnaryOp("day", self._node))

    # Arithmetic -------------------------------------------------------------------------

    def __add__(self, other: Any) -> Series:
        if isinstance(other, Duration):
            return other._add_to(self, 1)
        return self._binary("add", other)

    def __radd__(self, other: Any) -> Series:
        return self._binary("add", other, swap=True)

    def __sub__(self, other: Any) -> Any:
        if isinstance(other, Duration):
            return other._add_to(self, -1)
        if self.type is datetime.date:
            return DateDifference(_node(other, like=datetime.date), self._node)
        return self._binary("sub", other)

    def __rsub__(self, other: Any) -> Any:
        if self.type is datetime.date:
            return DateDifference(self._node, _node(other, like=datetime.date))
        return self._binary("sub", other, swap=True)

    def __mul__(self, other: Any) -> Series:
        return self._binary("mul", other)

    def __rmul__(self, other: Any) -> Series:
        return self._binary("mul", other, swap=True)

    def __truediv__(self, other: Any) -> Series:
        return self._binary("truediv", other)

    def __rtruediv__(self, other: Any) -> Series:
        return self._binary("truediv", other, swap=True)

    def __floordiv__(self, other: Any) -> Series:
        return self._binary("floordiv", other)

    def __rfloordiv__(self, other: Any) -> Series:
        return self._binary("floordiv", other, swap=True)

    @_wrap_errors
    def __neg__(self) -> Series:
        return _series(nodes.UnaryOp("neg", self._node))

    @_wrap_errors
    def as_float(self) -> Series:
        return _series(nodes.UnaryOp("to_float", self._node))

    def to_category(self, codelist: Codelist) -> Series:
        """The codelist's category of each code (NULL for codes not in the codelist)."""
        if not codelist.categories:
            raise QueryError("this codelist has no categories: load it with category_column=…")
        by_category: dict[str, set[str]] = {}
        for code, category in codelist.categories.items():
            by_category.setdefault(category, set()).add(code)
        return case(
            *(
                when(self.is_in(sorted(codes))).then(cat)
                for cat, codes in sorted(by_category.items())
            )
        )

    # Aggregation ------------------------------------------------------------------------

    @_wrap_errors
    def _aggregate(self, fn: str) -> Series:
        return _series(nodes.AggregateByPatient(fn, self._node))

    def minimum_for_patient(self) -> Series:
        return self._aggregate("min")

    def maximum_for_patient(self) -> Series:
        return self._aggregate("max")

    def sum_for_patient(self) -> Series:
        return self._aggregate("sum")

    def mean_for_patient(self) -> Series:
        return self._aggregate("mean")

    def count_distinct_for_patient(self) -> Series:
        return self._aggregate("count_distinct")


class DateDifference:
    """``end - start`` for dates: ask for ``.days``, ``.months`` or ``.years`` (whole, rounded down)."""

    def __init__(self, start: nodes.Series, end: nodes.Series):
        for side in (start, end):
            if side.type is not datetime.date:
                raise QueryError(
                    "a date minus something needs a date (giving a difference) or "
                    f"years/months/days(…), not a {nodes.type_name(side.type)}"
                )
        self._start, self._end = start, end

    @_wrap_errors
    def _in(self, unit: str) -> Series:
        return _series(nodes.DateDifference(self._start, self._end, unit))  # type: ignore[arg-type]

    @property
    def days(self) -> Series:
        return self._in("days")

    @property
    def months(self) -> Series:
        return self._in("months")

    @property
    def years(self) -> Series:
        return self._in("years")


class Duration:
    """A number of days, months or years: add it to (or subtract it from) a date."""

    def __init__(self, amount: int | Series, unit: str):
        if isinstance(amount, bool) or not isinstance(amount, int | Series):
            raise QueryError(f"{unit}(…) takes a whole number, not {amount!r}")
        if isinstance(amount, Series) and amount.type is not int:
            raise QueryError(
                f"{unit}(…) takes an integer series, not {nodes.type_name(amount.type)}"
            )
        self.amount, self.unit = amount, unit

    def __repr__(self) -> str:
        return f"{self.unit}({self.amount!r})"

    @_wrap_errors
    def _add_to(self, date: Series, sign: int) -> Series:
        if date.type is not datetime.date:
            raise QueryError(
                f"{self.unit}(…) can only be added to a date, not a {nodes.type_name(date.type)}"
            )
        amount = _node(self.amount)
        if sign < 0:
            amount = (
                nodes.Value(-amount.value, int)
                if isinstance(amount, nodes.Value)
                else nodes.UnaryOp("neg", amount)
            )
        return _series(nodes.DateAdd(date._node, amount, self.unit))  # type: ignore[arg-type]

    def __radd__(self, other: Any) -> Series:
        return self._add_to(_as_date_series(other), 1)

    def __rsub__(self, other: Any) -> Series:
        return self._add_to(_as_date_series(other), -1)

    def starting_on(
        self, date: datetime.date | str
    ) -> tuple[tuple[datetime.date, datetime.date], ...]:
        """``amount`` consecutive intervals of one unit each, the first starting on ``date``."""
        return self._intervals(dates.parse(date, "starting_on"))

    def ending_on(
        self, date: datetime.date | str
    ) -> tuple[tuple[datetime.date, datetime.date], ...]:
        """``amount`` consecutive intervals of one unit each, the last ending on ``date``."""
        end = dates.parse(date, "ending_on") + datetime.timedelta(days=1)
        if not isinstance(self.amount, int):
            raise QueryError("intervals need a whole number, not a series")
        return self._intervals(dates.add(end, -self.amount, self.unit))

    def _intervals(self, start: datetime.date) -> tuple[tuple[datetime.date, datetime.date], ...]:
        if not isinstance(self.amount, int) or self.amount < 1:
            raise QueryError(f"intervals need a positive whole number of {self.unit}")
        out = []
        for i in range(self.amount):
            a = dates.add(start, i, self.unit)
            b = dates.add(start, i + 1, self.unit) - datetime.timedelta(days=1)
            out.append((a, b))
        return tuple(out)


def _as_date_series(value: Any) -> Series:
    return Series(_node(value, like=datetime.date)) if not isinstance(value, Series) else value


def years(n: int | Series) -> Duration:
    return Duration(n, "years")


def months(n: int | Series) -> Duration:
    return Duration(n, "months")


def days(n: int | Series) -> Duration:
    return Duration(n, "days")


# --- case / when ----------------------------------------------------------------------


class When:
    def __init__(self, condition: Any):
        self.condition = condition

    def then(self, value: Any) -> tuple[Any, Any]:
        return (self.condition, value)


def when(condition: Any) -> When:
    return When(condition)


@_wrap_errors
def case(*cases: tuple[Any, Any], otherwise: Any = None) -> Series:
    """The value of the first true ``when(condition).then(value)``, else ``otherwise``."""
    if not cases:
        raise QueryError("case needs at least one when(…).then(…)")
    for c in cases:
        if not (isinstance(c, tuple) and len(c) == 2):
            raise QueryError("case takes when(condition).then(value) arguments")
    like = next((v.type for _, v in cases if isinstance(v, Series)), None)
    if like is None and isinstance(otherwise, Series):
        like = otherwise.type
    if like is None:
        first = next(v for _, v in cases)
        like = _node(first).type
    pairs = tuple((_node(c, like=bool), _node(v, like=like)) for c, v in cases)
    default = None if otherwise is None else _node(otherwise, like=like)
    return _series(nodes.Case(pairs, default))


# --- Frames ---------------------------------------------------------------------------


class Frame:
    """Rows of a research table; columns are attributes (``events.date``)."""

    def __init__(self, node: nodes.Frame):
        self._node = node
        self._table = model.table(node.table)

    def __getattr__(self, name: str) -> Series:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._table.names:
            known = ", ".join(self._table.names)
            raise AttributeError(
                f"{self._table.name} has no column {name!r}; its columns are: {known}"
            )
        return _series(nodes.SelectColumn(self._node, name))

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._table.names))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._table.name}>"


class PatientFrame(Frame):
    """At most one row per patient: the patients table, or one picked row per patient."""

    def exists_for_patient(self) -> Series:
        return self.patient_id.is_not_null()

    def age_on(self, date: Any) -> Series:
        """Whole years from date of birth to ``date`` (a date, 'YYYY-MM-DD' or a date series)."""
        if "date_of_birth" not in self._table.names:
            raise QueryError(f"{self._table.name} has no date_of_birth to take an age from")
        return (_as_date_series(date) - self.date_of_birth).years


class EventFrame(Frame):
    """Any number of rows per patient."""

    @_wrap_errors
    def where(self, condition: Any) -> EventFrame:
        """The rows for which ``condition`` is true (rows where it is NULL are dropped)."""
        return type(self)(nodes.Filter(self._node, _condition(condition, "where")))

    @_wrap_errors
    def except_where(self, condition: Any) -> EventFrame:
        """The rows for which ``condition`` is false or NULL."""
        cond = _series(_condition(condition, "except_where"))
        return type(self)(nodes.Filter(self._node, (~cond | cond.is_null())._node))

    @_wrap_errors
    def sort_by(self, *keys: Series) -> SortedEventFrame:
        """Order each patient's rows by ``keys`` (earliest first; NULLs before values)."""
        if not keys:
            raise QueryError("sort_by needs at least one column")
        frame = self._node
        for key in reversed(keys):
            if not isinstance(key, Series):
                raise QueryError(f"sort_by takes series (columns), not {key!r}")
            frame = nodes.Sort(frame, key._node)
        return SortedEventFrame(frame)

    @_wrap_errors
    def exists_for_patient(self) -> Series:
        return _series(nodes.Exists(self._node))

    @_wrap_errors
    def count_for_patient(self) -> Series:
        return _series(nodes.Count(self._node))


class SortedEventFrame(EventFrame):
    """Event rows in an order: pick the first or last per patient."""

    @_wrap_errors
    def first_for_patient(self) -> PatientFrame:
        return PatientFrame(nodes.PickOneRowPerPatient(self._node, "first"))

    @_wrap_errors
    def last_for_patient(self) -> PatientFrame:
        return PatientFrame(nodes.PickOneRowPerPatient(self._node, "last"))


def _condition(condition: Any, what: str) -> nodes.Series:
    node = _node(condition, like=bool)
    if node.type is not bool:
        raise QueryError(f"{what} needs a true/false series, not {nodes.type_name(node.type)}")
    return node


def frame_for(table: model.Table) -> Frame:
    """The language's frame for a research table."""
    if table.kind == "patient":
        return PatientFrame(nodes.SelectPatientTable(table.name))
    return EventFrame(nodes.SelectTable(table.name))


_MOVED = {
    "Dataset": "dataset",
    "create_dataset": "dataset",
    "Measures": "measures",
    "create_measures": "measures",
    "INTERVAL": "measures",
}


def __getattr__(name: str):
    # Datasets and measures lived here before they had modules of their own; code that
    # imported them from here keeps working.
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"carelight.sde.query.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
