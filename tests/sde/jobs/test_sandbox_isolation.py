"""The sandbox's isolation, on each namespace backend: no network, nothing outside the job's
inputs readable, nothing outside its folder writable, no secrets in its environment, its own
PID namespace, and an unprivileged user without capabilities."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
from jobs_support import FakeHome, run_python

from care_support import skip_or_fail
from carelight.sde.jobs.capabilities import detect_capabilities
from carelight.sde.jobs.sandbox import Limits, Mount, Sandbox


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class Listener:
    """A TCP listener on 127.0.0.1 that records every connection it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def test_no_network_connection_to_a_host_listener_nor_dns(tmp_path, ns_caps):
    listener = Listener()
    try:
        # Control: the listener is reachable from outside the sandbox.
        socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()
        deadline = 50
        while listener.accepted < 1 and deadline:
            threading.Event().wait(0.05)
            deadline -= 1
        assert listener.accepted == 1
        code = f"""
import json, socket
out = {{}}
try:
    socket.create_connection(("127.0.0.1", {listener.port}), timeout=2).close()
    out["tcp"] = "connected"
except OSError as e:
    out["tcp"] = type(e).__name__
try:
    socket.getaddrinfo("example.org", 443)
    out["dns"] = "resolved"
except OSError as e:
    out["dns"] = type(e).__name__
out["interfaces"] = [name for _, name in socket.if_nameindex()]
print(json.dumps(out))
"""
        ran = run_python(code, tmp_path / "job", caps=ns_caps)
        assert ran.outcome.ok, ran.stderr
        assert ran.outcome.isolation == "namespaces"
        result = ran.json()
        assert result["tcp"] != "connected"
        assert result["dns"] != "resolved"
        assert result["interfaces"] == ["lo"]
        threading.Event().wait(0.3)
        assert listener.accepted == 1  # only the control connection ever arrived
    finally:
        listener.close()


def test_cannot_read_outside_its_inputs(tmp_path, fake_home: FakeHome, store, ns_caps):
    # The job's own folder lives inside CARELIGHT_HOME, next to everything it must not see.
    job = fake_home.jobs / "this" / "runs" / "dummy" / "outputs"
    (fake_home.jobs / "this" / "job.json").parent.mkdir(parents=True, exist_ok=True)
    (fake_home.jobs / "this" / "job.json").write_text(fake_home.token)
    targets = {label: str(p) for label, p in fake_home.secrets.items()}
    targets["own job record"] = str(fake_home.jobs / "this" / "job.json")
    targets["store on the host"] = str(store / "research.duckdb")
    code = f"""
import json, os
out = {{}}
for label, path in {targets!r}.items():
    try:
        with open(path) as fh:
            out[label] = fh.read()
    except OSError as e:
        out[label] = type(e).__name__
out["home listing"] = os.path.exists({str(fake_home.root)!r})
out["root listing"] = sorted(os.listdir("/root")) if os.path.isdir("/root") else []
out["store readable"] = len(open("/store/parquet/patients.parquet", "rb").read()) > 0
out["env"] = sorted(os.environ)
print(json.dumps(out))
"""
    ran = run_python(code, job, caps=ns_caps, mounts=(Mount(store, "/store"),))
    assert ran.outcome.ok, ran.stderr
    result = ran.json()
    assert fake_home.token not in ran.stdout
    for label in targets:
        assert result[label] in ("FileNotFoundError", "PermissionError"), label
    assert result["home listing"] is False
    assert all(not name.startswith(".carelight-sandbox-probe") for name in result["root listing"])
    assert result["store readable"] is True  # the store itself is there, at /store
    assert "CARELIGHT_HOME" not in result["env"]
    assert "CARELIGHT_TEST_SECRET" not in result["env"]


def test_cannot_write_outside_its_folder(tmp_path, store, ns_caps):
    before = _tree_digest(store)
    job = tmp_path / "job"
    code = f"""
import json, os
out = {{}}
for path in ["/store/parquet/patients.parquet", "/store/new.csv", "/store/research.duckdb",
             "/new-at-root", "/usr/new", "/etc/new", {str(store / "via-host-path")!r},
             {str(tmp_path / "beside-the-job")!r}]:
    try:
        with open(path, "a") as fh:
            fh.write("x")
        out[path] = "written"
    except OSError as e:
        out[path] = type(e).__name__
open("/job/mine.txt", "w").write("ok")
open("/tmp/scratch.txt", "w").write("private")
out["tmp"] = open("/tmp/scratch.txt").read()
print(json.dumps(out))
"""
    ran = run_python(code, job, caps=ns_caps, mounts=(Mount(store, "/store"),))
    assert ran.outcome.ok, ran.stderr
    result = ran.json()
    assert all(v != "written" for k, v in result.items() if k != "tmp"), result
    assert result["tmp"] == "private"
    assert _tree_digest(store) == before
    assert not (store / "via-host-path").exists()
    assert not (tmp_path / "beside-the-job").exists()
    assert (job / "mine.txt").read_text() == "ok"


