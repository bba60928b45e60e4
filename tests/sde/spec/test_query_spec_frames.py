"""Spec: frames (where, except_where, sort_by, first/last, exists, count, aggregates).

Each test is table data → a query → the expected per-patient result, on every engine.
"""

from __future__ import annotations

import datetime

import pytest

from carelight.sde.query import tables
from sde_query_support import SPARK_WARNINGS

pytestmark = SPARK_WARNINGS

D = datetime.date
p = tables.patients
e = tables.clinical_events
m = tables.medications

PATIENTS = [{"patient_id": pid} for pid in ("a", "b", "c")]


def test_patient_columns_and_missing_values(engine):
    data = {
        "patients": [
            {"patient_id": "a", "sex": "female", "date_of_birth": D(1980, 5, 1)},
            {"patient_id": "b", "sex": None, "date_of_birth": None},
        ]
    }
    assert engine.run(data, sex=p.sex, dob=p.date_of_birth) == {
        "a": {"sex": "female", "dob": D(1980, 5, 1)},
        "b": {"sex": None, "dob": None},
    }


def test_population_filters_patients(engine):
    data = {
        "patients": [
            {"patient_id": "a", "sex": "female"},
            {"patient_id": "b", "sex": "male"},
            {"patient_id": "c", "sex": None},
        ]
    }
    assert engine.run(data, population=p.sex == "female", sex=p.sex) == {"a": "female"}


def test_population_from_an_event_table_includes_people_without_a_patients_row(engine):
    data = {
        "patients": [{"patient_id": "a", "sex": "female"}],
        "clinical_events": [{"patient_id": "b", "snomedct_code": "1"}],
    }
    result = engine.run(data, population=e.exists_for_patient(), sex=p.sex)
    assert result == {"b": None}


def test_population_over_two_tables(engine):
    data = {
        "patients": [{"patient_id": "a"}],
        "clinical_events": [{"patient_id": "b", "snomedct_code": "1"}],
    }
    population = p.exists_for_patient() | e.exists_for_patient()
    assert engine.run(data, population=population, n=e.count_for_patient()) == {"a": 0, "b": 1}


def test_where_keeps_true_rows_and_drops_null_conditions(engine):
    data = {
        "patients": PATIENTS,
        "clinical_events": [
            {"patient_id": "a", "snomedct_code": "1", "numeric_value": 5.0},
            {"patient_id": "a", "snomedct_code": "1", "numeric_value": None},
            {"patient_id": "a", "snomedct_code": "2", "numeric_value": 7.0},
            {"patient_id": "b", "snomedct_code": "2", "numeric_value": 1.0},
        ],
    }
    big = e.where(e.numeric_value > 2.0)
    assert engine.run(data, n=big.count_for_patient()) == {"a": 2, "b": 0, "c": 0}


def test_except_where_keeps_false_and_null_conditions(engine):
    data = {
        "patients": PATIENTS,
        "clinical_events": [
            {"patient_id": "a", "numeric_value": 5.0},
            {"patient_id": "a", "numeric_value": None},
            {"patient_id": "a", "numeric_value": 1.0},
            {"patient_id": "b", "numeric_value": 9.0},
        ],
    }
    kept = e.except_where(e.numeric_value > 2.0)
    assert engine.run(data, n=kept.count_for_patient()) == {"a": 2, "b": 0, "c": 0}


def test_chained_where(engine):
    data = {
        "patients": PATIENTS,
        "clinical_events": [
            {"patient_id": "a", "snomedct_code": "1", "date": D(2020, 1, 1)},
            {"patient_id": "a", "snomedct_code": "1", "date": D(2022, 1, 1)},
            {"patient_id": "a", "snomedct_code": "2", "date": D(2022, 1, 1)},
        ],
    }
    frame = e.where(e.snomedct_code == "1").where(e.date.is_on_or_after("2021-01-01"))
    assert engine.run(data, n=frame.count_for_patient()) == {"a": 1, "b": 0, "c": 0}


def test_exists_and_count_on_empty_tables(engine):
    data = {"patients": PATIENTS}
    assert engine.run(data, has=e.exists_for_patient(), n=e.count_for_patient()) == {
        pid: {"has": False, "n": 0} for pid in "abc"
    }


def test_first_and_last_for_patient(engine):
    data = {
        "patients": PATIENTS,
        "clinical_events": [
            {"patient_id": "a", "date": D(2021, 3, 1), "snomedct_code": "2"},
            {"patient_id": "a", "date": D(2020, 1, 1), "snomedct_code": "1"},
            {"patient_id": "a", "date": D(2022, 1, 1), "snomedct_code": "3"},
            {"patient_id": "b", "date": D(2019, 1, 1), "snomedct_code": "9"},
        ],
    }
    ordered = e.sort_by(e.date)
    result = engine.run(
        data,
        first=ordered.first_for_patient().snomedct_code,
        last=ordered.last_for_patient().snomedct_code,
    )
    assert result == {
        "a": {"first": "1", "last": "3"},
        "b": {"first": "9", "last": "9"},
        "c": {"first": None, "last": None},
    }


