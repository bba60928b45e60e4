"""Spec: dates: parts, adding days/months/years (month ends, leap years), differences, age."""

from __future__ import annotations

import datetime

from carelight.sde.query import days, months, tables, years
from sde_query_support import SPARK_WARNINGS

pytestmark = SPARK_WARNINGS

D = datetime.date
p = tables.patients
e = tables.clinical_events


def _by_date(engine, dates, **variables):
    data = {
        "patients": [{"patient_id": f"p{i}"} for i in range(len(dates))],
        "clinical_events": [{"patient_id": f"p{i}", "date": d} for i, d in enumerate(dates)],
    }
    date = e.sort_by(e.date).first_for_patient().date
    result = engine.run(data, **{name: fn(date) for name, fn in variables.items()})
    return [result[f"p{i}"] for i in range(len(dates))]


def test_date_parts(engine):
    result = _by_date(
        engine,
        [D(2024, 2, 29), None],
        y=lambda d: d.year,
        m=lambda d: d.month,
        dd=lambda d: d.day,
    )
    assert result == [{"y": 2024, "m": 2, "dd": 29}, {"y": None, "m": None, "dd": None}]


def test_adding_clamps_to_month_end_and_handles_leap_years(engine):
    result = _by_date(
        engine,
        [D(2024, 2, 29), D(2023, 1, 31), D(2023, 12, 31), None],
        plus_year=lambda d: d + years(1),
        minus_year=lambda d: d - years(4),
        plus_month=lambda d: d + months(1),
        minus_months=lambda d: d - months(13),
        plus_days=lambda d: d + days(1),
        minus_days=lambda d: d - days(366),
    )
    assert result == [
        {
            "plus_year": D(2025, 2, 28),
            "minus_year": D(2020, 2, 29),
            "plus_month": D(2024, 3, 29),
            "minus_months": D(2023, 1, 29),
            "plus_days": D(2024, 3, 1),
            "minus_days": D(2023, 2, 28),
        },
        {
            "plus_year": D(2024, 1, 31),
            "minus_year": D(2019, 1, 31),
            "plus_month": D(2023, 2, 28),
            "minus_months": D(2021, 12, 31),
            "plus_days": D(2023, 2, 1),
            "minus_days": D(2022, 1, 30),
        },
        {
            "plus_year": D(2024, 12, 31),
            "minus_year": D(2019, 12, 31),
            "plus_month": D(2024, 1, 31),
            "minus_months": D(2022, 11, 30),
            "plus_days": D(2024, 1, 1),
            "minus_days": D(2022, 12, 30),
        },
        dict.fromkeys(
            ["plus_year", "minus_year", "plus_month", "minus_months", "plus_days", "minus_days"]
        ),
    ]


def test_adding_an_integer_series(engine):
    data = {
        "patients": [{"patient_id": "a"}],
        "clinical_events": [{"patient_id": "a", "date": D(2020, 1, 31)}] * 2,
    }
    n = e.count_for_patient()
    first = e.sort_by(e.date).first_for_patient().date
    result = engine.run(data, later=first + months(n), sooner=first - days(n))
    assert result == {"a": {"later": D(2020, 3, 31), "sooner": D(2020, 1, 29)}}


def test_differences_count_completed_periods(engine):
    result = _by_date(
        engine,
        [D(2020, 2, 29), D(2021, 3, 1), D(2024, 3, 1), D(2023, 3, 15)],
        y=lambda d: ("2024-02-28" - d).years,
        mo=lambda d: ("2024-02-28" - d).months,
        dd=lambda d: ("2024-02-28" - d).days,
    )
    assert result == [
        {"y": 3, "mo": 47, "dd": 1460},
        {"y": 2, "mo": 35, "dd": 1094},
        {"y": -1, "mo": -1, "dd": -2},
        {"y": 0, "mo": 11, "dd": 350},
    ]


def test_age_on(engine):
    data = {
        "patients": [
            {"patient_id": "a", "date_of_birth": D(2000, 3, 1)},
            {"patient_id": "b", "date_of_birth": D(2000, 2, 1)},
            {"patient_id": "c", "date_of_birth": None},
        ]
    }
    result = engine.run(data, age=p.age_on("2024-02-29"), later=p.age_on(D(2024, 3, 1)))
    assert result == {
        "a": {"age": 23, "later": 24},
        "b": {"age": 24, "later": 24},
        "c": {"age": None, "later": None},
    }


def test_date_comparisons_and_ranges(engine):
    start, end = "2024-01-01", "2024-12-31"
    result = _by_date(
        engine,
        [D(2023, 12, 31), D(2024, 1, 1), D(2024, 12, 31), D(2025, 1, 1), None],
        within=lambda d: d.is_on_or_between(start, end),
        after=lambda d: d.is_after(start),
        on_or_after=lambda d: d.is_on_or_after(start),
        before=lambda d: d.is_before(end),
        on_or_before=lambda d: d.is_on_or_before(end),
    )
    assert [tuple(r.values()) for r in result] == [
        (False, False, False, True, True),
        (True, False, True, True, True),
        (True, True, True, False, True),
        (False, True, True, False, False),
        (None, None, None, None, None),
    ]


def test_last_year_relative_to_a_date(engine):
    index = D(2024, 3, 1)
    data = {
        "patients": [{"patient_id": "a"}],
        "clinical_events": [
            {"patient_id": "a", "date": D(2023, 2, 28)},
            {"patient_id": "a", "date": D(2023, 3, 1)},
            {"patient_id": "a", "date": D(2024, 2, 29)},
            {"patient_id": "a", "date": D(2024, 3, 2)},
        ],
    }
    window = e.where(e.date.is_on_or_between(index - years(1), index))
    assert engine.run(data, n=window.count_for_patient()) == {"a": 2}
