"""A researcher's script, run as its own process the way a job runs, writes its outputs with
the outputs API; the checker then takes the job's folder."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from sdc_support import REDACTED, read_wide

from carelight.sde.disclosure import check_outputs

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import pandas as pd
    import statsmodels.formula.api as smf

    from carelight.sde.disclosure import outputs

    rng = np.random.default_rng(11)
    n = 400
    df = pd.DataFrame({
        "patient_id": [f"{i:032x}" for i in range(n)],
        "sex": rng.choice(["F", "M"], n),
        "age_band": rng.choice(["0-17", "18-64", "65+", "90+"], n, p=[0.3, 0.4, 0.29, 0.01]),
        "sbp": rng.normal(130, 15, n),
    })
    outputs.write("by_sex_age.csv", outputs.crosstab(df, index="sex", columns="age_band"))
    outputs.write("mean_sbp.csv", outputs.table(df, by=["sex"], values="sbp", agg="mean"))
    outputs.write("model.csv", outputs.regression(smf.ols("sbp ~ C(sex)", df).fit()))
    df.to_csv(outputs.output_dir() / "everyone.csv", index=False)  # a mistake
    """
)


def test_a_job_script_writes_outputs_that_are_checked(tmp_path):
    script = tmp_path / "analysis.py"
    script.write_text(SCRIPT)
    job = tmp_path / "job"
    env = {**os.environ, "CARELIGHT_OUTPUT_DIR": str(job)}
    subprocess.run([sys.executable, str(script)], check=True, env=env, cwd=tmp_path, timeout=120)
    results = {r.evidence.file["name"]: r for r in check_outputs(job, "nhs-england")}
    assert set(results) == {"by_sex_age.csv", "everyone.csv", "mean_sbp.csv", "model.csv"}
    assert results["everyone.csv"].outcome == "fail"  # row-level, with a pseudonym column
    assert results["everyone.csv"].safe_path is None
    assert results["model.csv"].outcome == "pass"
    assert results["mean_sbp.csv"].evidence.classification["kind"] == "mean-table"
    table = results["by_sex_age.csv"]
    assert table.outcome == "pass-with-changes"
    _, _, shown = read_wide(table.safe_path)
    assert REDACTED in (shown[("F", "90+")], shown[("M", "90+")])
    assert all(v == REDACTED or int(v) % 5 == 0 for v in shown.values())
