"""Count tables on hand-made data: threshold, zeros, rounding, totals, secondary suppression
within a table and across two tables of the same project."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sdc_support import REDACTED, Attacker, microdata, read_long, read_wide

from carelight.sde.disclosure import ACRO, NHS_ENGLAND, check_output, get_policy, outputs


def long_csv(path, rows: dict[str, int], label="region", value="count"):
    pd.DataFrame({label: list(rows), value: list(rows.values())}).to_csv(path, index=False)
    return path


def crosstab_file(tmp_path, cells, name="ct.csv", margins=True):
    df = microdata(cells)
    out = outputs.crosstab(df, "sex", "age", margins=margins)
    return outputs.write(name, out, directory=tmp_path / "out")


def test_nhs_england_redacts_1_to_7_keeps_zero_and_rounds_to_5(tmp_path):
    path = long_csv(
        tmp_path / "t.csv", {"a": 0, "b": 1, "c": 7, "d": 8, "e": 12, "f": 13, "g": 100}
    )
    result = check_output(path, NHS_ENGLAND, out_dir=tmp_path / "c")
    assert result.outcome == "pass-with-changes"
    assert read_long(result.safe_path) == {
        "a": "0",
        "b": REDACTED,
        "c": REDACTED,
        "d": "10",
        "e": "10",
        "f": "15",
        "g": "100",
    }
    assert result.evidence.classification["how"] == "shape"
    hits = {r.rule: [h.cell["region"] for h in r.hits] for r in result.evidence.rules if r.hits}
    assert hits["threshold"] == ["b", "c"]
    assert hits["rounding"] == ["d", "e", "f"]
    assert "zeros" not in hits


def test_acro_redacts_zeros_and_under_ten_and_does_not_round(tmp_path):
    path = long_csv(tmp_path / "t.csv", {"a": 0, "b": 9, "c": 10, "d": 13})
    result = check_output(path, ACRO, out_dir=tmp_path / "c")
    assert read_long(result.safe_path) == {"a": REDACTED, "b": REDACTED, "c": "10", "d": "13"}
    hits = {r.rule: [h.cell["region"] for h in r.hits] for r in result.evidence.rules if r.hits}
    assert hits["zeros"] == ["a"] and hits["threshold"] == ["b"]


def test_a_table_with_nothing_to_change_passes(tmp_path):
    path = long_csv(tmp_path / "t.csv", {"a": 10, "b": 25})
    result = check_output(path, NHS_ENGLAND, out_dir=tmp_path / "c")
    assert result.outcome == "pass"
    assert read_long(result.safe_path) == {"a": "10", "b": "25"}


def test_nhs_totals_are_recomputed_from_the_rounded_cells(tmp_path):
    cells = {("F", "a0"): 3, ("F", "a1"): 12, ("M", "a0"): 21, ("M", "a1"): 44}
    result = check_output(crosstab_file(tmp_path, cells), NHS_ENGLAND, out_dir=tmp_path / "c")
    _, _, shown = read_wide(result.safe_path)
    assert shown[("F", "a0")] == REDACTED
    assert (shown[("F", "a1")], shown[("M", "a0")], shown[("M", "a1")]) == ("10", "20", "45")
    assert shown[("F", "Total")] == "10"  # not 15, the true total
    assert shown[("Total", "a0")] == "20"
    assert shown[("Total", "Total")] == "75"


def test_totals_in_a_file_are_dropped_and_recomputed(tmp_path):
    path = long_csv(tmp_path / "t.csv", {"a": 3, "b": 40, "Total": 43})
    result = check_output(path, NHS_ENGLAND, out_dir=tmp_path / "c")
    assert read_long(result.safe_path) == {"a": REDACTED, "b": "40", "Total": "40"}
    assert any(r.rule == "totals-in-file" for r in result.evidence.rules)


def test_acro_true_totals_get_secondary_suppression(tmp_path):
    cells = {
        ("F", "a0"): 48,
        ("F", "a1"): 63,
        ("F", "a2"): 34,
        ("F", "a3"): 1,
        ("M", "a0"): 52,
        ("M", "a1"): 61,
        ("M", "a2"): 37,
        ("M", "a3"): 4,
    }
    result = check_output(crosstab_file(tmp_path, cells), ACRO, out_dir=tmp_path / "c")
    assert result.outcome == "pass-with-changes"
    assert result.safe_path.read_text().splitlines() == [
        "sex,a0,a1,a2,a3,Total",
        f"F,48,63,{REDACTED},{REDACTED},146",
        f"M,52,61,{REDACTED},{REDACTED},154",
        f"Total,100,124,{REDACTED},{REDACTED},300",
    ]
    (rule,) = [r for r in result.evidence.rules if r.rule == "secondary-suppression"]
    assert {tuple(h.cell.values()) for h in rule.hits} == {
        ("F", "a2"),
        ("M", "a2"),
        ("Total", "a2"),
    }
    audit = result.evidence.audit
    assert all(c["protected"] for c in audit["cells"])
    f_a3 = next(c for c in audit["cells"] if c["cell"] == {"sex": "F", "age": "a3"})
    assert f_a3["status"] == "primary" and f_a3["interval"][0] == 0 and f_a3["interval"][1] >= 9


def test_the_attacker_recovers_cells_when_only_primary_cells_are_hidden(tmp_path):
    """The independent attacker is not toothless: against a naive release (true totals,
    small cells hidden, nothing else) it works the hidden cells out exactly."""
    naive = tmp_path / "naive.csv"
    naive.write_text(
        f"sex,a0,a1,Total\nF,48,{REDACTED},51\nM,52,{REDACTED},56\nTotal,100,{REDACTED},107\n"
    )
    attacker = Attacker(ACRO, ["F", "M"], ["a0", "a1"])
    attacker.add_crosstab(naive, totals=True)
    assert attacker.interval(("F", "a1")) == (3, 3)
    assert attacker.interval(("M", "a1")) == (4, 4)


def test_a_released_coarser_table_triggers_secondary_suppression(tmp_path):
    cells = {
        ("F", "a0"): 48,
        ("F", "a1"): 63,
        ("F", "a2"): 3,
        ("M", "a0"): 52,
        ("M", "a1"): 61,
        ("M", "a2"): 37,
    }
    df = microdata(cells)
    by_sex = outputs.write("by_sex.csv", outputs.table(df, "sex"), directory=tmp_path / "out")
    first = check_output(by_sex, ACRO, out_dir=tmp_path / "c")
    assert read_long(first.safe_path) == {"F": "114", "M": "150"}
    path = crosstab_file(tmp_path, cells, margins=False)
    alone = check_output(path, ACRO, out_dir=tmp_path / "alone")
    _, _, shown = read_wide(alone.safe_path)
    assert [k for k, v in shown.items() if v == REDACTED] == [("F", "a2")]
    # with the first table released, 114 - 48 - 63 would give the redacted cell away
    second = check_output(path, ACRO, released=[first], out_dir=tmp_path / "c2")
    _, _, shown = read_wide(second.safe_path)
    assert sorted(k for k, v in shown.items() if v == REDACTED) == [("F", "a0"), ("F", "a2")]
    assert second.evidence.audit["linked_tables"] == ["by_sex.csv"]
    # the released table can also be given as its evidence record on disk
    again = check_output(path, ACRO, released=[first.evidence_path], out_dir=tmp_path / "c3")
    assert again.safe_path.read_text() == second.safe_path.read_text()


def test_tables_of_different_populations_are_not_joined(tmp_path):
    cells = {("F", "a0"): 48, ("F", "a1"): 3, ("M", "a0"): 52, ("M", "a1"): 37}
    other = microdata({("F", "a0"): 30, ("M", "a0"): 30}, prefix="q")
    by_sex = outputs.write("by_sex.csv", outputs.table(other, "sex"), directory=tmp_path / "o")
    first = check_output(by_sex, ACRO, out_dir=tmp_path / "c")
    second = check_output(
        crosstab_file(tmp_path, cells, margins=False),
        ACRO,
        released=[first],
        out_dir=tmp_path / "c2",
    )
    assert second.evidence.audit["linked_tables"] == []
    assert second.evidence.audit["excluded_tables"] == ["by_sex.csv"]


def test_contradicting_released_table_is_left_out_with_a_note(tmp_path):
    cells = {("F", "a0"): 48, ("F", "a1"): 3, ("M", "a0"): 52, ("M", "a1"): 37}
    df = microdata(cells)
    wrong = outputs.write(
        "wrong.csv", outputs.table(df, "sex", population="x"), directory=tmp_path / "o"
    )
    first = check_output(wrong, ACRO, out_dir=tmp_path / "c")
    record = json.loads(first.evidence_path.read_text())
    record["released_table"]["population"] = None
    record["released_table"]["cells"][0].update(lo=10, hi=10)  # F = 10 < 48: impossible
    second = check_output(
        crosstab_file(tmp_path, cells, margins=False),
        ACRO,
        released=[record],
        out_dir=tmp_path / "c2",
    )
    assert second.evidence.audit["excluded_tables"] == ["wrong.csv"]
    assert any("not joined" in r for r in second.evidence.reasons)


def test_suppressing_a_partner_cell_restores_protection(tmp_path):
    """A released table pins the row total; suppressing the other cell of the row helps."""
    cells = {("F", "a0"): 4, ("F", "a1"): 6, ("M", "a0"): 52, ("M", "a1"): 37}
    df = microdata(cells)
    loose = get_policy("acro", min_count=10)
    first = check_output(
        outputs.write("by_sex.csv", outputs.table(df, "sex"), directory=tmp_path / "o"),
        loose,
        out_dir=tmp_path / "c",
    )
    assert read_long(first.safe_path)["F"] == "10"
    # a policy that redacts fewer than 5 only: F,a1 = 6 is published, F,a0 = 4 is not
    strict = get_policy("acro", min_count=5)
    second = check_output(
        crosstab_file(tmp_path, cells, margins=False),
        strict,
        released=[first],
        out_dir=tmp_path / "c2",
    )
    # F,a0 in [0, 4] must stay possible: suppressing F,a1 as well leaves F,a0 + F,a1 = 10 with
    # F,a1 >= 0, so F,a0 can be 0..4 again; the table passes with that change
    assert second.outcome == "pass-with-changes"
    _, _, shown = read_wide(second.safe_path)
    assert shown[("F", "a0")] == shown[("F", "a1")] == REDACTED


def test_event_counts_use_distinct_patients_for_the_threshold(tmp_path):
    rows = [("p1", "drug_a")] * 30 + [(f"q{i}", "drug_b") for i in range(30)]
    df = pd.DataFrame(rows, columns=["patient_id", "drug"])
    path = outputs.write("rx.csv", outputs.table(df, "drug"), directory=tmp_path / "o")
    result = check_output(path, ACRO, out_dir=tmp_path / "c")
    # thirty prescriptions of drug_a, all for one person: redacted
    assert read_long(result.safe_path) == {"drug_a": REDACTED, "drug_b": "30"}
    assert result.published is None  # event counts are not joined with other tables


@pytest.mark.parametrize("bad", ["-1", "2.5", ""])
def test_counts_must_be_whole_and_non_negative(tmp_path, bad):
    path = tmp_path / "t.csv"
    path.write_text(f"region,count\na,{bad}\nb,20\n")
    result = check_output(path, ACRO, out_dir=tmp_path / "c")
    assert result.outcome in ("fail", "needs-review")
    assert result.safe_path is None


def test_a_cell_narrowed_by_an_earlier_release_is_reported(tmp_path):
    """A table released under a laxer policy pins a whole row below the threshold. The new
    table cannot undo that; it must not narrow the cells further, and the evidence says so."""
    cells = {("F", "a0"): 1, ("F", "a1"): 2, ("M", "a0"): 52, ("M", "a1"): 37}
    df = microdata(cells)
    lax = get_policy("acro", min_count=1, zeros_disclosive=False)
    first = check_output(
        outputs.write("by_sex.csv", outputs.table(df, "sex"), directory=tmp_path / "o"),
        lax,
        out_dir=tmp_path / "c",
    )
    assert read_long(first.safe_path)["F"] == "3"
    second = check_output(
        crosstab_file(tmp_path, cells, margins=False),
        ACRO,
        released=[first],
        out_dir=tmp_path / "c2",
    )
    assert second.outcome == "pass-with-changes"
    _, _, shown = read_wide(second.safe_path)
    assert shown[("F", "a0")] == shown[("F", "a1")] == REDACTED
    assert any("already narrowed to 0..3" in r for r in second.evidence.reasons)


def test_a_cell_already_determined_by_an_earlier_release_needs_review(tmp_path):
    cells = {("F", "a0"): 3, ("F", "a1"): 40, ("M", "a0"): 52, ("M", "a1"): 37}
    lax = get_policy("acro", min_count=1, zeros_disclosive=False)
    path = crosstab_file(tmp_path, cells, margins=False)
    first = check_output(path, lax, out_dir=tmp_path / "c")
    assert first.outcome == "pass"  # everything published, the 3 included
    second = check_output(path, ACRO, released=[first], out_dir=tmp_path / "c2")
    assert second.outcome == "needs-review"
    assert any("already determined" in r for r in second.evidence.reasons)


def test_true_totals_of_a_lone_small_cell_are_redacted_too(tmp_path):
    """With true totals, a small cell alone in its row and column among published zeros makes
    its row and column totals small too: they are redacted, the zeros stay (never chosen as
    secondary cells), and the grand total is protected by suppressing more."""
    # no rounding: rounded totals would blur 45 - 40 enough on their own
    policy = get_policy("nhs-england", margins="true", rounding_base=0)
    cells = {("F", "a0"): 5, ("F", "a1"): 0, ("M", "a0"): 0, ("M", "a1"): 40}
    result = check_output(crosstab_file(tmp_path, cells), policy, out_dir=tmp_path / "c")
    assert result.outcome == "pass-with-changes", result.evidence.reasons
    _, _, shown = read_wide(result.safe_path)
    assert shown[("F", "a1")] == shown[("M", "a0")] == "0"
    assert shown[("F", "a0")] == shown[("F", "Total")] == shown[("Total", "a0")] == REDACTED
    assert all(c["protected"] for c in result.evidence.audit["cells"])
    # grand total - M total (or - a1 total) would give F away: one of them is hidden
    assert REDACTED in (shown[("Total", "Total")], shown[("M", "Total")])
    assert REDACTED in (shown[("Total", "Total")], shown[("Total", "a1")])


def test_an_overlapping_breakdown_is_joined_through_the_shared_dimension(tmp_path):
    """Region by sex released first (true totals under acro), then age by sex: the female
    total of the first table and the female row of the second give a cell away unless the
    second table suppresses more. The joint table is region by sex by age."""
    rng = [("N", "a0"), ("S", "a1")]
    cells = {
        ("F", "a0"): 48,
        ("F", "a1"): 63,
        ("F", "a2"): 3,
        ("M", "a0"): 52,
        ("M", "a1"): 61,
        ("M", "a2"): 37,
    }
    rows = []
    i = 0
    for (sex, age), n in cells.items():
        for k in range(n):
            region = rng[k % 2][0]
            rows.append((f"p{i:04d}", sex, age, region))
            i += 1
    df = pd.DataFrame(rows, columns=["patient_id", "sex", "age", "region"])
    first = check_output(
        outputs.write(
            "region_sex.csv", outputs.crosstab(df, "region", "sex"), directory=tmp_path / "o"
        ),
        ACRO,
        out_dir=tmp_path / "c",
    )
    _, _, shown = read_wide(first.safe_path)
    assert shown[("Total", "F")] == "114"
    second = check_output(
        outputs.write(
            "sex_age.csv",
            outputs.crosstab(df, "sex", "age", margins=False),
            directory=tmp_path / "o",
        ),
        ACRO,
        released=[first],
        out_dir=tmp_path / "c2",
    )
    assert second.evidence.audit["linked_tables"] == ["region_sex.csv"]
    _, _, shown = read_wide(second.safe_path)
    assert shown[("F", "a2")] == REDACTED
    assert sum(v == REDACTED for k, v in shown.items() if k[0] == "F") >= 2
    assert all(c["protected"] for c in second.evidence.audit["cells"])


def test_two_row_dimensions(tmp_path):
    df = microdata({("F", "a0"): 30, ("F", "a1"): 2, ("M", "a0"): 40, ("M", "a1"): 25})
    df["region"] = ["N", "S"] * (len(df) // 2) + ["N"] * (len(df) % 2)
    path = outputs.write(
        "t.csv", outputs.crosstab(df, ["sex", "region"], "age"), directory=tmp_path / "o"
    )
    result = check_output(path, NHS_ENGLAND, out_dir=tmp_path / "c")
    lines = result.safe_path.read_text().splitlines()
    assert lines[0] == "sex,region,a0,a1,Total"
    assert lines[-1].startswith("Total,Total,")
    assert all(v == REDACTED or int(v) % 5 == 0 for line in lines[1:] for v in line.split(",")[2:])


def test_a_coarser_table_must_not_expose_a_cell_redacted_in_a_released_one(tmp_path):
    """The other direction: the crosstab is released first with a small cell redacted; the
    counts by sex that follow would give it away (114 - 48 - 63), so they are suppressed."""
    cells = {
        ("F", "a0"): 48,
        ("F", "a1"): 63,
        ("F", "a2"): 3,
        ("M", "a0"): 52,
        ("M", "a1"): 61,
        ("M", "a2"): 37,
    }
    df = microdata(cells)
    first = check_output(
        crosstab_file(tmp_path, cells, margins=False), ACRO, out_dir=tmp_path / "c"
    )
    _, _, shown = read_wide(first.safe_path)
    assert shown[("F", "a2")] == REDACTED
    by_sex = outputs.write("by_sex.csv", outputs.table(df, "sex"), directory=tmp_path / "out")
    alone = check_output(by_sex, ACRO, out_dir=tmp_path / "alone")
    assert read_long(alone.safe_path) == {"F": "114", "M": "150"}
    second = check_output(by_sex, ACRO, released=[first], out_dir=tmp_path / "c2")
    assert read_long(second.safe_path) == {"F": REDACTED, "M": "150"}
    (record,) = second.evidence.audit["released_cells"]
    assert record["table"] == "ct.csv" and record["cell"] == {"sex": "F", "age": "a2"}
    assert record["protected"]


def test_an_audit_too_large_falls_back_to_the_table_itself(tmp_path, monkeypatch):
    import carelight.sde.disclosure.audit as audit

    cells = {
        ("F", "a0"): 48,
        ("F", "a1"): 63,
        ("F", "a2"): 3,
        ("M", "a0"): 52,
        ("M", "a1"): 61,
        ("M", "a2"): 37,
    }
    df = microdata(cells)
    first = check_output(
        outputs.write("by_sex.csv", outputs.table(df, "sex"), directory=tmp_path / "o"),
        ACRO,
        out_dir=tmp_path / "c",
    )
    monkeypatch.setattr(audit, "MAX_JOINT_CELLS", 6)  # the new table alone fits, not with more
    df["region"] = ["N", "S"] * (len(df) // 2)
    first_regions = check_output(
        outputs.write("by_region.csv", outputs.table(df, "region"), directory=tmp_path / "o"),
        ACRO,
        out_dir=tmp_path / "c",
    )
    second = check_output(
        crosstab_file(tmp_path, cells),
        ACRO,
        released=[first, first_regions],
        out_dir=tmp_path / "c2",
    )
    assert second.outcome == "needs-review"
    assert any("compare them by hand" in r for r in second.evidence.reasons)
    _, _, shown = read_wide(second.safe_path)
    assert shown[("F", "a2")] == REDACTED
    assert sum(v == REDACTED for v in shown.values()) >= 2  # its own totals still protected
