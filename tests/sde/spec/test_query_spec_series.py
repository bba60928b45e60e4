"""Spec: series operators (comparisons, logic, arithmetic, is_in, case) and their NULL rules.

Most tests put several variables in one query: each Spark query costs about a second.
"""

from __future__ import annotations

import pytest

from carelight.sde.query import case, codelist, tables, when
from sde_query_support import SPARK_WARNINGS

pytestmark = SPARK_WARNINGS

p = tables.patients
e = tables.clinical_events
c = tables.care_packages


def _values(engine, rows, **variables):
    """Run variables over care_packages rows, one row per patient named by its position."""
    data = {
        "patients": [{"patient_id": f"p{i}"} for i in range(len(rows))],
        "care_packages": [{"patient_id": f"p{i}", **row} for i, row in enumerate(rows)],
    }
    first = c.sort_by(c.start_date).first_for_patient()
    wanted = {name: fn(first) for name, fn in variables.items()}
    result = engine.run(data, **wanted)
    return [result[f"p{i}"] for i in range(len(rows))]


def test_comparisons_with_nulls(engine):
    rows = [{"hours_per_week": h} for h in (1.0, 2.0, 3.0, None)]
    result = _values(
        engine,
        rows,
        eq=lambda f: f.hours_per_week == 2,
        ne=lambda f: f.hours_per_week != 2,
        lt=lambda f: f.hours_per_week < 2,
        le=lambda f: f.hours_per_week <= 2,
        gt=lambda f: f.hours_per_week > 2.0,
        ge=lambda f: f.hours_per_week >= 2.0,
        between=lambda f: f.hours_per_week.is_between(2, 3),
        strictly=lambda f: f.hours_per_week.is_between_but_not_on(1, 3),
    )
    keys = ("eq", "ne", "lt", "le", "gt", "ge", "between", "strictly")
    assert [tuple(r[k] for k in keys) for r in result] == [
        (False, True, True, True, False, False, False, False),
        (True, False, False, True, False, True, True, True),
        (False, True, False, False, True, True, True, False),
        (None,) * 8,
    ]


def test_three_valued_logic(engine):
    # care_package rows carry a true/false/NULL pair through two comparisons.
    pairs = [(a, b) for a in (True, False, None) for b in (True, False, None)]
    rows = [
        {
            "package_type": {True: "x", False: "y", None: None}[a],
            "hours_per_week": {True: 1.0, False: 0.0, None: None}[b],
        }
        for a, b in pairs
    ]

    def left(f):
        return f.package_type == "x"

    def right(f):
        return f.hours_per_week == 1

    result = _values(
        engine,
        rows,
        both=lambda f: left(f) & right(f),
        either=lambda f: left(f) | right(f),
        neither=lambda f: ~left(f),
        null=lambda f: left(f).is_null(),
        not_null=lambda f: f.package_type.is_not_null(),
    )

    def sql_and(a, b):
        return False if False in (a, b) else (None if None in (a, b) else True)

    def sql_or(a, b):
        return True if True in (a, b) else (None if None in (a, b) else False)

    assert result == [
        {
            "both": sql_and(a, b),
            "either": sql_or(a, b),
            "neither": None if a is None else not a,
            "null": a is None,
            "not_null": a is not None,
        }
        for a, b in pairs
    ]


def test_arithmetic(engine):
    rows = [{"hours_per_week": h} for h in (7.0, -7.0, 0.0, None)]

    def hours(f):
        return f.hours_per_week

    def whole(f):
        return f.start_date.day  # an int series (all rows here: NULL start → NULL)

    result = _values(
        engine,
        rows,
        add=lambda f: hours(f) + 1,
        sub=lambda f: 10 - hours(f),
        mul=lambda f: hours(f) * 2,
        div=lambda f: hours(f) / 2,
        by_zero=lambda f: hours(f) / 0,
        floordiv=lambda f: hours(f) // 2,
        floordiv_zero=lambda f: hours(f) // 0,
        neg=lambda f: -hours(f),
        reciprocal=lambda f: 1 / hours(f),
        day_plus=lambda f: whole(f) + 1,
    )
    assert result == [
        {
            "add": 8.0,
            "sub": 3.0,
            "mul": 14.0,
            "div": 3.5,
            "by_zero": None,
            "floordiv": 3,
            "floordiv_zero": None,
            "neg": -7.0,
            "reciprocal": pytest.approx(1 / 7),
            "day_plus": None,
        },
        {
            "add": -6.0,
            "sub": 17.0,
            "mul": -14.0,
            "div": -3.5,
            "by_zero": None,
            "floordiv": -4,
            "floordiv_zero": None,
            "neg": 7.0,
            "reciprocal": pytest.approx(-1 / 7),
            "day_plus": None,
        },
        {
            "add": 1.0,
            "sub": 10.0,
            "mul": 0.0,
            "div": 0.0,
            "by_zero": None,
            "floordiv": 0,
            "floordiv_zero": None,
            "neg": 0.0,
            "reciprocal": None,
            "day_plus": None,
        },
        dict.fromkeys(
            ["add", "sub", "mul", "div", "by_zero", "floordiv", "floordiv_zero", "neg"], None
        )
        | {"reciprocal": None, "day_plus": None},
    ]


