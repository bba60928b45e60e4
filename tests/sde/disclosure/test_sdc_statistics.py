"""Sums and means: threshold on contributors, dominance and p-ratio on crafted contributions."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sdc_support import REDACTED, read_long

from carelight.sde.disclosure import ACRO, NHS_ENGLAND, check_output, get_policy, outputs
from carelight.sde.disclosure.metadata import sidecar_path
from carelight.sde.disclosure.statistics import dominated, fails_p_ratio


def people(group: str, values: list[float], prefix: str) -> list[tuple[str, str, float]]:
    return [(f"{prefix}{i}", group, v) for i, v in enumerate(values)]


def frame(*groups) -> pd.DataFrame:
    rows = [row for g in groups for row in g]
    return pd.DataFrame(rows, columns=["patient_id", "practice", "cost"])


def check(tmp_path, df, policy, agg="mean"):
    out = outputs.table(df, "practice", values="cost", agg=agg)
    path = outputs.write("cost.csv", out, directory=tmp_path / "o")
    return check_output(path, policy, out_dir=tmp_path / "c")


def test_dominance_rule_unit():
    assert dominated([50, 45], 100, 2, 0.9)  # 95 % from two
    assert not dominated([50, 40], 100, 2, 0.9)  # exactly 90 % is not more than 90 %
    assert not dominated([5, 4], 0, 2, 0.9)


def test_p_ratio_rule_unit():
    assert fails_p_ratio(100, 50, 159, 0.1)  # 9 left after the two largest, under 10
    assert not fails_p_ratio(100, 50, 160, 0.1)
    assert not fails_p_ratio(0, 0, 0, 0.1)


def test_a_mean_dominated_by_two_people_is_redacted_under_acro(tmp_path):
    dominated_group = people("A", [1000, 900] + [10] * 10, "a")  # two give 94 %
    spread = people("B", [50 + i for i in range(12)], "b")
    result = check(tmp_path, frame(dominated_group, spread), ACRO)
    shown = read_long(result.safe_path)
    assert shown["A"] == REDACTED
    assert shown["B"] != REDACTED and float(shown["B"]) == pytest.approx(55.5)
    (rule,) = [r for r in result.evidence.rules if r.rule == "dominance"]
    assert [h.cell for h in rule.hits] == [{"practice": "A"}]


def test_nhs_england_has_no_dominance_rule(tmp_path):
    dominated_group = people("A", [1000, 900] + [10] * 10, "a")
    result = check(tmp_path, frame(dominated_group), NHS_ENGLAND)
    assert read_long(result.safe_path)["A"] != REDACTED


def test_p_ratio_catches_what_dominance_is_told_to_ignore(tmp_path):
    """Under ACRO's defaults a p-ratio failure is always a dominance failure too (the
    remainder under p of the largest is under a ninth of the two largest), so p-ratio is
    tested with dominance switched off."""
    group = people("A", [100, 60] + [0.5] * 10, "a")  # 5 left: under 10 % of 100
    policy = get_policy("acro", dominance_n=0)
    result = check(tmp_path, frame(group), policy, agg="sum")
    assert read_long(result.safe_path)["A"] == REDACTED
    (rule,) = [r for r in result.evidence.rules if r.rule == "p-ratio"]
    assert len(rule.hits) == 1


def test_fewer_contributors_than_the_threshold(tmp_path):
    small = people("A", [10.0 + i for i in range(9)], "a")
    big = people("B", [10.0 + i for i in range(10)], "b")
    shown = read_long(check(tmp_path, frame(small, big), ACRO).safe_path)
    assert shown == {"A": REDACTED, "B": "14.5"}


def test_contributions_are_per_person_not_per_row(tmp_path):
    """Twenty rows from one person are one contributor."""
    rows = [("p1", "A", 5.0)] * 20 + [(f"q{i}", "B", 5.0 + i % 2) for i in range(12)]
    df = pd.DataFrame(rows, columns=["patient_id", "practice", "cost"])
    shown = read_long(check(tmp_path, df, ACRO, agg="sum").safe_path)
    assert shown["A"] == REDACTED and shown["B"] == "66.0"


def test_negative_contributions_need_review(tmp_path):
    group = people("A", [-20.0] + [10.0] * 12, "a")
    result = check(tmp_path, frame(group), ACRO)
    assert result.outcome == "needs-review"
    assert result.safe_path is not None  # the checked version still goes to the checkers


def test_sidecar_holds_contributions_but_evidence_does_not(tmp_path):
    group = people("A", [1234.5, 900] + [10] * 10, "a")
    df = frame(group)
    path = outputs.write(
        "cost.csv",
        outputs.table(df, "practice", values="cost", agg="sum"),
        directory=tmp_path / "o",
    )
    meta = json.loads(sidecar_path(path).read_text())
    (cell,) = meta["cells"]
    assert (cell["n"], cell["top1"], cell["top2"]) == (12, 1234.5, 900.0)
    assert cell["total"] == pytest.approx(2234.5)
    result = check_output(path, ACRO, out_dir=tmp_path / "c")
    assert "1234.5" not in result.evidence_path.read_text()


def test_median_uses_the_threshold_only(tmp_path):
    group = people("A", [1000, 900] + [10] * 10, "a")
    result = check(tmp_path, frame(group), ACRO, agg="median")
    assert read_long(result.safe_path)["A"] == "10.0"


def test_all_values_the_same_is_redacted_under_acro(tmp_path):
    same = people("A", [0.0] * 12, "a")
    varied = people("B", [float(i) for i in range(12)], "b")
    result = check(tmp_path, frame(same, varied), ACRO)
    shown = read_long(result.safe_path)
    assert shown["A"] == REDACTED and shown["B"] == "5.5"
    (rule,) = [r for r in result.evidence.rules if r.rule == "all-values-same"]
    assert [h.cell for h in rule.hits] == [{"practice": "A"}]
    assert read_long(check(tmp_path / "n", frame(same), NHS_ENGLAND).safe_path)["A"] == "0.0"
