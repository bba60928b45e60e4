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


def test_impossible_protection_fails(tmp_path):
    """A table released under a laxer policy pins a whole row below the threshold: no
    suppression in the new table can hide its small cells, so nothing is released."""
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
    assert second.outcome == "fail"
    assert second.safe_path is None
    assert any("cannot prevent it" in r for r in second.evidence.reasons)
    unprotected = [c["cell"] for c in second.evidence.audit["cells"] if not c["protected"]]
    assert {"sex": "F", "age": "a0"} in unprotected
