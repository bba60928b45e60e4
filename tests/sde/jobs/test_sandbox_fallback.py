"""The fallback (no namespaces: rlimits and a clean environment only) is never silent: it is
forced explicitly here, flagged in every outcome and result, and refused when namespaces are
required. Its limits still hold; its weakness (the network) is real, which is why it is flagged."""

from __future__ import annotations

import dataclasses
import json
import socket
import time

import pytest
from jobs_support import QUICK, STANDIN, run_python

from carelight.sde.jobs.capabilities import Capabilities
from carelight.sde.jobs.runner import run_job
from carelight.sde.jobs.sandbox import Limits, Mount, Sandbox, SandboxUnavailable

NOTHING = Capabilities(bwrap=None, unshare=None, running_as_root=False, notes=("none here",))


def test_forced_fallback_is_flagged_and_scrubs_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CARELIGHT_TEST_SECRET", "must-not-leak")
    ran = run_python(
        "import json, os; print(json.dumps(dict(os.environ)))",
        tmp_path / "job",
        isolation="fallback",
    )
    assert ran.outcome.ok, ran.stderr
    assert ran.outcome.isolation == "fallback"
    assert ran.outcome.backend == "rlimits"
    assert "must-not-leak" not in ran.stdout
    assert "CARELIGHT_TEST_SECRET" not in ran.json()


def test_fallback_still_enforces_cpu_and_wall_clock(tmp_path):
    cpu = dataclasses.replace(QUICK, cpu_seconds=1)
    ran = run_python("while True: pass", tmp_path / "a", limits=cpu, isolation="fallback")
    assert ran.outcome.limit_hit == "cpu"
    wall = dataclasses.replace(QUICK, wall_seconds=1.0)
    started = time.monotonic()
    ran = run_python(
        "import time; time.sleep(30)", tmp_path / "b", limits=wall, isolation="fallback"
    )
    assert time.monotonic() - started < 5
    assert ran.outcome.limit_hit == "wall_clock"


def test_fallback_does_not_isolate_the_network_which_is_why_it_is_flagged(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        code = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2); print('connected')"
        ran = run_python(code, tmp_path / "job", isolation="fallback")
        assert ran.outcome.isolation == "fallback"
        assert "connected" in ran.stdout
    finally:
        server.close()


def test_paths_map_to_the_host_in_the_fallback(tmp_path):
    box = Sandbox([Mount(tmp_path, "/job", writable=True)], Limits(), isolation="fallback")
    assert box.path("/job/outputs") == str(tmp_path / "outputs")
    with pytest.raises(ValueError, match="not inside any mount"):
        box.path("/elsewhere")


def test_namespaces_required_but_unavailable_is_refused(tmp_path):
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        Sandbox([Mount(tmp_path, "/job")], Limits(), isolation="namespaces", capabilities=NOTHING)


def test_auto_without_namespaces_falls_back_and_says_so(tmp_path):
    box = Sandbox([Mount(tmp_path, "/job")], Limits(), isolation="auto", capabilities=NOTHING)
    assert box.isolation == "fallback"


def test_a_job_run_in_the_fallback_is_flagged_in_its_result(tmp_path, store, write_code):
    definition, script = write_code("open('n.txt', 'w').write('1')\n")
    result = run_job(
        job_dir=tmp_path / "job",
        definition=definition,
        script=script,
        store=store,
        data="dummy",
        limits=QUICK,
        isolation="fallback",
        producer=STANDIN,
    )
    assert result.status == "succeeded", result
    assert result.isolation == "fallback"
    assert any("fallback" in note for note in result.isolation_notes)
    stored = json.loads((tmp_path / "job" / "runs" / "dummy" / "result.json").read_text())
    assert stored["isolation"] == "fallback"
    assert all(step["outcome"]["isolation"] == "fallback" for step in stored["steps"])
    state = json.loads((tmp_path / "job" / "job.json").read_text())
    assert state["runs"]["dummy"]["isolation"] == "fallback"
