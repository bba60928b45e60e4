"""Properties of the rules for statistics and identifiers (Hypothesis), checked against the
raw data rather than the checker's own metadata."""

from __future__ import annotations

import hashlib
import os

import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sdc_support import REDACTED, read_long

from carelight.sde.disclosure import ACRO, check_output, outputs
from carelight.sde.disclosure.identifiers import find_identifier_columns

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

contribution = st.one_of(st.floats(0, 10), st.floats(0, 10), st.floats(0, 5000))
group = st.lists(contribution, min_size=4, max_size=30)


@PROPERTY
@given(groups=st.lists(group, min_size=1, max_size=4), agg=st.sampled_from(["sum", "mean"]))
def test_released_sums_and_means_pass_every_rule_on_the_raw_data(tmp_path_factory, groups, agg):
    tmp = tmp_path_factory.mktemp("stat")
    rows = [(f"g{g}p{i}", f"g{g}", v) for g, vals in enumerate(groups) for i, v in enumerate(vals)]
    df = pd.DataFrame(rows, columns=["patient_id", "grp", "x"])
    path = outputs.write(
        "x.csv", outputs.table(df, "grp", values="x", agg=agg), directory=tmp / "o"
    )
    shown = read_long(check_output(path, ACRO, out_dir=tmp / "c").safe_path)
    for g, vals in enumerate(groups):
        top = [*sorted(vals, reverse=True), 0.0]
        total = sum(vals)
        dominance_margin = ACRO.dominance_k * total - (top[0] + top[1])
        p_margin = (total - top[0] - top[1]) - ACRO.p_ratio * top[0]
        if abs(dominance_margin) < 1e-6 or abs(p_margin) < 1e-6:
            continue  # on a boundary: floating-point rounding decides
        all_same = len(set(vals)) == 1
        safe = (
            len(vals) >= ACRO.min_count and not all_same and dominance_margin > 0 and p_margin > 0
        )
        event("released" if safe else "redacted")
        assert (shown[f"g{g}"] != REDACTED) == safe, (vals, shown[f"g{g}"])


@PROPERTY
@given(seeds=st.lists(st.integers(), min_size=1, max_size=30, unique=True))
def test_hashed_ids_are_always_caught(seeds):
    values = [hashlib.sha256(str(s).encode()).hexdigest()[:32] for s in seeds]
    assert [f.column for f in find_identifier_columns({"group": values})] == ["group"]


@PROPERTY
@given(
    labels=st.lists(
        st.sampled_from(
            [
                "F",
                "M",
                "0-17",
                "18-64",
                "65+",
                "North",
                "South",
                "E02000001",
                "Type 2 diabetes",
                "44054006",
                "(missing)",
            ]
        ),
        min_size=1,
        max_size=40,
    )
)
def test_category_labels_are_never_identifiers(labels):
    assert find_identifier_columns({"group": labels}) == []
