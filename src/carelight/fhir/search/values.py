"""Parsing of search values: prefixes, dates with precision, numbers, tokens, quantities.

Each parser raises :class:`carelight.fhir.errors.FhirError` (400) with a message saying what
was wrong with the value and what form is expected.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from carelight.fhir.errors import bad_request
from carelight.fhir.index_entries import DATE_MAX, DATE_MIN

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")

_DATE_RE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2})(?::(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>\.\d+)?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def split_prefix(value: str) -> tuple[str, str]:
    """``"ge2020"`` → ``("ge", "2020")``; no prefix means ``eq``."""
    if len(value) > 2 and value[:2] in PREFIXES and not value[2].isalpha():
        return value[:2], value[2:]
    return "eq", value


def split_escaped(value: str, sep: str) -> list[str]:
    """Split on ``sep`` except where escaped with a backslash (R4 search escaping)."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in ",|$\\":
            current.append(value[i + 1])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


@dataclass(frozen=True)
class DateRange:
    low: float
    high: float


def parse_date_range(text: str, param: str = "date") -> DateRange:
    """A FHIR date/dateTime/instant search value → the closed range it denotes (epoch seconds)."""
    m = _DATE_RE.match(text)
    if not m:
        raise bad_request(
            f"Search parameter '{param}': '{text}' is not a valid date. "
            "Use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][Z|+hh:mm]."
        )
    g = m.groupdict()
    try:
        year = int(g["year"])
        if g["month"] is None:
            start = datetime(year, 1, 1, tzinfo=UTC)
            end = datetime(year + 1, 1, 1, tzinfo=UTC) if year < 9999 else None
        elif g["day"] is None:
            month = int(g["month"])
            start = datetime(year, month, 1, tzinfo=UTC)
            days = calendar.monthrange(year, month)[1]
            end = start + timedelta(days=days)
        elif g["hour"] is None:
            start = datetime(year, int(g["month"]), int(g["day"]), tzinfo=UTC)
            end = start + timedelta(days=1)
        else:
            if g["minute"] is None:
                raise ValueError("a time needs hours and minutes")
            tz = UTC
            if g["tz"] and g["tz"] != "Z":
                sign = 1 if g["tz"][0] == "+" else -1
                hh, mm = g["tz"][1:].split(":")
                from datetime import timezone

                tz = timezone(sign * timedelta(hours=int(hh), minutes=int(mm)))
            second = int(g["second"] or 0)
            micro = int((g["fraction"] or ".0")[1:7].ljust(6, "0"))
            start = datetime(
                year,
                int(g["month"]),
                int(g["day"]),
                int(g["hour"]),
                int(g["minute"]),
                second,
                micro,
                tzinfo=tz,
            )
            if g["second"] is None:
                end = start + timedelta(minutes=1)
            elif g["fraction"] is None:
                end = start + timedelta(seconds=1)
            else:
                end = start + timedelta(milliseconds=1)
    except ValueError as exc:
        raise bad_request(
            f"Search parameter '{param}': '{text}' is not a valid date ({exc})."
        ) from exc
    low = start.timestamp()
    high = end.timestamp() - 0.001 if end is not None else DATE_MAX
    return DateRange(max(low, DATE_MIN), min(high, DATE_MAX))


@dataclass(frozen=True)
class NumberValue:
    value: float
    low: float  # implicit precision range, e.g. 100 → [99.5, 100.5)
    high: float


def parse_number(text: str, param: str) -> NumberValue:
    try:
        d = Decimal(text)
    except InvalidOperation as exc:
        raise bad_request(f"Search parameter '{param}': '{text}' is not a number.") from exc
    if not d.is_finite():
        raise bad_request(f"Search parameter '{param}': '{text}' is not a finite number.")
    exponent = d.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5).scaleb(exponent - 1)
    return NumberValue(float(d), float(d - half), float(d + half))


@dataclass(frozen=True)
class TokenValue:
    system: str | None  # None: any system
    code: str | None  # None: any code in the system
    no_system: bool = False  # "|code": the element must have no system


def parse_token(text: str) -> TokenValue:
    parts = split_escaped(text, "|")
    if len(parts) == 1:
        return TokenValue(None, parts[0] or None)
    if len(parts) > 2:
        # identifier values may not contain '|', but :of-type is not supported; keep the rest whole
        parts = [parts[0], "|".join(parts[1:])]
    system, code = parts
    if system == "":
        return TokenValue(None, code or None, no_system=True)
    return TokenValue(system, code or None)


@dataclass(frozen=True)
class QuantityValue:
    prefix: str
    number: NumberValue
    system: str | None
    code: str | None


def parse_quantity(text: str, param: str) -> QuantityValue:
    prefix, rest = split_prefix(text)
    parts = split_escaped(rest, "|")
    if len(parts) not in (1, 3):
        raise bad_request(
            f"Search parameter '{param}': '{text}' is not a quantity; use "
            "[prefix]number or [prefix]number|system|code."
        )
    number = parse_number(parts[0], param)
    system = parts[1] or None if len(parts) == 3 else None
    code = parts[2] or None if len(parts) == 3 else None
    return QuantityValue(prefix, number, system, code)


def bounded_int(key: str, value: str, low: int, high: int | None = None) -> int:
    """A whole-number parameter such as ``_count``: at least ``low``, capped at ``high``."""
    try:
        n = int(value)
    except ValueError as exc:
        raise bad_request(f"{key} must be a whole number, not '{value}'.") from exc
    if n < low:
        raise bad_request(f"{key} must be at least {low}.")
    return min(n, high) if high is not None else n