def test_sort_puts_nulls_first(engine):
    data = {
        "patients": PATIENTS[:1],
        "clinical_events": [
            {"patient_id": "a", "date": D(2020, 1, 1), "snomedct_code": "dated"},
            {"patient_id": "a", "date": None, "snomedct_code": "undated"},
        ],
    }
    ordered = e.sort_by(e.date)
    result = engine.run(
        data,
        first=ordered.first_for_patient().snomedct_code,
        last=ordered.last_for_patient().snomedct_code,
    )
    assert result == {"a": {"first": "undated", "last": "dated"}}


def test_ties_on_the_sort_key_are_broken_by_the_other_columns(engine):
    # Same date: the tie-break is the table's other columns in order (code, then value).
    data = {
        "patients": PATIENTS[:1],
        "clinical_events": [
            {"patient_id": "a", "date": D(2020, 1, 1), "snomedct_code": "b", "numeric_value": 1.0},
            {"patient_id": "a", "date": D(2020, 1, 1), "snomedct_code": "a", "numeric_value": 2.0},
            {"patient_id": "a", "date": D(2020, 1, 1), "snomedct_code": "a", "numeric_value": None},
        ],
    }
    ordered = e.sort_by(e.date)
    first, last = ordered.first_for_patient(), ordered.last_for_patient()
    result = engine.run(
        data,
        first_code=first.snomedct_code,
        first_value=first.numeric_value,
        last_code=last.snomedct_code,
        last_value=last.numeric_value,
    )
    assert result == {
        "a": {"first_code": "a", "first_value": None, "last_code": "b", "last_value": 1.0}
    }


def test_sort_by_two_keys(engine):
    data = {
        "patients": PATIENTS[:1],
        "clinical_events": [
            {"patient_id": "a", "date": D(2020, 1, 1), "numeric_value": 3.0, "snomedct_code": "x"},
            {"patient_id": "a", "date": D(2020, 1, 1), "numeric_value": 1.0, "snomedct_code": "y"},
            {"patient_id": "a", "date": D(2019, 1, 1), "numeric_value": 9.0, "snomedct_code": "z"},
        ],
    }
    ordered = e.sort_by(e.date, e.numeric_value)
    result = engine.run(
        data,
        first=ordered.first_for_patient().snomedct_code,
        last=ordered.last_for_patient().snomedct_code,
    )
    assert result == {"a": {"first": "z", "last": "x"}}


def test_where_after_sort_then_pick(engine):
    data = {
        "patients": PATIENTS[:1],
        "clinical_events": [
            {"patient_id": "a", "date": D(2019, 1, 1), "snomedct_code": "1"},
            {"patient_id": "a", "date": D(2020, 1, 1), "snomedct_code": "2"},
            {"patient_id": "a", "date": D(2021, 1, 1), "snomedct_code": "1"},
        ],
    }
    picked = e.sort_by(e.date).where(e.snomedct_code == "2").first_for_patient()
    assert engine.run(data, d=picked.date) == {"a": D(2020, 1, 1)}


def test_aggregates_ignore_nulls(engine):
    data = {
        "patients": PATIENTS,
        "clinical_events": [
            {"patient_id": "a", "numeric_value": 2.0, "date": D(2020, 1, 1)},
            {"patient_id": "a", "numeric_value": None, "date": None},
            {"patient_id": "a", "numeric_value": 4.0, "date": D(2021, 6, 30)},
            {"patient_id": "a", "numeric_value": 4.0, "date": D(2021, 6, 30)},
            {"patient_id": "b", "numeric_value": None, "date": None},
        ],
    }
    v = e.numeric_value
    result = engine.run(
        data,
        lo=v.minimum_for_patient(),
        hi=v.maximum_for_patient(),
        total=v.sum_for_patient(),
        mean=v.mean_for_patient(),
        distinct=v.count_distinct_for_patient(),
        earliest=e.date.minimum_for_patient(),
        latest=e.date.maximum_for_patient(),
    )
    assert result["a"] == {
        "lo": 2.0,
        "hi": 4.0,
        "total": 10.0,
        "mean": pytest.approx(10 / 3),
        "distinct": 2,
        "earliest": D(2020, 1, 1),
        "latest": D(2021, 6, 30),
    }
    nothing = {
        "lo": None,
        "hi": None,
        "total": None,
        "mean": None,
        "earliest": None,
        "latest": None,
    }
    assert result["b"] == {**nothing, "distinct": 0}
    assert result["c"] == {**nothing, "distinct": 0}


def test_minimum_and_maximum_of_strings(engine):
    data = {
        "patients": PATIENTS[:1],
        "medications": [
            {"patient_id": "a", "dmd_code": "39113611000001102"},
            {"patient_id": "a", "dmd_code": "10000000"},
        ],
    }
    result = engine.run(
        data, lo=m.dmd_code.minimum_for_patient(), hi=m.dmd_code.maximum_for_patient()
    )
    assert result == {"a": {"lo": "10000000", "hi": "39113611000001102"}}


