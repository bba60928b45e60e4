"""A job is stopped at its CPU, memory, process, file-size and wall-clock limits, with all its
children, and its output is captured up to a cap. Real processes, small limits."""

from __future__ import annotations

import dataclasses
import time

import pytest
from jobs_support import QUICK, namespace_capabilities, run_python

BACKENDS = ["bwrap", "unshare"]


@pytest.fixture(params=BACKENDS)
def caps(request):
    return namespace_capabilities(request.param)


def test_busy_loop_is_killed_at_the_cpu_limit(tmp_path, caps):
    limits = dataclasses.replace(QUICK, cpu_seconds=1, wall_seconds=20)
    started = time.monotonic()
    ran = run_python("while True:\n    pass\n", tmp_path / "job", limits=limits, caps=caps)
    assert time.monotonic() - started < 10
    assert ran.outcome.limit_hit == "cpu"
    assert ran.outcome.signal in ("SIGXCPU", "SIGKILL")
    assert ran.outcome.exit_code is None
    assert 0.9 <= ran.outcome.cpu_user_seconds + ran.outcome.cpu_system_seconds < 3


def test_memory_hog_is_stopped_at_the_memory_limit(tmp_path, caps):
    limits = dataclasses.replace(QUICK, memory_bytes=256 * 2**20)
    code = "blocks = []\nwhile True:\n    blocks.append(bytearray(32 * 2**20))\n"
    ran = run_python(code, tmp_path / "job", limits=limits, caps=caps)
    assert not ran.outcome.ok
    assert ran.outcome.limit_hit == "memory"
    assert "MemoryError" in ran.stderr
    assert ran.outcome.max_rss_bytes < 256 * 2**20


def test_fork_bomb_is_bounded_by_the_process_limit(tmp_path, caps):
    limits = dataclasses.replace(QUICK, processes=12, wall_seconds=20)
    code = """
import os, sys, time
n = 0
while True:
    if os.fork() == 0:
        time.sleep(60)
        os._exit(0)
    n += 1
    print(n, flush=True)
"""
    started = time.monotonic()
    ran = run_python(code, tmp_path / "job", limits=limits, caps=caps)
    # The bomb stopped at the limit and the sleeping children died with it (no 60 s wait).
    assert time.monotonic() - started < 10
    assert ran.outcome.limit_hit == "processes"
    forked = [int(line) for line in ran.stdout.split()]
    assert forked and max(forked) < 12


def test_sleep_past_the_wall_clock_is_killed_with_its_children(tmp_path, caps):
    limits = dataclasses.replace(QUICK, wall_seconds=1.5)
    job = tmp_path / "job"
    # A detached grandchild (its own session) that says it started, then would write a file
    # 2 s later; the job waits for it to start, then sleeps past the wall clock.
    code = """
import os, subprocess, sys, time
subprocess.Popen([sys.executable, "-c",
    "import time; open('/job/started', 'w').close(); time.sleep(2);"
    "open('/job/survivor', 'w').close()"], start_new_session=True)
while not os.path.exists("/job/started"):
    time.sleep(0.01)
time.sleep(60)
"""
    started = time.monotonic()
    ran = run_python(code, job, limits=limits, caps=caps)
    assert time.monotonic() - started < 5
    assert ran.outcome.limit_hit == "wall_clock"
    assert ran.outcome.signal == "SIGKILL" or ran.outcome.exit_code is None
    assert (job / "started").exists()  # the grandchild did run
    time.sleep(max(0.0, (job / "started").stat().st_mtime + 2.5 - time.time()))
    assert not (job / "survivor").exists()


def test_writing_past_the_file_size_limit_fails(tmp_path, caps):
    limits = dataclasses.replace(QUICK, file_size_bytes=2**20)
    job = tmp_path / "job"
    code = "open('/job/big.bin', 'wb').write(b'x' * (3 * 2**20))\n"
    ran = run_python(code, job, limits=limits, caps=caps)
    assert ran.outcome.limit_hit == "file_size"
    assert (job / "big.bin").stat().st_size <= 2**20


@pytest.mark.parametrize(
    ("limit", "code"),
    [
        ({"disk_bytes": 4 * 2**20}, "open(f'/job/f{i}.bin', 'wb').write(b'x' * 2**18)"),
        ({"disk_files": 500}, "open(f'/job/f{i}.txt', 'w').close()"),
    ],
)
def test_filling_the_disk_is_stopped(tmp_path, caps, limit, code):
    limits = dataclasses.replace(QUICK, wall_seconds=20, **limit)
    job = tmp_path / "job"
    started = time.monotonic()
    ran = run_python(
        f"import itertools\nfor i in itertools.count():\n    {code}\n",
        job,
        limits=limits,
        caps=caps,
    )
    assert time.monotonic() - started < 10
    assert ran.outcome.limit_hit == "disk"
    assert ran.outcome.signal == "SIGKILL" or ran.outcome.exit_code is None


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="disk_files must be positive"):
        dataclasses.replace(QUICK, disk_files=0)


def test_stdout_is_captured_up_to_the_cap(tmp_path, caps):
    limits = dataclasses.replace(QUICK, capture_bytes=1000)
    ran = run_python("print('y' * 5000)", tmp_path / "job", limits=limits, caps=caps)
    assert ran.outcome.ok
    assert ran.outcome.stdout_truncated
    assert ran.outcome.stdout_bytes == 5001
    assert len(ran.stdout) == 1000