def test_integer_arithmetic_stays_integer(engine):
    data = {"patients": [{"patient_id": "a"}], "clinical_events": [{"patient_id": "a"}] * 7}
    n = e.count_for_patient()
    result = engine.run(data, plus=n + 1, times=n * 3, half=n // 2, ratio=n / 2)
    assert result == {"a": {"plus": 8, "times": 21, "half": 3, "ratio": 3.5}}
    assert all(isinstance(result["a"][k], int) for k in ("plus", "times", "half"))


def test_is_in_codelists_and_lists(engine):
    codes = codelist(["73211009", "44054006"], "snomedct")
    data = {
        "patients": [{"patient_id": x} for x in "abcd"],
        "clinical_events": [
            {"patient_id": "a", "snomedct_code": "44054006"},
            {"patient_id": "b", "snomedct_code": "38341003"},
            {"patient_id": "c", "snomedct_code": None},
        ],
    }
    first = e.sort_by(e.snomedct_code).first_for_patient().snomedct_code
    result = engine.run(
        data,
        listed=first.is_in(codes),
        not_listed=first.is_not_in(codes),
        in_plain_list=first.is_in(["38341003"]),
        in_nothing=first.is_in([]),
        ever=e.where(e.snomedct_code.is_in(codes)).exists_for_patient(),
    )
    assert result == {
        "a": {
            "listed": True,
            "not_listed": False,
            "in_plain_list": False,
            "in_nothing": False,
            "ever": True,
        },
        "b": {
            "listed": False,
            "not_listed": True,
            "in_plain_list": True,
            "in_nothing": False,
            "ever": False,
        },
        "c": {
            "listed": None,
            "not_listed": None,
            "in_plain_list": None,
            "in_nothing": None,
            "ever": False,
        },
        "d": {
            "listed": None,
            "not_listed": None,
            "in_plain_list": None,
            "in_nothing": None,
            "ever": False,
        },
    }


def test_case_when_and_when_null_then(engine):
    rows = [{"hours_per_week": h} for h in (1.0, 15.0, 40.0, None)]
    result = _values(
        engine,
        rows,
        band=lambda f: case(
            when(f.hours_per_week < 10).then("low"),
            when(f.hours_per_week < 20).then("medium"),
            otherwise="high",
        ),
        no_default=lambda f: case(when(f.hours_per_week < 10).then(1)),
        filled=lambda f: f.hours_per_week.when_null_then(0.0),
        as_float=lambda f: case(when(f.hours_per_week > 20).then(1), otherwise=0.5),
    )
    assert result == [
        {"band": "low", "no_default": 1, "filled": 1.0, "as_float": 0.5},
        {"band": "medium", "no_default": None, "filled": 15.0, "as_float": 0.5},
        {"band": "high", "no_default": None, "filled": 40.0, "as_float": 1.0},
        {"band": "high", "no_default": None, "filled": 0.0, "as_float": 0.5},
    ]


def test_string_comparisons(engine):
    data = {
        "patients": [
            {"patient_id": "a", "area_code": "E01000001"},
            {"patient_id": "b", "area_code": "W01000001"},
            {"patient_id": "c", "area_code": None},
        ]
    }
    result = engine.run(data, english=p.area_code < "F", equal=p.area_code == "W01000001")
    assert result == {
        "a": {"english": True, "equal": False},
        "b": {"english": False, "equal": True},
        "c": {"english": None, "equal": None},
    }


def test_a_constant_variable(engine):
    data = {"patients": [{"patient_id": "a"}]}
    assert engine.run(data, one=1, label="x", flag=True) == {
        "a": {"one": 1, "label": "x", "flag": True}
    }
