"""Measures: numerator over denominator, per interval and group (``create_measures``).

    measures = create_measures()
    measures.define_measure(
        "tested", numerator=…, denominator=…, group_by={"sex": patients.sex},
        intervals=months(12).starting_on("2023-01-01"),
    )

``INTERVAL.start_date`` and ``INTERVAL.end_date`` stand for each interval's first and last day.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from carelight.sde.query import dates, nodes
from carelight.sde.query.language import QueryError, Series, _series, _wrap_errors


class _Interval:
    """``INTERVAL.start_date`` and ``INTERVAL.end_date``: the interval a measure is counted in."""

    @property
    def start_date(self) -> Series:
        return _series(nodes.IntervalStart())

    @property
    def end_date(self) -> Series:
        return _series(nodes.IntervalEnd())


INTERVAL = _Interval()


class Measures:
    """Ratios counted per interval and group: ``measures.define_measure(…)``."""

    def __init__(self) -> None:
        self._measures: dict[str, nodes.Measure] = {}
        self._defaults: dict[str, Any] = {}

    def define_defaults(self, **defaults: Any) -> None:
        """Default numerator, denominator, group_by or intervals for later measures."""
        unknown = set(defaults) - {"numerator", "denominator", "group_by", "intervals"}
        if unknown:
            raise QueryError(f"unknown measure settings: {', '.join(sorted(unknown))}")
        self._defaults.update(defaults)

    @_wrap_errors
    def define_measure(
        self,
        name: str,
        numerator: Series | None = None,
        denominator: Series | None = None,
        group_by: dict[str, Series] | None = None,
        intervals: Iterable[tuple[Any, Any]] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise QueryError(f"measure name {name!r} must be a word of letters, digits and _")
        if name in self._measures:
            raise QueryError(f"measure {name!r} is already defined")
        settings = {
            "numerator": numerator,
            "denominator": denominator,
            "group_by": group_by,
            "intervals": intervals,
        }
        for key, value in settings.items():
            if value is None:
                settings[key] = self._defaults.get(key)
        for key in ("numerator", "denominator", "intervals"):
            if settings[key] is None:
                raise QueryError(f"measure {name!r} needs {key}=…")
        for key in ("numerator", "denominator"):
            if not isinstance(settings[key], Series):
                raise QueryError(f"measure {name!r}: {key} must be a series")
        groups = settings["group_by"] or {}
        for g, s in groups.items():
            if not isinstance(s, Series):
                raise QueryError(f"measure {name!r}: group {g!r} must be a series")
            if not g.isidentifier() or g in _RESERVED_MEASURE_COLUMNS:
                raise QueryError(f"measure {name!r}: {g!r} cannot be a group name")
        interval_pairs = tuple(
            (dates.parse(a, "interval start"), dates.parse(b, "interval end"))
            for a, b in settings["intervals"]
        )
        for a, b in interval_pairs:
            if b < a:
                raise QueryError(f"measure {name!r}: interval {a} to {b} ends before it starts")
        self._measures[name] = nodes.Measure(
            name,
            settings["numerator"]._node,
            settings["denominator"]._node,
            tuple((g, s._node) for g, s in groups.items()),
            interval_pairs,
        )

    def __iter__(self):
        return iter(self._measures.values())

    def __len__(self) -> int:
        return len(self._measures)

    def to_query(self) -> tuple[nodes.Measure, ...]:
        if not self._measures:
            raise QueryError("no measures defined: measures.define_measure(…)")
        return tuple(self._measures.values())


_RESERVED_MEASURE_COLUMNS = {
    "measure",
    "interval_start",
    "interval_end",
    "ratio",
    "numerator",
    "denominator",
}


def create_measures() -> Measures:
    return Measures()
