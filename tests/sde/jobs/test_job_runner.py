"""Running a job end to end: the dataset step and the analysis (pandas, statsmodels) in the
sandbox, frozen code by hash, dummy before real, and what the job can touch of its own folder."""

from __future__ import annotations

import fcntl
import json
import os

import pytest
from jobs_support import PEOPLE, QUICK, STANDIN

from care_support import skip_or_fail
from carelight.sde.jobs.capabilities import detect_capabilities
from carelight.sde.jobs.outputs import RowLevelOutputError, read_for_checking
from carelight.sde.jobs.runner import (
    CodeChangedError,
    JobBusy,
    RealRunRefused,
    job_state,
    load_result,
    run_job,
    sha256_file,
)

ANALYSIS = """
import os
import pandas as pd
import statsmodels.formula.api as smf

df = pd.read_csv(os.environ["CARELIGHT_DATASET"])
df["female"] = (df["sex"] == "female").astype(int)
model = smf.ols("hba1c ~ female + birth_year", data=df).fit()
df.groupby("sex").size().rename("n").to_csv("counts_by_sex.csv")
with open("model.txt", "w") as fh:
    fh.write(model.summary().as_text())
df[["patient_id", "hba1c"]].to_csv("per_patient.csv", index=False)
print("rows", len(df), "params", len(model.params))
"""


def _run(tmp_path, store, definition, script, data, **kw):
    return run_job(
        job_dir=tmp_path / "job",
        definition=definition,
        script=script,
        store=store,
        data=data,
        limits=kw.pop("limits", QUICK),
        producer=kw.pop("producer", STANDIN),
        **kw,
    )


def test_dummy_then_real_with_pandas_and_statsmodels(tmp_path, store, write_code):
    definition, script = write_code(ANALYSIS)
    dummy = _run(tmp_path, store, definition, script, "dummy")
    assert dummy.status == "succeeded", (
        tmp_path / "job/runs/dummy/logs/analysis.stderr"
    ).read_text()
    assert dummy.definition_sha256 == sha256_file(definition)
    assert dummy.script_sha256 == sha256_file(script)
    assert [s.name for s in dummy.steps] == ["dataset", "analysis"]
    assert dummy.steps[1].outcome.cpu_user_seconds > 0  # resource use is measured
    assert dummy.store == str(store.resolve())

    real = _run(tmp_path, store, definition, script, "real")
    assert real.status == "succeeded"
    assert (real.definition_sha256, real.script_sha256) == (
        dummy.definition_sha256,
        dummy.script_sha256,
    )
    run_dir = tmp_path / "job" / "runs" / "real"
    logs = (run_dir / "logs" / "analysis.stdout").read_text()
    assert f"rows {PEOPLE}" in logs and "params 3" in logs
    kinds = {o.path: o.kind for o in real.outputs}
    assert kinds == {
        "counts_by_sex.csv": "aggregate",
        "model.txt": "aggregate",
        "per_patient.csv": "row_level",
    }
    # The row-level file never leaves; the aggregate one goes on to checking.
    with pytest.raises(RowLevelOutputError):
        read_for_checking(run_dir, "per_patient.csv")
    assert b"female" in read_for_checking(run_dir, "counts_by_sex.csv")
    assert load_result(tmp_path / "job", "real")["status"] == "succeeded"
    assert json.loads((run_dir / "result.json").read_text()) == json.loads(real.to_json())
    # A succeeded real run is final.
    with pytest.raises(RealRunRefused, match="already ran on real data"):
        _run(tmp_path, store, definition, script, "real")


def test_real_run_is_refused_before_a_dummy_run(tmp_path, store, write_code):
    definition, script = write_code("print('hi')\n")
    with pytest.raises(RealRunRefused, match="dummy data first"):
        _run(tmp_path, store, definition, script, "real")
    assert job_state(tmp_path / "job") is None  # nothing frozen, nothing ran
    assert not (tmp_path / "job" / "runs").exists()


def test_real_run_is_refused_after_a_failed_dummy_run(tmp_path, store, write_code):
    definition, script = write_code("raise SystemExit(3)\n")
    dummy = _run(tmp_path, store, definition, script, "dummy")
    assert dummy.status == "failed" and dummy.failed_step == "analysis"
    assert dummy.steps[1].outcome.exit_code == 3
    with pytest.raises(RealRunRefused, match="dummy run: failed"):
        _run(tmp_path, store, definition, script, "real")
    assert not (tmp_path / "job" / "runs" / "real").exists()


