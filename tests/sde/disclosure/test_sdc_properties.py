"""Properties of disclosure control on random tables (Hypothesis).

Random two-way tables of people go through the outputs API and ``check_output`` under each
policy; then the published files alone are examined: no small count survives, counts are
rounded, totals add up, and an independent integer-programming attacker (``sdc_support``)
cannot narrow any redacted cell, also when it combines two tables of the same project.

Deterministic and quick by default (and under ``CI=true``): a fixed number of examples, derandomised.
``HYPOTHESIS_PROFILE=deep`` runs many more.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdc_support import REDACTED, Attacker, JointAttacker, microdata, read_long, read_wide

from carelight.sde.disclosure import ACRO, NHS_ENGLAND, Policy, check_output, outputs

if os.environ.get("HYPOTHESIS_PROFILE") == "deep":
    PROPERTY = settings(
        max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "300")),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
else:
    PROPERTY = settings(
        max_examples=20,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )

POLICIES = [NHS_ENGLAND, ACRO]
SEXES = ["F", "M", "U"]
AGES = ["a0", "a1", "a2", "a3"]

# mostly small counts, so that redaction and protection are exercised, with some large ones
count = st.one_of(st.integers(0, 12), st.integers(0, 12), st.integers(8, 60))


@st.composite
def tables(draw) -> dict[tuple[str, str], int]:
    rows = SEXES[: draw(st.integers(2, 3))]
    cols = AGES[: draw(st.integers(2, 4))]
    cells = {(r, c): draw(count) for r in rows for c in cols}
    for r in rows:  # every label must occur, or the outputs API has no such row
        if not any(cells[(r, c)] for c in cols):
            cells[(r, cols[0])] = 1
    for c in cols:
        if not any(cells[(r, c)] for r in rows):
            cells[(rows[0], c)] = 1
    return cells


def _labels(cells):
    rows = list(dict.fromkeys(r for r, _ in cells))
    cols = list(dict.fromkeys(c for _, c in cells))
    return rows, cols


def _assert_attacker_cannot_narrow(attacker: Attacker, cells, published, policy: Policy):
    low, high = policy.primary_range
    for key, truth in cells.items():
        if published[key] != REDACTED:
            continue
        lo, hi = attacker.interval(key)
        assert lo <= truth <= hi  # the attacker model itself is sound
        if low <= truth <= high:  # a primary cell: its whole rule range stays possible
            assert lo <= low and hi >= high, (key, truth, (lo, hi))
        else:
            assert hi > lo, (key, truth, (lo, hi))


def _check_crosstab(tmp: Path, cells, policy: Policy, name="ct.csv", released=()):
    df = microdata(cells)
    path = outputs.write(name, outputs.crosstab(df, "sex", "age"), directory=tmp / "out")
    result = check_output(path, policy, released=released, out_dir=tmp / "checked")
    return result


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
@PROPERTY
@given(cells=tables())
def test_no_small_count_survives_and_totals_add_up(tmp_path_factory, policy, cells):
    tmp = tmp_path_factory.mktemp("prop")
    result = _check_crosstab(tmp, cells, policy)
    assert result.outcome in ("pass", "pass-with-changes")
    rows, cols, published = read_wide(result.safe_path)
    interior = {k: v for k, v in published.items() if "Total" not in k}
    assert set(interior) == set(cells)
    for key, text in published.items():
        if text == REDACTED:
            continue
        value = int(text)
        if value != 0 or policy.zeros_disclosive:
            assert value >= policy.min_count, (key, value)
        if policy.rounding_base > 1:
            assert value % policy.rounding_base == 0, (key, value)
    for key, truth in cells.items():
        low, high = policy.primary_range
        if low <= truth <= high:
            assert interior[key] == REDACTED, (key, truth)
        elif interior[key] != REDACTED and policy.rounding_base <= 1:
            assert int(interior[key]) == truth
    if policy.margins == "recompute":
        # totals are the sums of the released cells, never of the data
        for r in rows[:-1]:
            row = [interior[(r, c)] for c in cols[:-1]]
            assert int(published[(r, "Total")]) == sum(int(v) for v in row if v != REDACTED)
        for c in cols[:-1]:
            col = [interior[(r, c)] for r in rows[:-1]]
            assert int(published[("Total", c)]) == sum(int(v) for v in col if v != REDACTED)
        grand = [v for v in interior.values() if v != REDACTED]
        assert int(published[("Total", "Total")]) == sum(int(v) for v in grand)
        # nothing links the cells, so nothing beyond the primary cells is suppressed
        assert all(
            (interior[k] == REDACTED) == (policy.primary_range[0] <= t <= policy.primary_range[1])
            for k, t in cells.items()
        )
    else:
        # true totals: a released total is the true total
        for r in rows[:-1]:
            if published[(r, "Total")] != REDACTED:
                assert int(published[(r, "Total")]) == sum(cells[(r, c)] for c in cols[:-1])
        if published[("Total", "Total")] != REDACTED:
            assert int(published[("Total", "Total")]) == sum(cells.values())


@PROPERTY
@given(cells=tables())
def test_no_redacted_cell_recoverable_from_true_totals(tmp_path_factory, cells):
    tmp = tmp_path_factory.mktemp("prop")
    result = _check_crosstab(tmp, cells, ACRO)
    if result.outcome == "fail":  # the checker could not protect the table: nothing released
        assert result.safe_path is None
        return
    rows, cols = _labels(cells)
    attacker = Attacker(ACRO, rows, cols)
    attacker.add_crosstab(result.safe_path, totals=True)
    _, _, published = read_wide(result.safe_path)
    _assert_attacker_cannot_narrow(attacker, cells, published, ACRO)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
@PROPERTY
@given(cells=tables())
def test_no_redacted_cell_recoverable_across_two_tables(tmp_path_factory, policy, cells):
    """The project first releases counts by sex (with the grand total), then the crosstab of
    sex by age: the crosstab's redacted cells must not be recoverable from the two together."""
    tmp = tmp_path_factory.mktemp("prop")
    df = microdata(cells)
    by_sex = outputs.write(
        "by_sex.csv", outputs.table(df, "sex", margins=True), directory=tmp / "out"
    )
    first = check_output(by_sex, policy, out_dir=tmp / "checked")
    assert first.outcome in ("pass", "pass-with-changes")
    second = _check_crosstab(tmp, cells, policy, released=[first.evidence_path])
    if second.outcome == "fail":
        assert second.safe_path is None
        return
    if second.evidence.audit["method"] != "none needed":  # there was something to protect
        assert second.evidence.audit["linked_tables"] == ["by_sex.csv"]
    rows, cols = _labels(cells)
    attacker = Attacker(policy, rows, cols)
    true_totals = policy.margins == "true"
    attacker.add_by_sex(first.safe_path, totals=true_totals)
    attacker.add_crosstab(second.safe_path, totals=true_totals)
    _, _, published = read_wide(second.safe_path)
    _assert_attacker_cannot_narrow(attacker, cells, published, policy)
    assert set(read_long(first.safe_path)) >= set(rows)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
