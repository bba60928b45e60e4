"""What every engine offers, and measures computed the same way on all of them.

An engine need only turn a ``Dataset`` into rows; a measure is a dataset per interval (its
denominator as the population, the numerator and groups as variables) counted here, so the
counting rules cannot differ between engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from carelight.sde.query.nodes import Dataset, Measure

Row = dict[str, Any]


class Engine:
    """Runs datasets. Subclasses implement ``get_rows``."""

    name = "base"

    def get_rows(self, dataset: Dataset) -> list[Row]:
        """One dict per patient in the population, ordered by ``patient_id``.

        Keys are ``dataset.column_names``; values are ``str``, ``int``, ``float``,
        ``datetime.date``, ``bool`` or ``None``.
        """
        raise NotImplementedError

    def get_measure_rows(self, measures: Sequence[Measure]) -> list[Row]:
        return measure_rows(self, measures)

    def close(self) -> None:
        """Release what the engine holds (connections); the default holds nothing."""


MEASURE_COLUMNS = ("measure", "interval_start", "interval_end", "ratio", "numerator", "denominator")


def measure_columns(measures: Sequence[Measure]) -> tuple[str, ...]:
    groups: list[str] = []
    for m in measures:
        for g, _ in m.group_by:
            if g not in groups:
                groups.append(g)
    return MEASURE_COLUMNS + tuple(groups)


Totals = dict[tuple, list[int]]  # group values → [numerator, denominator]


def measure_rows(engine: Engine, measures: Sequence[Measure]) -> list[Row]:
    """One row per measure, interval and group present among the denominator.

    ``numerator`` counts denominator patients whose numerator is true (or sums an integer
    numerator, NULL counting 0); ``ratio`` is numerator / denominator. This reference version
    counts the patients' rows in Python; the SQL engines count in SQL (``interval_totals``).
    """
    out: list[Row] = []
    for m in measures:
        names = [g for g, _ in m.group_by]
        per_interval = []
        for start, end in m.intervals:
            totals: Totals = {}
            for row in engine.get_rows(m.dataset_for(start, end)):
                t = totals.setdefault(tuple(row[g] for g in names), [0, 0])
                value = row["numerator"]
                t[0] += int(value) if value is not None else 0
                t[1] += 1
            per_interval.append(totals)
        out.extend(rows_from_totals(m, per_interval, measure_columns(measures)))
    return out


def rows_from_totals(
    measure: Measure, per_interval: list[Totals], columns: tuple[str, ...]
) -> list[Row]:
    """A measure's result rows from its totals per interval (in ``measure.intervals`` order)."""
    names = [g for g, _ in measure.group_by]
    out: list[Row] = []
    for (start, end), totals in zip(measure.intervals, per_interval, strict=True):
        for key in sorted(totals, key=_group_order):
            numerator, denominator = totals[key]
            row = dict.fromkeys(columns)
            row.update(
                measure=measure.name,
                interval_start=start,
                interval_end=end,
                ratio=numerator / denominator,
                numerator=numerator,
                denominator=denominator,
            )
            row.update(zip(names, key, strict=True))
            out.append(row)
    return out


def _group_order(key: tuple) -> tuple:
    return tuple((v is not None, v) for v in key)
