"""Hypothesis: random dataset definitions over random data give the same rows on every engine.

Data is a few patients with clinical events drawn from small value sets (month ends, 29
February, NULLs, repeated values, so ties and NULL rules are exercised); queries are random
trees of the language's operations. The in-memory engine is the reference; DuckDB is compared
on every example and Spark on fewer (each Spark query costs about a second).

Under ``CI=true`` the profile is derandomised with a fixed number of examples, so CI runs the
same cases every time; ``CARELIGHT_AGREEMENT_EXAMPLES=500`` searches deeper on demand.
"""

from __future__ import annotations

import datetime
import math
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from carelight.sde.query import (
    INTERVAL,
    case,
    create_dataset,
    create_measures,
    days,
    months,
    tables,
    when,
    years,
)
from carelight.sde.query.engines.duckdb import DuckDBEngine
from carelight.sde.query.engines.inmemory import InMemoryEngine
from carelight.sde.query.engines.spark import SparkEngine
from carelight.sde.query.store import write_store
from sde_query_support import SPARK_WARNINGS, spark_session  # noqa: F401  (fixture)

pytestmark = SPARK_WARNINGS

IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
EXAMPLES = int(os.environ.get("CARELIGHT_AGREEMENT_EXAMPLES", "60"))

settings.register_profile(
    "sde-query-ci",
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "sde-query-dev",
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PROFILE = settings.get_profile("sde-query-ci" if IN_CI else "sde-query-dev")

D = datetime.date
p = tables.patients
e = tables.clinical_events

DATES = [D(2020, 1, 31), D(2020, 2, 29), D(2020, 3, 1), D(2021, 2, 28), D(2021, 12, 31), None]
BIRTHS = [D(1950, 2, 1), D(1980, 12, 1), D(2000, 2, 1), None]
CODES = ["1", "2", "3", None]
VALUES = [-1.5, 0.0, 2.0, 3.25, None]
SEXES = ["female", "male", None]


@st.composite
def table_data(draw):
    ids = [f"p{i}" for i in range(draw(st.integers(1, 6)))]
    patients = [
        {
            "patient_id": pid,
            "sex": draw(st.sampled_from(SEXES)),
            "date_of_birth": draw(st.sampled_from(BIRTHS)),
        }
        for pid in ids
        if draw(st.booleans()) or pid == "p0"
    ]
    events = [
        {
            "patient_id": draw(st.sampled_from([*ids, "other"])),
            "date": draw(st.sampled_from(DATES)),
            "snomedct_code": draw(st.sampled_from(CODES)),
            "numeric_value": draw(st.sampled_from(VALUES)),
        }
        for _ in range(draw(st.integers(0, 12)))
    ]
    return {"patients": patients, "clinical_events": events}


# --- Event-level (row-wise) conditions and frames -------------------------------------


@st.composite
def row_condition(draw, depth=2, summaries=True):
    kinds = ["code", "value", "date", "null", "patient"] + ["logic"] * (depth > 0)
    kind = draw(st.sampled_from(kinds + ["summary"] * summaries))
    if kind == "summary":
        # A condition on another per-patient summary of the same table (its own CTE in SQL).
        inner = draw(event_frame(summaries=False))
        summary = draw(
            st.sampled_from(
                [
                    e.date > inner.date.minimum_for_patient(),
                    e.date >= inner.sort_by(inner.numeric_value).first_for_patient().date,
                    e.numeric_value < inner.numeric_value.mean_for_patient(),
                    e.snomedct_code == inner.sort_by(inner.date).last_for_patient().snomedct_code,
                ]
            )
        )
        return summary
    if kind == "code":
        return e.snomedct_code.is_in(draw(st.lists(st.sampled_from(["1", "2", "3"]), max_size=2)))
    if kind == "value":
        op = draw(st.sampled_from(["lt", "ge", "eq", "ne"]))
        return getattr(e.numeric_value, f"__{op}__")(draw(st.sampled_from([0, 2.0, 2.5])))
    if kind == "date":
        return e.date.is_on_or_after(draw(st.sampled_from([d for d in DATES if d])))
    if kind == "null":
        return draw(st.sampled_from([e.date, e.numeric_value, e.snomedct_code])).is_null()
    if kind == "patient":
        return e.date > p.date_of_birth + years(draw(st.integers(0, 60)))
    a = draw(row_condition(depth - 1, summaries))
    b = draw(row_condition(depth - 1, summaries))
    return draw(st.sampled_from([a & b, a | b, ~a]))


@st.composite
def event_frame(draw, summaries=True):
    frame = e
    for _ in range(draw(st.integers(0, 2))):
        cond = draw(row_condition(summaries=summaries))
        frame = frame.where(cond) if draw(st.booleans()) else frame.except_where(cond)
    return frame


@st.composite
def picked(draw):
    frame = draw(event_frame())
    keys = draw(
        st.lists(
            st.sampled_from(["date", "numeric_value", "snomedct_code"]),
            min_size=1,
            max_size=2,
            unique=True,
        )
    )
    ordered = frame.sort_by(*(getattr(frame, k) for k in keys))
    return ordered.first_for_patient() if draw(st.booleans()) else ordered.last_for_patient()


# --- Patient-level series by type -----------------------------------------------------


@st.composite
def bool_series(draw, depth=2):
    kinds = ["exists", "compare_int", "compare_date", "is_in", "null"] + ["logic"] * (depth > 0)
    kind = draw(st.sampled_from(kinds))
    if kind == "exists":
        return draw(event_frame()).exists_for_patient()
    if kind == "compare_int":
        op = draw(st.sampled_from(["__lt__", "__ge__", "__eq__"]))
        return getattr(draw(int_series(depth - 1)), op)(draw(st.integers(-1, 3)))
    if kind == "compare_date":
        a, b = draw(date_series(depth - 1)), draw(date_series(depth - 1))
        return draw(st.sampled_from([a < b, a == b, a.is_on_or_before("2020-12-31")]))
    if kind == "is_in":
        return draw(picked()).snomedct_code.is_in(["1", "3"])
    if kind == "null":
        return draw(float_series(depth - 1)).is_null()
    a, b = draw(bool_series(depth - 1)), draw(bool_series(depth - 1))
    return draw(st.sampled_from([a & b, a | b, ~a]))


@st.composite
def int_series(draw, depth=2):
    kinds = ["count", "distinct", "part", "age", "diff"] + ["arith", "case"] * (depth > 0)
    kind = draw(st.sampled_from(kinds))
    if kind == "count":
        return draw(event_frame()).count_for_patient()
    if kind == "distinct":
        return draw(event_frame()).snomedct_code.count_distinct_for_patient()
    if kind == "part":
        return getattr(draw(date_series(0)), draw(st.sampled_from(["year", "month", "day"])))
    if kind == "age":
        return p.age_on(draw(st.sampled_from(["2020-02-29", "2021-03-01"])))
    if kind == "diff":
        a, b = draw(date_series(0)), draw(date_series(0))
        return getattr(a - b, draw(st.sampled_from(["days", "months", "years"])))
    if kind == "case":
        return case(
            when(draw(bool_series(0))).then(draw(int_series(0))),
            otherwise=draw(st.sampled_from([None, 7])),
        )
    a, b = draw(int_series(depth - 1)), draw(int_series(depth - 1))
    return draw(st.sampled_from([a + b, a - b, a * b, a // b]))


@st.composite
def float_series(draw, depth=2):
    kinds = ["aggregate", "picked"] + ["arith"] * (depth > 0)
    kind = draw(st.sampled_from(kinds))
    if kind == "aggregate":
        values = draw(event_frame()).numeric_value
        fn = draw(st.sampled_from(["minimum", "maximum", "sum", "mean"]))
        return getattr(values, f"{fn}_for_patient")()
    if kind == "picked":
        return draw(picked()).numeric_value
    a = draw(float_series(depth - 1))
    b = draw(st.one_of(float_series(depth - 1), int_series(0)))
    return draw(st.sampled_from([a + b, a - b, a * b, a / b, -a]))


@st.composite
def date_series(draw, depth=1):
    kinds = ["picked", "min", "max", "birth"] + ["add"] * (depth > 0)
    kind = draw(st.sampled_from(kinds))
    if kind == "picked":
        return draw(picked()).date
    if kind == "min":
        return draw(event_frame()).date.minimum_for_patient()
    if kind == "max":
        return draw(event_frame()).date.maximum_for_patient()
    if kind == "birth":
        return p.date_of_birth
    unit = draw(st.sampled_from([years, months, days]))
    amount = draw(st.integers(-13, 13))
    return draw(date_series(0)) + unit(amount)


@st.composite
def datasets(draw):
    population = draw(
        st.sampled_from(
            [
                p.exists_for_patient(),
                e.exists_for_patient(),
                p.exists_for_patient() | e.exists_for_patient(),
            ]
        )
    )
    if draw(st.booleans()):
        population = population & draw(bool_series(1)).when_null_then(True)
    dataset = create_dataset()
    dataset.define_population(population)
    makers = [
        bool_series(),
        int_series(),
        float_series(),
        date_series(),
        st.builds(lambda f: f.snomedct_code, picked()),
    ]
    for i in range(draw(st.integers(1, 4))):
        setattr(dataset, f"v{i}", draw(st.sampled_from(makers).flatmap(lambda s: s)))
    return dataset.to_query()


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b and type(a) is type(b)


def _assert_agree(reference, other, engine_name):
    assert [r["patient_id"] for r in other] == [r["patient_id"] for r in reference], engine_name
    for want, got in zip(reference, other, strict=True):
        for key in want:
            assert _same(want[key], got[key]), (
                engine_name,
                want["patient_id"],
                key,
                want[key],
                got[key],
            )


def _check(data, query, spark=None):
    note(f"query: {query}")
    reference = InMemoryEngine(data).get_rows(query)
    with tempfile.TemporaryDirectory() as folder:
        store = write_store(Path(folder) / "store", data)
        duck = DuckDBEngine(store)
        try:
            _assert_agree(reference, duck.get_rows(query), "duckdb")
        finally:
            duck.close()
        if spark is not None:
            engine = SparkEngine(store, session=spark)
            try:
                _assert_agree(reference, engine.get_rows(query), "spark")
            finally:
                engine.close()


@settings(PROFILE)
@given(data=table_data(), query=datasets())
def test_duckdb_agrees_with_the_in_memory_engine(data, query):
    _check(data, query)


@settings(PROFILE, max_examples=max(5, EXAMPLES // 6))
@given(data=table_data(), query=datasets())
def test_spark_agrees_with_the_in_memory_engine(spark_session, data, query):  # noqa: F811
    _check(data, query, spark=spark_session)


@st.composite
def measure_sets(draw):
    in_interval = e.where(e.date.is_on_or_between(INTERVAL.start_date, INTERVAL.end_date))
    numerators = [
        in_interval.exists_for_patient(),
        in_interval.count_for_patient(),
        in_interval.where(e.snomedct_code.is_in(["1", "2"])).exists_for_patient(),
    ]
    denominators = [
        p.exists_for_patient(),
        e.where(e.date.is_on_or_before(INTERVAL.end_date)).exists_for_patient(),
        p.exists_for_patient() & (p.sex != "male"),
    ]
    groups = [{}, {"sex": p.sex}, {"sex": p.sex, "old": p.date_of_birth.is_before("1990-01-01")}]
    numerator = draw(st.sampled_from(numerators))
    if numerator.type is bool and draw(st.booleans()):
        numerator = numerator | draw(bool_series(0)).when_null_then(False)
    measures = create_measures()
    measures.define_measure(
        "m",
        numerator=numerator,
        denominator=draw(st.sampled_from(denominators)),
        group_by=draw(st.sampled_from(groups)),
        intervals=draw(st.sampled_from([months(3), years(2)])).starting_on("2020-01-01"),
    )
    return measures.to_query()


@settings(PROFILE, max_examples=max(5, EXAMPLES // 3))
@given(data=table_data(), query=measure_sets())
def test_duckdb_measures_agree_with_the_in_memory_engine(data, query):
    reference = InMemoryEngine(data).get_measure_rows(query)
    with tempfile.TemporaryDirectory() as folder:
        duck = DuckDBEngine(write_store(Path(folder) / "store", data))
        try:
            assert duck.get_measure_rows(query) == reference
        finally:
            duck.close()
