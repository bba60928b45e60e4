"""`carelight load` as a user runs it: a real subprocess over NDJSON folders, on SQLite."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from carelight.examples import example_dir

CARELIGHT = [sys.executable, "-m", "carelight.cli"]


def run(args: list[str], home: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "CARELIGHT_HOME": str(home), "COLUMNS": "200"}
    env.pop("CARELIGHT_DATABASE_URL", None)
    return subprocess.run([*CARELIGHT, *args], env=env, capture_output=True, text=True, **kw)


def state(db: Path) -> dict:
    """Every resource's type, id, version and content without its volatile meta."""
    with sqlite3.connect(db) as c:
        rows = c.execute("SELECT res_type, res_id, version_id, content FROM resource").fetchall()
        versions = c.execute("SELECT count(*) FROM resource_version").fetchone()[0]
    out = {}
    for res_type, res_id, version, content in rows:
        body = orjson.loads(content)
        body["meta"].pop("lastUpdated")
        out[(res_type, res_id)] = (version, body)
    return {"resources": out, "versions": versions}


def test_malformed_lines_are_reported_and_good_lines_load(tmp_path):
    src = tmp_path / "in" / "gp"
    src.mkdir(parents=True)
    good = [
        line
        for line in (example_dir() / "gp-practice" / "Patient.ndjson").read_text().splitlines()
        if line
    ]
    bad_gender = orjson.loads(good[0])
    bad_gender["id"], bad_gender["gender"] = "bad-gender", "banana"
    lines = [
        good[0],
        "{not json",
        orjson.dumps(bad_gender).decode(),
        "",
        good[1],
        '{"resourceType": "Spaceship", "id": "x"}',
    ]
    (src / "Patient.ndjson").write_text("\n".join(lines) + "\n")
    first = run(["load", str(tmp_path / "in"), "--workers", "1"], tmp_path / "home")
    assert first.returncode == 2, first.stderr
    out = first.stderr
    assert "2 created, 0 updated, 0 unchanged, 3 refused" in out
    assert "gp/Patient.ndjson:2" in out and "not valid JSON" in out
    assert "gp/Patient.ndjson:3" in out and "gender" in out
    assert "gp/Patient.ndjson:6" in out and "Spaceship" in out
    assert "banana" not in out  # refusals name the element, never echo the data
    db = tmp_path / "home" / "carelight.db"
    loaded = state(db)["resources"]
    assert set(loaded) == {
        ("Patient", orjson.loads(good[0])["id"]),
        ("Patient", orjson.loads(good[1])["id"]),
    }
    # resources without meta.source are written in their folder's source system's name
    for _, body in loaded.values():
        assert body["meta"]["source"]
    again = run(["load", str(tmp_path / "in"), "--workers", "1"], tmp_path / "home")
    assert "0 created, 0 updated, 2 unchanged, 3 refused" in again.stderr


def test_loading_twice_changes_nothing(tmp_path):
    home = tmp_path / "home"
    assert run(["load", str(example_dir()), "--workers", "2"], home).returncode == 0
    before = state(home / "carelight.db")
    second = run(["load", str(example_dir()), "--workers", "2"], home)
    assert second.returncode == 0
    assert re.search(r"^0 created, 0 updated, \d+ unchanged, 0 refused", second.stderr, re.M)
    assert state(home / "carelight.db") == before


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(sys.platform != "linux", reason="uses SIGKILL")
def test_a_killed_load_run_again_ends_like_one_clean_load(tmp_path):
    data = tmp_path / "synth"
    made = run(["synth", "--people", "60", "--seed", "5", "--out", str(data)], tmp_path / "h0")
    assert made.returncode == 0, made.stderr
    clean = tmp_path / "clean"
    assert run(["load", str(data), "--workers", "1"], clean).returncode == 0
    killed = tmp_path / "killed"
    env = {**os.environ, "CARELIGHT_HOME": str(killed)}
    env.pop("CARELIGHT_DATABASE_URL", None)
    proc = subprocess.Popen([*CARELIGHT, "load", str(data), "--workers", "1", "--batch-size", "50"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    db = killed / "carelight.db"
    deadline = time.monotonic() + 120
    committed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(db, timeout=1) as c:
                committed = c.execute("SELECT count(*) FROM resource").fetchone()[0]
        except sqlite3.Error:
            committed = 0
        if committed >= 200:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the load finished before it could be interrupted"
    workers = _children(proc.pid)
    assert workers, "the load runs its worker in a process of its own"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # The worker (and multiprocessing's helper) end with the loader; none is left behind.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)]
    total = len(state(clean / "carelight.db")["resources"])
    assert 0 < committed < total
    again = run(["load", str(data), "--workers", "1"], killed)
    assert again.returncode == 0, again.stderr
    assert state(db) == state(clean / "carelight.db")
