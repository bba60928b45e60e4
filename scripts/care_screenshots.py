"""Screenshots of the shared care record's and the patient app's main pages for the docs
(docs/screenshots/*.png; the patient app's on a phone-sized screen, as ``patient-*.png``).

Serves the small synthetic population ``bench/care.py --quick`` builds (building it when
missing) and drives Debian's Chromium with Playwright:

    .venv/bin/python scripts/care_screenshots.py
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.care import _env, build, record_sizes  # noqa: E402
from bench.run import carelight_command, free_port, stop_process_group  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    home, out = build(200, 1)
    sizes = record_sizes(out)
    # Someone adult social care knows too, so the summary shows every kind of source.
    council = (out / "X99LB" / "Patient.ndjson").read_text()
    known = {nhs: v for nhs, v in sizes.items() if nhs in council}
    nhs_number, (patient_id, _) = min(known.items(), key=lambda kv: abs(kv[1][1] - 300))
    # Not seen by the nurse's trust; a different person each run (an earlier run's break-glass
    # grant lasts hours).
    trust = (out / "X9A" / "Patient.ndjson").read_text()
    strangers = sorted(pid for nhs, (pid, n) in sizes.items() if n < 80 and nhs not in trust)
    stranger = random.choice(strangers)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env({"CARELIGHT_HOME": str(home), "CARELIGHT_BASE_URL": f"{base}/fhir"})
    proc = subprocess.Popen(
        [*carelight_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    patient_account(env, nhs_number)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/fhir/metadata").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])

            first = browser.new_page(viewport={"width": 1280, "height": 700})
            first.goto(f"{base}/signin?next=/care")
            first.screenshot(path=str(OUT / "signin.png"))
            print("docs/screenshots/signin.png")

            def session(username: str):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"{base}/signin?next=/care")
                page.fill("#username", username)
                page.fill("#password", "carelight-demo")
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}/care")
                return page

            def shot(page, name: str, full: bool = True) -> None:
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=full)
                print(f"docs/screenshots/{name}.png")

            gp = session("gp")
            shot(gp, "find", full=False)
            gp.goto(f"{base}/care/patient/{patient_id}")
            shot(gp, "summary")
            gp.goto(f"{base}/care/patient/{patient_id}/timeline")
            shot(gp, "timeline", full=False)
            gp.goto(f"{base}/care/patient/{patient_id}/results")
            shot(gp, "results", full=False)
            worker = session("socialworker")
            worker.goto(f"{base}/care/patient/{patient_id}/record/assessment")
            shot(worker, "assessment")
            nurse = session("nurse")
            nurse.goto(f"{base}/care/patient/{stranger}")
            shot(nurse, "refused", full=False)
            nurse.fill("#reason", "Collapsed in A&E; need allergies and current medicines")
            nurse.click("text=Break glass and open the record")
            nurse.wait_for_url(f"{base}/care/patient/{stranger}")
            shot(nurse, "break-glass", full=False)
            patient_shots(browser, base, nhs_number, shot)
            browser.close()
    finally:
        stop_process_group(proc)
    return 0


def patient_account(env: dict[str, str], nhs_number: str) -> None:
    """The person in the screenshots signs in to the patient app (an account if they have none)."""
    listed = subprocess.run(
        [*carelight_command(), "users", "list"], env=env, capture_output=True, text=True
    )
    if nhs_number not in listed.stdout:
        subprocess.run(
            [*carelight_command(), "users", "add", nhs_number, "--role", "patient",
             "--password-stdin"],
            input="carelight-demo", env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip


def patient_shots(browser, base: str, nhs_number: str, shot) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(f"{base}/patient/signin")
    shot(page, "patient-signin", full=False)
    page.fill("#nhs", nhs_number)
    page.fill("#password", "carelight-demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/patient")
    shot(page, "patient-home")
    page.goto(f"{base}/patient/record")
    shot(page, "patient-record", full=False)
    page.goto(f"{base}/patient/record/results")
    shot(page, "patient-results", full=False)
    page.goto(f"{base}/patient/accesses")
    shot(page, "patient-accesses", full=False)
    page.locator(".app-accesses .app-entry").first.get_by_role("link").click()
    shot(page, "patient-verified", full=False)
    page.goto(f"{base}/patient/choices")
    page.check("#research-opt-out")
    page.check("#planning")
    page.click("text=Save my choices")
    page.wait_for_url(f"{base}/patient/choices?saved=1")
    shot(page, "patient-choices", full=False)
    page.check("#research")  # as it was
    page.click("text=Save my choices")


if __name__ == "__main__":
    sys.exit(main())
