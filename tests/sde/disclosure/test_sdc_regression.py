"""Regressions: residual degrees of freedom from the fitted model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from carelight.sde.disclosure import ACRO, NHS_ENGLAND, check_output, outputs


def fitted(n: int):
    rng = np.random.default_rng(7)
    df = pd.DataFrame(
        {"x1": rng.normal(size=n), "x2": rng.normal(size=n), "x3": rng.normal(size=n)}
    )
    df["y"] = 2 * df.x1 - df.x2 + rng.normal(size=n)
    return smf.ols("y ~ x1 + x2 + x3", df).fit()


def test_too_few_residual_degrees_of_freedom_fail(tmp_path):
    result = fitted(13)  # 13 - 4 parameters = 9
    assert result.df_resid == 9
    path = outputs.write("model.csv", outputs.regression(result), directory=tmp_path / "o")
    for policy in (ACRO, NHS_ENGLAND):
        checked = check_output(path, policy, out_dir=tmp_path / policy.name)
        assert checked.outcome == "fail"
        assert checked.safe_path is None
        (rule,) = [r for r in checked.evidence.rules if r.rule == "residual-df"]
        assert rule.hits[0].detail == "9 residual degrees of freedom"


def test_enough_residual_degrees_of_freedom_pass(tmp_path):
    path = outputs.write("model.csv", outputs.regression(fitted(14)), directory=tmp_path / "o")
    checked = check_output(path, ACRO, out_dir=tmp_path / "c")
    assert checked.outcome == "pass"
    assert checked.evidence.classification == {
        "kind": "regression",
        "how": "metadata",
        "model": "OLS",
    }
    assert checked.safe_path.read_text() == path.read_text()
    assert checked.safe_path.read_text().splitlines()[0] == (
        "term,coef,std_err,p_value,ci_lower,ci_upper"
    )


def test_a_logistic_regression_works_too(tmp_path):
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(size=200)})
    df["y"] = (df.x + rng.normal(size=200) > 0).astype(int)
    path = outputs.write(
        "logit.csv",
        outputs.regression(smf.logit("y ~ x", df).fit(disp=0)),
        directory=tmp_path / "o",
    )
    assert check_output(path, ACRO, out_dir=tmp_path / "c").outcome == "pass"


def test_a_coefficients_table_without_metadata_needs_review(tmp_path):
    path = tmp_path / "model.csv"
    fitted(50).summary2().tables[1].reset_index().rename(columns={"index": "term"}).to_csv(
        path, index=False
    )
    checked = check_output(path, ACRO, out_dir=tmp_path / "c")
    assert checked.outcome == "needs-review"
    assert checked.evidence.classification["kind"] == "regression-without-metadata"
    assert checked.safe_path is None
