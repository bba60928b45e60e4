"""Date arithmetic with the query model's rules, for the in-memory engine and the language.

Adding months or years clamps to the month's last day (31 January + 1 month is the end of
February), as DuckDB's and Spark's month arithmetic do. Differences count completed periods.
"""

from __future__ import annotations

import calendar
import datetime


def add_months(d: datetime.date, months: int) -> datetime.date:
    index = d.year * 12 + (d.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return datetime.date(year, month + 1, min(d.day, last))


def add(d: datetime.date, amount: int, unit: str) -> datetime.date:
    if unit == "days":
        return d + datetime.timedelta(days=amount)
    if unit == "months":
        return add_months(d, amount)
    if unit == "years":
        return add_months(d, 12 * amount)
    raise ValueError(f"unit must be days, months or years, not {unit!r}")


def difference(start: datetime.date, end: datetime.date, unit: str) -> int:
    """Whole ``unit``s from ``start`` to ``end``, rounded down (negative if end is earlier)."""
    if unit == "days":
        return (end - start).days
    if unit == "months":
        return (end.year - start.year) * 12 + end.month - start.month - (end.day < start.day)
    if unit == "years":
        return end.year - start.year - ((end.month, end.day) < (start.month, start.day))
    raise ValueError(f"unit must be days, months or years, not {unit!r}")


def parse(value: object, what: str = "date") -> datetime.date:
    """A ``datetime.date`` from a date or an ISO ``YYYY-MM-DD`` string, or a clear error."""
    if isinstance(value, datetime.datetime):
        raise TypeError(f"{what} must be a date, not a datetime: {value!r}")
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{what} {value!r} is not a date in the form YYYY-MM-DD") from None
    raise TypeError(f"{what} must be a date or 'YYYY-MM-DD', not {type(value).__name__}")
