"""Fixtures for the job sandbox tests: a research store, a fake CARELIGHT_HOME with things a
job must never see, and code submissions. Helpers are in jobs_support.py.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from jobs_support import PEOPLE, FakeHome, namespace_capabilities

from carelight.sde.jobs.capabilities import Capabilities


@pytest.fixture(params=["bwrap", "unshare"])
def ns_caps(request) -> Capabilities:
    """Each namespace backend in turn: the isolation tests must pass on both."""
    return namespace_capabilities(request.param)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A small research store: research.duckdb and parquet/patients.parquet."""
    root = tmp_path / "store"
    (root / "parquet").mkdir(parents=True)
    con = duckdb.connect(str(root / "research.duckdb"))
    con.execute(
        "CREATE TABLE patients AS SELECT "
        "sha256('p' || i::VARCHAR)[:32] AS patient_id, "
        "CASE WHEN i % 3 = 0 THEN 'female' ELSE 'male' END AS sex, "
        "1930 + (i * 7) % 70 AS birth_year, "
        "(i * 13) % 100 / 10.0 AS hba1c "
        f"FROM range({PEOPLE}) t(i)"
    )
    con.execute(f"COPY patients TO '{root}/parquet/patients.parquet' (FORMAT parquet)")
    con.close()
    return root


@pytest.fixture
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHome]:
    token = "planted-" + secrets.token_hex(8)
    root = tmp_path / "home"
    files = {
        "operational database": root / "carelight.db",
        "signing key": root / "keys" / "token-signing.pem",
        "another job's output": root / "sde" / "jobs" / "other" / "runs" / "real" / "rows.csv",
        "another job's code": root / "sde" / "jobs" / "other" / "code" / "analysis.py",
    }
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(token)
        path.chmod(0o644)  # readable by anyone: only the sandbox view may keep it out
    # /root as well, when we may write there: the runner's own home.
    if os.access("/root", os.W_OK):
        planted = Path("/root") / f".carelight-sandbox-probe-{secrets.token_hex(4)}"
        planted.write_text(token)
        files["/root"] = planted
    monkeypatch.setenv("CARELIGHT_HOME", str(root))
    monkeypatch.setenv("CARELIGHT_TEST_SECRET", token)
    yield FakeHome(root, files, token)
    files.get("/root", Path("/nonexistent")).unlink(missing_ok=True)


@pytest.fixture
def write_code(tmp_path: Path):
    """Write a definition and a script into a submission folder; returns their paths."""

    def write(script: str, definition: str = "TABLE = 'patients'\n", name: str = "sub"):
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        (folder / "definition.py").write_text(definition)
        (folder / "analysis.py").write_text(script)
        return folder / "definition.py", folder / "analysis.py"

    return write
