"""The jobs CLI: `run` prints the result record and exits by status; refusals exit 3."""

from __future__ import annotations

import json

from jobs_support import STANDIN
from typer.testing import CliRunner

from carelight.sde.jobs.cli import app

runner = CliRunner()


def _run(tmp_path, store, definition, script, data, *extra):
    args = ["run", str(script), "--definition", str(definition), "--store", str(store)]
    args += ["--data", data, "--job-dir", str(tmp_path / "job"), "--producer", STANDIN]
    args += ["--cpu-seconds", "20", "--memory-mb", "1536", "--wall-seconds", "30", *extra]
    return runner.invoke(app, args)


def test_run_dummy_then_real(tmp_path, store, write_code):
    definition, script = write_code("open('n.csv', 'w').write('n\\n3\\n')\n")
    refused = _run(tmp_path, store, definition, script, "real")
    assert refused.exit_code == 3
    assert "dummy data first" in refused.output
    dummy = _run(tmp_path, store, definition, script, "dummy")
    assert dummy.exit_code == 0, dummy.output
    record = json.loads(dummy.stdout)
    assert record["status"] == "succeeded" and record["data"] == "dummy"
    assert record["outputs"][0]["kind"] == "aggregate"
    real = _run(tmp_path, store, definition, script, "real")
    assert real.exit_code == 0
    assert json.loads(real.stdout)["script_sha256"] == record["script_sha256"]


def test_failed_job_exits_1_and_fallback_warns(tmp_path, store, write_code):
    definition, script = write_code("raise SystemExit(5)\n")
    result = _run(tmp_path, store, definition, script, "dummy", "--isolation", "fallback")
    assert result.exit_code == 1
    assert "WARNING: ran without namespaces" in result.output
    assert json.loads(result.stdout)["isolation"] == "fallback"


def test_bad_options_are_explained(tmp_path, store, write_code):
    definition, script = write_code("print(1)\n")
    result = _run(tmp_path, store, definition, script, "live")
    assert result.exit_code == 2 and "--data must be dummy or real" in result.output
    result = _run(tmp_path, store, definition, script, "dummy", "--isolation", "none")
    assert result.exit_code == 2 and "--isolation must be" in result.output


def test_capabilities_prints_json():
    result = runner.invoke(app, ["capabilities"])
    assert result.exit_code == 0
    caps = json.loads(result.output)
    assert caps["isolation"] in ("namespaces", "fallback")
