"""Helpers for the browser tests: signing in as a person does, and the accessibility check."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
PASSWORD = "carelight-demo"
ELSEWHERE = re.compile(r"^https?://(?!127\.0\.0\.1[:/])")


def local_only(context):
    """Answer requests to anywhere but this machine with an error, at once. The NHS.UK
    stylesheet names web fonts on assets.nhs.uk, which the pages' Content-Security-Policy
    blocks; with the policy bypassed (to inject axe-core) the browser would wait for them."""
    context.route(ELSEWHERE, lambda route: route.abort())
    return context


def sign_in(page, base: str, username: str, next_path: str = "/care") -> None:
    page.goto(f"{base}/signin?next={next_path}")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{next_path}")


def assert_accessible(page) -> None:
    """No axe-core violations of the WCAG 2.2 A and AA rules on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
    )
    problems = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
    ]
    assert not problems, f"{page.url}:\n" + "\n".join(problems)


def sign_in_patient(page, base: str, nhs_number: str, next_path: str = "/patient") -> None:
    """A patient through the patient app's own sign-in page (NHS number and password)."""
    page.goto(f"{base}/patient/signin?next={next_path}")
    page.fill("#nhs", f"{nhs_number[:3]} {nhs_number[3:6]} {nhs_number[6:]}")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}{next_path}")


def api(base: str, token: str, path: str) -> tuple[int, bytes]:
    """GET an API path with a bearer token: (status, body), errors included."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{base}{path}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def operator_token(base: str, env: dict[str, str], username: str) -> str:
    """A bearer token for an account (``carelight token``, the operator's tool)."""
    import subprocess
    import sys

    script = Path(sys.executable).parent / "carelight"
    done = subprocess.run(
        [str(script), "token", "--user", username],
        env={**env, "CARELIGHT_BASE_URL": f"{base}/fhir"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(env: dict[str, str], port: int, log_path: Path):
    """``carelight serve`` on ``port`` with ``env``, until its FHIR metadata answers; stopped
    (the whole process group) on exit. Yields the base URL."""
    import http.client
    import os
    import signal
    import subprocess
    import sys
    import time

    import pytest

    script = Path(sys.executable).parent / "carelight"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "carelight.cli"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"carelight serve did not start:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                try:
                    conn.request("GET", "/fhir/metadata")
                    if conn.getresponse().status == 200:
                        break
                finally:
                    conn.close()
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
