"""The query language catches mistakes as the definition is written, saying what was wrong."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest

from carelight.sde import model
from carelight.sde.query import (
    QueryError,
    case,
    create_dataset,
    create_measures,
    days,
    months,
    nodes,
    tables,
    when,
    years,
)

p = tables.patients
e = tables.clinical_events
m = tables.medications


def test_tables_are_generated_from_the_research_data_model():
    for table in model.TABLES:
        frame = getattr(tables, table.name)
        for column in table.columns:
            series = getattr(frame, column.name)
            assert series.type is nodes.TYPES[column.type]
            assert series.is_patient_level is (table.kind == "patient")
    assert sorted(tables.__all__) == sorted(t.name for t in model.TABLES)


def test_an_unknown_column_names_the_real_ones():
    with pytest.raises(
        AttributeError, match=r"clinical_events has no column 'code'.*snomedct_code"
    ):
        _ = e.code


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: p.date_of_birth > p.sex, "cannot compare a date with a str"),
        (lambda: p.date_of_birth == "yesterday", "cannot use 'yesterday' as a date"),
        (lambda: p.sex + 1, "arithmetic needs numbers"),
        (lambda: p.date_of_birth + 1, "use years"),
        (lambda: e.date.is_on_or_after(3), "cannot compare a date with a int"),
        (lambda: p.sex.is_on_or_after("2020-01-01"), "comparing dates needs a date series"),
        (lambda: (p.sex == "f") & p.sex, "& and | combine true/false series"),
        (lambda: ~p.sex, "not needs a bool"),
        (lambda: e.where(e.date), "where needs a true/false series"),
        (lambda: e.where(m.date > "2020-01-01"), "different frame"),
        (lambda: e.date > m.date, "two different frames"),
        (lambda: p.sex.minimum_for_patient(), "already one value per patient"),
        (lambda: e.snomedct_code.sum_for_patient(), "sum needs numbers"),
        (lambda: e.date.is_in(["x"]), "'x' is not a date"),
        (lambda: e.snomedct_code.is_in("73211009"), "not the string"),
        (lambda: case(when(p.sex == "f").then(1), when(p.sex == "m").then("x")), "share a type"),
        (lambda: p.sex + years(1), "can only be added to a date"),
        (lambda: years(1.5), "whole number"),
        (lambda: e.sort_by(), "at least one column"),
        (lambda: p.sex == None, "use is_null"),  # noqa: E711  (the mistake under test)
        (lambda: p.date_of_birth - p.sex, "a date minus something needs a date"),
    ],
)
def test_type_errors_are_caught_when_written(build, message):
    with pytest.raises(QueryError, match=message):
        build()


def test_a_series_cannot_be_used_as_a_python_truth_value():
    with pytest.raises(QueryError, match=re.escape("use & | ~ instead of and/or/not")):
        _ = (p.sex == "f") and (p.sex == "m")


def test_first_for_patient_needs_sort_by():
    with pytest.raises(AttributeError):
        e.first_for_patient()  # only a sorted frame has it


def test_dataset_columns_must_be_patient_level():
    dataset = create_dataset()
    with pytest.raises(
        QueryError, match=r"column 'when' must have one value per patient.*event-level"
    ):
        dataset.when = e.date
    with pytest.raises(QueryError, match="a series, not a frame"):
        dataset.events = e
    with pytest.raises(QueryError, match="reserved"):
        dataset.patient_id = p.sex
    dataset.sex = p.sex
    with pytest.raises(QueryError, match="already defined"):
        dataset.sex = p.sex
    with pytest.raises(QueryError, match="define the population first"):
        dataset.to_query()
    with pytest.raises(QueryError, match="population must have one value per patient"):
        dataset.define_population(e.exists_for_patient() & (e.date > "2020-01-01"))
    with pytest.raises(QueryError, match="true/false"):
        dataset.define_population(p.sex)
    dataset.define_population(p.exists_for_patient())
    with pytest.raises(QueryError, match="already defined"):
        dataset.define_population(p.exists_for_patient())
    assert dataset.to_query().column_names == ("patient_id", "sex")


def test_the_query_model_is_immutable_and_compares_by_value():
    a = e.where(e.snomedct_code.is_in(["1"])).count_for_patient()._node
    b = e.where(e.snomedct_code.is_in(["1"])).count_for_patient()._node
    assert a == b and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.source = None  # type: ignore[misc]


def test_durations_and_intervals():
    assert months(3).starting_on("2024-01-31") == (
        (datetime.date(2024, 1, 31), datetime.date(2024, 2, 28)),
        (datetime.date(2024, 2, 29), datetime.date(2024, 3, 30)),
        (datetime.date(2024, 3, 31), datetime.date(2024, 4, 29)),
    )
    assert years(2).ending_on("2023-12-31") == (
        (datetime.date(2022, 1, 1), datetime.date(2022, 12, 31)),
        (datetime.date(2023, 1, 1), datetime.date(2023, 12, 31)),
    )
    assert days(2).starting_on(datetime.date(2024, 2, 28))[-1] == (
        datetime.date(2024, 2, 29),
        datetime.date(2024, 2, 29),
    )
    with pytest.raises(QueryError, match="positive"):
        months(0).starting_on("2024-01-01")


def test_measures_are_checked():
    measures = create_measures()
    with pytest.raises(QueryError, match="needs intervals"):
        measures.define_measure(
            "x", numerator=p.exists_for_patient(), denominator=p.exists_for_patient()
        )
    with pytest.raises(QueryError, match="numerator must be true/false or an integer"):
        measures.define_measure(
            "x",
            numerator=p.date_of_birth,
            denominator=p.exists_for_patient(),
            intervals=months(1).starting_on("2024-01-01"),
        )
    with pytest.raises(QueryError, match="group 'sex' must have one value per patient"):
        measures.define_measure(
            "x",
            numerator=p.exists_for_patient(),
            denominator=p.exists_for_patient(),
            group_by={"sex": e.snomedct_code},
            intervals=months(1).starting_on("2024-01-01"),
        )
    with pytest.raises(QueryError, match="ends before it starts"):
        measures.define_measure(
            "x",
            numerator=p.exists_for_patient(),
            denominator=p.exists_for_patient(),
            intervals=[("2024-02-01", "2024-01-01")],
        )
    with pytest.raises(QueryError, match="no measures"):
        measures.to_query()


def test_the_public_names_are_exported_and_documented():
    import carelight.sde.query as query

    docs = (Path(__file__).parents[2] / "docs" / "sde-query.md").read_text(encoding="utf-8")
    for name in query.__all__:
        assert hasattr(query, name), name
        assert name in docs, f"{name} is exported but not in docs/sde-query.md"
    for method in [
        "where",
        "except_where",
        "sort_by",
        "first_for_patient",
        "last_for_patient",
        "exists_for_patient",
        "count_for_patient",
        "minimum_for_patient",
        "maximum_for_patient",
        "sum_for_patient",
        "mean_for_patient",
        "count_distinct_for_patient",
        "is_in",
        "is_not_in",
        "is_null",
        "when_null_then",
        "is_between",
        "is_on_or_between",
        "is_on_or_after",
        "age_on",
        "to_category",
        "define_population",
        "define_measure",
        "starting_on",
        "ending_on",
    ]:
        assert method in docs, f"{method} is not in docs/sde-query.md"
