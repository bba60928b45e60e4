"""Browser tests: a real ``carelight serve`` over the small synthetic population, driven by
Playwright in Debian's Chromium (``/usr/bin/chromium``; Playwright's own browser download is
not used). Outside CI a missing browser or Playwright skips these tests with the reason; under
``CI=true`` it fails them.

Helpers are in ``browser_support``: ``sign_in(page, base, username)`` and
``assert_accessible(page)`` (axe-core, WCAG 2.2 A and AA rules, injected from ``node_modules``).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import AXE, local_only

from care_support import CarePopulation, skip_or_fail


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else found
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def care_server(care_population: CarePopulation, tmp_path_factory) -> Iterator[str]:
    """``carelight serve`` on a free port over the care population; its base URL."""
    port = free_port()
    env = {**care_population.env, "CARELIGHT_BASE_URL": f"http://127.0.0.1:{port}/fhir"}
    script = Path(sys.executable).parent / "carelight"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "carelight.cli"]
    log_path = tmp_path_factory.mktemp("care-server") / "serve.log"
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


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    if executable is None:
        skip_or_fail("Chromium not found: run `make test` (as root it apt-gets chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("Playwright for Python is not installed: run `make test`")
    if not AXE.exists():
        skip_or_fail("axe-core is not installed (node_modules): run `make test`")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    # axe-core is injected as a script, which the pages' Content-Security-Policy forbids.
    ctx = local_only(browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900}))
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page