@PROPERTY
@given(cells=tables())
def test_a_later_coarser_table_does_not_expose_an_earlier_one(tmp_path_factory, policy, cells):
    """The other order: the crosstab is released first, then counts by sex (with the grand
    total); the crosstab's redacted cells must stay protected."""
    tmp = tmp_path_factory.mktemp("prop")
    first = _check_crosstab(tmp, cells, policy)
    assert first.outcome in ("pass", "pass-with-changes")
    df = microdata(cells)
    by_sex = outputs.write(
        "by_sex.csv", outputs.table(df, "sex", margins=True), directory=tmp / "out"
    )
    second = check_output(by_sex, policy, released=[first], out_dir=tmp / "checked2")
    if second.outcome == "fail":
        assert second.safe_path is None
        return
    rows, cols = _labels(cells)
    attacker = Attacker(policy, rows, cols)
    true_totals = policy.margins == "true"
    attacker.add_crosstab(first.safe_path, totals=true_totals)
    attacker.add_by_sex(second.safe_path, totals=true_totals)
    _, _, published = read_wide(first.safe_path)
    _assert_attacker_cannot_narrow(attacker, cells, published, policy)


@st.composite
def three_way(draw) -> dict[tuple[str, str, str], int]:
    return {
        (s, a, r): draw(st.one_of(st.integers(0, 6), st.integers(5, 40)))
        for s in ("F", "M")
        for a in ("a0", "a1", "a2")
        for r in ("N", "S")
    }


@PROPERTY
@given(cells=three_way())
def test_overlapping_breakdowns_with_an_integer_attacker_on_the_joint(tmp_path_factory, cells):
    """Region by sex, then sex by age (true totals, acro): the attacker solves an integer
    program over the three-way joint table from both published files; the audit works on the
    linear relaxation, and this checks the relaxation does not let a small cell through."""
    people = [key for key, n in cells.items() for _ in range(n)]
    rows = [(f"p{i:05d}", s, a, r) for i, (s, a, r) in enumerate(people)]
    df = pd.DataFrame(rows, columns=["patient_id", "sex", "age", "region"])
    labels = (("F", "M"), ("a0", "a1", "a2"), ("N", "S"))
    if any(
        df[d].nunique() < len(lab) for d, lab in zip(("sex", "age", "region"), labels, strict=True)
    ):
        return  # a label with nobody: the outputs API would leave it out
    tmp = tmp_path_factory.mktemp("prop")
    first = check_output(
        outputs.write("rs.csv", outputs.crosstab(df, "region", "sex"), directory=tmp / "o"),
        ACRO,
        out_dir=tmp / "c",
    )
    second = check_output(
        outputs.write("sa.csv", outputs.crosstab(df, "sex", "age"), directory=tmp / "o"),
        ACRO,
        released=[first],
        out_dir=tmp / "c",
    )
    if second.outcome == "fail":
        assert second.safe_path is None
        return
    attacker = JointAttacker(ACRO, ("sex", "age", "region"), labels)
    attacker.add_crosstab(first.safe_path, "region", "sex", totals=True)
    attacker.add_crosstab(second.safe_path, "sex", "age", totals=True)
    _, _, shown = read_wide(second.safe_path)
    low, high = ACRO.primary_range
    for (s, a), text in shown.items():
        if text != REDACTED or "Total" in (s, a):
            continue
        truth = sum(n for (s2, a2, _), n in cells.items() if (s2, a2) == (s, a))
        lo, hi = attacker.interval({"sex": s, "age": a})
        assert lo <= truth <= hi
        if truth <= high:
            assert lo <= low and hi >= high, ((s, a), truth, (lo, hi))
