"""Spec: measures: numerator over denominator, per interval and group."""

from __future__ import annotations

import datetime

from carelight.sde.query import INTERVAL, create_measures, months, tables
from sde_query_support import SPARK_WARNINGS

pytestmark = SPARK_WARNINGS

D = datetime.date
p = tables.patients
e = tables.clinical_events


def test_monthly_measure_grouped_by_sex(engine):
    data = {
        "patients": [
            {"patient_id": "a", "sex": "female"},
            {"patient_id": "b", "sex": "female"},
            {"patient_id": "c", "sex": "male"},
            {"patient_id": "d", "sex": None},
        ],
        "clinical_events": [
            {"patient_id": "a", "date": D(2024, 1, 31), "snomedct_code": "x"},
            {"patient_id": "a", "date": D(2024, 2, 1), "snomedct_code": "x"},
            {"patient_id": "b", "date": D(2024, 2, 29), "snomedct_code": "x"},
            {"patient_id": "c", "date": D(2024, 1, 15), "snomedct_code": "y"},
        ],
    }
    in_interval = e.where(e.date.is_on_or_between(INTERVAL.start_date, INTERVAL.end_date))
    measures = create_measures()
    measures.define_measure(
        "had_x",
        numerator=in_interval.where(in_interval.snomedct_code == "x").exists_for_patient(),
        denominator=p.exists_for_patient(),
        group_by={"sex": p.sex},
        intervals=months(2).starting_on("2024-01-01"),
    )
    rows = engine.measures(data, measures)
    jan, feb = (D(2024, 1, 1), D(2024, 1, 31)), (D(2024, 2, 1), D(2024, 2, 29))
    expected = [
        (jan, None, 0, 1),
        (jan, "female", 1, 2),
        (jan, "male", 0, 1),
        (feb, None, 0, 1),
        (feb, "female", 2, 2),
        (feb, "male", 0, 1),
    ]
    assert [
        ((r["interval_start"], r["interval_end"]), r["sex"], r["numerator"], r["denominator"])
        for r in rows
    ] == expected
    assert {r["measure"] for r in rows} == {"had_x"}
    assert [r["ratio"] for r in rows] == [0.0, 0.5, 0.0, 0.0, 1.0, 0.0]


def test_integer_numerator_and_denominator_depending_on_the_interval(engine):
    data = {
        "patients": [{"patient_id": x} for x in "ab"],
        "clinical_events": [
            {"patient_id": "a", "date": D(2024, 1, 5)},
            {"patient_id": "a", "date": D(2024, 1, 6)},
            {"patient_id": "b", "date": D(2024, 2, 5)},
        ],
    }
    in_interval = e.where(e.date.is_on_or_between(INTERVAL.start_date, INTERVAL.end_date))
    measures = create_measures()
    measures.define_defaults(intervals=months(3).starting_on("2024-01-01"))
    measures.define_measure(
        "events_per_active_patient",
        numerator=in_interval.count_for_patient(),
        denominator=in_interval.exists_for_patient(),
    )
    rows = engine.measures(data, measures)
    assert [(r["interval_start"], r["numerator"], r["denominator"], r["ratio"]) for r in rows] == [
        (D(2024, 1, 1), 2, 1, 2.0),
        (D(2024, 2, 1), 1, 1, 1.0),
    ]