def test_code_left_by_a_crashed_runner_is_replaced(tmp_path, store, write_code):
    # Code frozen but no job.json: the runner died in between; nothing ran from it.
    stale = tmp_path / "job" / "code"
    stale.mkdir(parents=True)
    (stale / "analysis.py").write_text("print('stale')\n")
    stale.chmod(0o555)
    definition, script = write_code("print('fresh')\n")
    result = _run(tmp_path, store, definition, script, "dummy")
    assert result.status == "succeeded"
    assert (stale / "analysis.py").read_text() == "print('fresh')\n"


def test_a_rerun_keeps_the_previous_attempt(tmp_path, store, write_code):
    definition, script = write_code("print('attempt')\n")
    _run(tmp_path, store, definition, script, "dummy")
    _run(tmp_path, store, definition, script, "dummy")
    runs = tmp_path / "job" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["dummy", "dummy.attempt-1"]
    assert (runs / "dummy.attempt-1" / "result.json").is_file()


def test_a_store_holding_carelight_home_is_refused(tmp_path, store, write_code, monkeypatch):
    monkeypatch.setenv("CARELIGHT_HOME", str(store / "home"))
    definition, script = write_code("print(1)\n")
    with pytest.raises(ValueError, match=r"CARELIGHT_HOME .* is inside"):
        _run(tmp_path, store, definition, script, "dummy")


def test_changed_code_is_refused_for_the_same_job(tmp_path, store, write_code):
    definition, script = write_code("print('v1')\n")
    assert _run(tmp_path, store, definition, script, "dummy").status == "succeeded"
    script.write_text("print('v2: not what ran on dummy data')\n")
    with pytest.raises(CodeChangedError, match="script"):
        _run(tmp_path, store, definition, script, "real")
    definition.write_text("TABLE = 'patients'\nCOLUMNS = ['patient_id']\n")
    with pytest.raises(CodeChangedError, match="definition"):
        _run(tmp_path, store, definition, script, "dummy")


def test_tampering_with_the_frozen_copy_voids_the_job(tmp_path, store, write_code):
    definition, script = write_code("print('ok')\n")
    _run(tmp_path, store, definition, script, "dummy")
    frozen = tmp_path / "job" / "code" / "analysis.py"
    frozen.chmod(0o644)
    frozen.write_text("print('swapped after the dummy run')\n")
    with pytest.raises(CodeChangedError, match="modified"):
        _run(tmp_path, store, definition, script, "real")


def test_the_job_cannot_touch_its_own_record_code_or_logs(tmp_path, store, write_code):
    job = tmp_path / "job"
    script_text = f"""
import json, os
out = {{}}
for path in ["/job/code/analysis.py", "/job/dataset/dataset.csv", {str(job / "job.json")!r},
             "/job/job.json", "/job/logs", "/store/parquet/patients.parquet"]:
    try:
        with open(path, "a") as fh:
            fh.write("tampered")
        out[path] = "written"
    except OSError as e:
        out[path] = type(e).__name__
import duckdb
con = duckdb.connect("/store/research.duckdb", read_only=True)
out["store rows"] = con.execute("SELECT count(*) FROM patients").fetchone()[0]
out["cwd"] = os.getcwd()
out["visible"] = sorted(os.listdir("/job"))
print(json.dumps(out))
"""
    definition, script = write_code(script_text)
    if detect_capabilities().isolation != "namespaces":
        skip_or_fail("no namespace backend: " + "; ".join(detect_capabilities().notes))
    result = _run(tmp_path, store, definition, script, "dummy")
    assert result.status == "succeeded"
    assert result.isolation == "namespaces"
    seen = json.loads((job / "runs/dummy/logs/analysis.stdout").read_text())
    assert all(v != "written" for k, v in seen.items() if k.startswith("/")), seen
    assert seen["store rows"] == PEOPLE  # the store is readable, with DuckDB too
    assert seen["cwd"] == "/job/outputs"
    assert seen["visible"] == ["code", "dataset", "outputs"]
    assert "tampered" not in (job / "job.json").read_text()
    assert sha256_file(job / "code" / "analysis.py") == result.script_sha256