def test_own_pid_namespace_and_no_privileges(tmp_path, ns_caps):
    code = f"""
import json, os
out = {{"pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}}
try:
    os.kill({os.getpid()}, 0)
    out["runner"] = "visible"
except OSError as e:
    out["runner"] = type(e).__name__
status = dict(l.split(":", 1) for l in open("/proc/self/status"))
out["uid"] = os.getuid()
out["cap_eff"] = status["CapEff"].strip()
out["no_new_privs"] = status["NoNewPrivs"].strip()
print(json.dumps(out))
"""
    ran = run_python(code, tmp_path / "job", caps=ns_caps)
    assert ran.outcome.ok, ran.stderr
    result = ran.json()
    assert max(result["pids"]) < 100  # a fresh PID namespace, not the host's
    assert result["runner"] == "ProcessLookupError"
    assert int(result["cap_eff"], 16) == 0
    if ns_caps.running_as_root:
        assert result["uid"] != 0
        assert result["no_new_privs"] == "1"


def test_environment_is_clean(tmp_path, ns_caps, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "must-not-leak")
    ran = run_python(
        "import json, os; print(json.dumps(dict(os.environ)))", tmp_path / "job", caps=ns_caps
    )
    env = ran.json()
    assert "must-not-leak" not in json.dumps(env)
    assert {k for k in env if k.startswith("CARELIGHT")} == set()
    assert env["HOME"] == "/tmp"


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_a_missing_mount_source_is_a_clear_error(tmp_path, kind):
    with pytest.raises(FileNotFoundError, match="mount source does not exist"):
        Sandbox([Mount(tmp_path / f"missing-{kind}", "/x")], Limits())


@pytest.mark.parametrize("target", ["/", "/usr", "/usr/lib", "/proc/self", "/dev/sda", "/etc"])
def test_mount_targets_reserved_for_the_sandbox_are_refused(tmp_path, target):
    with pytest.raises(ValueError, match="reserved for the sandbox"):
        Sandbox([Mount(tmp_path, target)], Limits())


def test_mount_targets_must_be_absolute():
    with pytest.raises(ValueError, match="absolute"):
        Mount(Path("/tmp"), "relative/path")
    with pytest.raises(ValueError, match="absolute"):
        Mount(Path("/tmp"), "/job/../etc")


def test_capabilities_are_reported():
    caps = detect_capabilities().to_dict()
    assert caps["isolation"] in ("namespaces", "fallback")
    assert caps["backend"] in ("bwrap", "unshare", "rlimits")
    json.dumps(caps)


def test_bubblewrap_as_an_ordinary_user_gets_the_same_view(request):
    """The runner not being root (a developer's machine): bwrap then makes a user namespace.
    Checked by running the generated bwrap command as uid 65534 (the Python runtime here is
    under /root, which that user cannot reach, so the command is a shell)."""
    caps = detect_capabilities()
    if not caps.bwrap:
        skip_or_fail("bubblewrap unusable: " + "; ".join(caps.notes))
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the command as another user")
    # pytest's tmp_path is under a root-only folder; this user needs a path it can reach.
    job = Path(tempfile.mkdtemp(prefix="carelight-test-userns-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(job, ignore_errors=True))
    os.chown(job, 65534, 65534)
    box = Sandbox(
        [Mount(job, "/job", writable=True)],
        Limits(),
        capabilities=dataclasses.replace(caps, running_as_root=False),
    )
    script = "id -u; grep -E '^CapEff' /proc/self/status; ls /; echo ok > /job/x; ls /root || true"
    argv = box._bwrap_argv(["/bin/sh", "-c", script], "/job")
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", *argv],
        capture_output=True,
        text=True,
        timeout=20,
        env={"PATH": "/usr/bin:/bin"},
    )
    lines = done.stdout.split()
    assert lines and lines[0] == "65534", done.stderr
    assert "0000000000000000" in lines
    assert "job" in lines and "root" not in lines and "home" not in lines
    assert (job / "x").read_text() == "ok\n"
