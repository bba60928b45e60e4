"""Browser tests: a real ``carelight serve`` over the small synthetic population, driven by
Playwright in Debian's Chromium (``/usr/bin/chromium``; Playwright's own browser download is
not used). Outside CI a missing browser or Playwright skips these tests with the reason; under
``CI=true`` it fails them.

Helpers are in ``browser_support``: ``sign_in(page, base, username)`` and
``assert_accessible(page)`` (axe-core, WCAG 2.2 A and AA rules, injected from ``node_modules``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import AXE, free_port, local_only, serving

from care_support import CarePopulation, skip_or_fail


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else found
    return None


@pytest.fixture(scope="session")
def care_server(care_population: CarePopulation, tmp_path_factory) -> Iterator[str]:
    """``carelight serve`` on a free port over the care population; its base URL."""
    port = free_port()
    env = {**care_population.env, "CARELIGHT_BASE_URL": f"http://127.0.0.1:{port}/fhir"}
    log_path = tmp_path_factory.mktemp("care-server") / "serve.log"
    with serving(env, port, log_path) as base:
        yield base


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
