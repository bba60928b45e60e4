"""Helpers for the browser tests: signing in as a person does, and the accessibility check."""

from __future__ import annotations

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