def test_integer_sum_stays_an_integer(engine):
    data = {
        "patients": PATIENTS[:1],
        "clinical_events": [{"patient_id": "a", "date": D(2020, 3, d)} for d in (1, 2, 3)],
    }
    result = engine.run(data, total=e.date.day.sum_for_patient())
    assert result == {"a": 6} and isinstance(result["a"], int)


def test_event_filter_using_a_patient_level_series(engine):
    data = {
        "patients": PATIENTS[:2],
        "clinical_events": [
            {"patient_id": "a", "snomedct_code": "dx", "date": D(2020, 1, 1)},
            {"patient_id": "a", "snomedct_code": "x", "date": D(2019, 1, 1)},
            {"patient_id": "a", "snomedct_code": "x", "date": D(2021, 1, 1)},
            {"patient_id": "a", "snomedct_code": "x", "date": D(2022, 1, 1)},
            {"patient_id": "b", "snomedct_code": "x", "date": D(2022, 1, 1)},
        ],
    }
    diagnosis = e.where(e.snomedct_code == "dx").sort_by(e.date).first_for_patient().date
    after = e.where(e.snomedct_code == "x").where(e.date > diagnosis)
    assert engine.run(data, n=after.count_for_patient()) == {"a": 2, "b": 0}


def test_picked_row_exists(engine):
    data = {"patients": PATIENTS[:2], "clinical_events": [{"patient_id": "a", "date": None}]}
    picked = e.sort_by(e.date).first_for_patient()
    assert engine.run(data, has=picked.exists_for_patient()) == {"a": True, "b": False}


def test_two_event_tables_in_one_dataset(engine):
    data = {
        "patients": PATIENTS,
        "clinical_events": [{"patient_id": "a", "snomedct_code": "1"}],
        "medications": [
            {"patient_id": "b", "dmd_code": "m", "date": D(2020, 1, 1)},
            {"patient_id": "b", "dmd_code": "m", "date": D(2020, 2, 1)},
        ],
    }
    result = engine.run(data, events=e.count_for_patient(), meds=m.count_for_patient())
    assert result == {
        "a": {"events": 1, "meds": 0},
        "b": {"events": 0, "meds": 2},
        "c": {"events": 0, "meds": 0},
    }


def test_an_empty_population(engine):
    data = {"patients": PATIENTS}
    assert engine.run(data, population=p.sex == "nobody", sex=p.sex) == {}


def test_boolean_columns(engine):
    a = tables.social_care_assessments
    data = {
        "patients": PATIENTS,
        "social_care_assessments": [
            {"patient_id": "a", "eligible": True, "date": D(2020, 1, 1)},
            {"patient_id": "b", "eligible": False, "date": D(2020, 1, 1)},
            {"patient_id": "c", "eligible": None, "date": D(2020, 1, 1)},
        ],
    }
    latest = a.sort_by(a.date).last_for_patient()
    result = engine.run(data, eligible=latest.eligible, n=a.where(a.eligible).count_for_patient())
    assert result == {
        "a": {"eligible": True, "n": 1},
        "b": {"eligible": False, "n": 0},
        "c": {"eligible": None, "n": 0},
    }


def test_summaries_of_frames_filtered_by_other_summaries(engine):
    # Two levels: events after the first one, then those after the first of those and at or
    # above their mean value.
    data = {
        "patients": PATIENTS[:2],
        "clinical_events": [
            {"patient_id": pid, "date": D(2020, 1, d), "numeric_value": float(d % 3)}
            for pid in "ab"
            for d in range(1, 10)
        ],
    }
    after_first = e.where(e.date > e.date.minimum_for_patient())
    second = after_first.date.minimum_for_patient()
    later = e.where(e.date > second).where(
        e.numeric_value >= after_first.numeric_value.mean_for_patient()
    )
    result = engine.run(
        data,
        second=second,
        n=later.count_for_patient(),
        last=later.sort_by(e.numeric_value).last_for_patient().date,
    )
    expected = {"second": D(2020, 1, 2), "n": 4, "last": D(2020, 1, 8)}
    assert result == {"a": expected, "b": expected}


def test_codes_to_categories(engine):
    from carelight.sde.query import Codelist

    codes = Codelist(
        frozenset({"44054006", "46635009"}),
        "snomedct",
        {"44054006": "type 2", "46635009": "type 1"},
    )
    data = {
        "patients": PATIENTS,
        "clinical_events": [
            {"patient_id": "a", "snomedct_code": "44054006", "date": D(2020, 1, 1)},
            {"patient_id": "b", "snomedct_code": "46635009", "date": D(2020, 1, 1)},
            {"patient_id": "c", "snomedct_code": "38341003", "date": D(2020, 1, 1)},
        ],
    }
    code = e.sort_by(e.date).first_for_patient().snomedct_code
    assert engine.run(data, kind=code.to_category(codes)) == {
        "a": "type 2",
        "b": "type 1",
        "c": None,
    }