def test_a_job_already_running_is_refused(tmp_path, store, write_code):
    definition, script = write_code("print(1)\n")
    (tmp_path / "job").mkdir()
    with open(tmp_path / "job" / ".lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(JobBusy, match="already running"):
            _run(tmp_path, store, definition, script, "dummy")
    assert job_state(tmp_path / "job") is None


def test_the_package_exports_what_the_lead_wires(tmp_path):
    import carelight.sde.jobs as jobs

    for name in jobs.__all__:
        assert getattr(jobs, name) is not None, name
    assert jobs.DEFAULT_PRODUCER == "carelight.sde.query:produce_dataset"


def test_a_job_inside_carelight_home_sees_nothing_else_of_it(
    tmp_path, store, fake_home, write_code
):
    if detect_capabilities().isolation != "namespaces":
        skip_or_fail("no namespace backend: " + "; ".join(detect_capabilities().notes))
    targets = {label: str(p) for label, p in fake_home.secrets.items()}
    probe = f"""
import json
out = {{}}
for label, path in {targets!r}.items():
    try:
        out[label] = open(path).read()
    except OSError as e:
        out[label] = type(e).__name__
print(json.dumps(out))
"""
    definition, script = write_code(probe, definition=probe + "TABLE = 'patients'\n")
    result = run_job(
        job_dir=fake_home.jobs / "this",
        definition=definition,
        script=script,
        store=store,
        data="dummy",
        limits=QUICK,
        producer=STANDIN,
    )
    assert result.status == "succeeded"
    logs = fake_home.jobs / "this" / "runs" / "dummy" / "logs"
    for step in ("dataset", "analysis"):  # the definition is researcher code too
        seen = json.loads((logs / f"{step}.stdout").read_text())
        assert set(seen) == set(targets)
        assert all(v in ("FileNotFoundError", "PermissionError") for v in seen.values()), seen
        assert fake_home.token not in (logs / f"{step}.stdout").read_text()


def test_a_missing_producer_fails_the_dataset_step_clearly(tmp_path, store, write_code):
    definition, script = write_code("print('never runs')\n")
    result = _run(
        tmp_path, store, definition, script, "dummy", producer="carelight.sde.nosuch:produce"
    )
    assert result.status == "failed" and result.failed_step == "dataset"
    assert len(result.steps) == 1  # the analysis never ran
    err = (tmp_path / "job/runs/dummy/logs/dataset.stderr").read_text()
    assert "carelight.sde.nosuch:produce is not installed" in err


def test_a_definition_error_fails_the_dataset_step(tmp_path, store, write_code):
    definition, script = write_code("print('never')\n", definition="TABLE = 'no_such_table'\n")
    result = _run(tmp_path, store, definition, script, "dummy")
    assert result.failed_step == "dataset"
    assert (
        "no table 'no_such_table'" in (tmp_path / "job/runs/dummy/logs/dataset.stderr").read_text()
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"data": "live"}, ValueError, "dummy' or 'real"),
        ({"producer": "no-colon"}, ValueError, "module:function"),
        ({"store": "missing"}, FileNotFoundError, "research store folder not found"),
        ({"script": "missing.py"}, FileNotFoundError, "script file not found"),
    ],
)
def test_bad_arguments_are_clear_errors(tmp_path, store, write_code, kwargs, error, match):
    definition, script = write_code("print(1)\n")
    args = {"definition": definition, "script": script, "store": store, "data": "dummy"}
    for key in ("store", "script"):
        if key in kwargs:
            kwargs = {**kwargs, key: tmp_path / kwargs[key]}
    with pytest.raises(error, match=match):
        run_job(job_dir=tmp_path / "job", **(args | kwargs))


def test_outputs_are_owned_by_the_sandbox_user_only_under_namespaces_as_root(
    tmp_path, store, write_code
):
    definition, script = write_code("open('x.txt', 'w').write('1')\n")
    result = _run(tmp_path, store, definition, script, "dummy")
    owner = (tmp_path / "job/runs/dummy/outputs/x.txt").stat().st_uid
    if result.isolation == "namespaces" and os.geteuid() == 0:
        assert owner != 0
    else:
        assert owner == os.geteuid()
