"""From project application to released table, in a real browser on a real server: a
researcher applies, the data access committee approves, accredits and activates, the research
store is extracted, the researcher's job runs on dummy then real data in the sandbox, two
output checkers vote blind, and the researcher downloads the released table, which has no
count of 7 or fewer and every count a multiple of 5. axe-core checks each kind of page.

Its own small population and server (not the care tests' shared one): the extract takes
every patient who has not opted out, which would change what those tests' patients see.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import time
import urllib.request
from pathlib import Path

import pytest
from browser_support import (
    assert_accessible,
    free_port,
    local_only,
    serving,
    sign_in,
    sign_in_patient,
)

from care_support import carelight

DEFINITION = """\
from carelight.sde.query import create_dataset, tables

dataset = create_dataset()
dataset.define_population(tables.patients.exists_for_patient())
dataset.sex = tables.patients.sex
dataset.date_of_birth = tables.patients.date_of_birth
"""
SCRIPT = """\
import os
import pandas as pd

data = pd.read_csv(os.environ["CARELIGHT_DATASET"])
data["decade_of_birth"] = data["date_of_birth"].str[:3] + "0s"
counts = data.groupby(["sex", "decade_of_birth"]).size().reset_index(name="count")
counts.to_csv(os.path.join(os.environ["CARELIGHT_OUTPUTS"], "counts.csv"), index=False)
"""


@pytest.fixture(scope="module")
def sde_server(tmp_path_factory):
    """A population of 120 people, the demo accounts, and ``carelight serve`` over them:
    (base URL, environment)."""
    root = tmp_path_factory.mktemp("sde-e2e")
    env = {**os.environ, "CARELIGHT_HOME": str(root / "home")}
    env.pop("CARELIGHT_DATABASE_URL", None)
    carelight("synth", "--people", "120", "--seed", "11", "--out", str(root / "synth"), env=env)
    carelight("load", str(root / "synth"), env=env)
    carelight("users", "seed-demo", env=env)
    port = free_port()
    env["CARELIGHT_BASE_URL"] = f"http://127.0.0.1:{port}/fhir"
    with serving(env, port, root / "serve.log") as base:
        yield base, env


def _screenshot(page, name: str) -> None:
    """With CARELIGHT_SCREENSHOTS=DIR, keep a picture of the page for the docs."""
    folder = os.environ.get("CARELIGHT_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def _person(browser, base: str, username: str):
    context = local_only(
        browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base, username, "/sde")
    return context, page


def _wait_for_job(page, url: str, timeout: float = 240.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        status = page.inner_text("#job-status").strip()
        if status in ("succeeded", "failed") or time.monotonic() > deadline:
            return status
        time.sleep(1.0)


def _extract(env: dict[str, str], project_id: int, monkeypatch) -> list[tuple[str, bool]]:
    """sdeg's extract, in this process, over the server's database (as the operator runs
    ``carelight sde extract``); the demo patients' NHS numbers and whether each was included."""
    from sqlalchemy import select

    from carelight.sde.cli import _Opened
    from carelight.sde.extract import run_extract
    from carelight.sde.tables import sde_extract_person as XP

    monkeypatch.setenv("CARELIGHT_HOME", env["CARELIGHT_HOME"])
    monkeypatch.delenv("CARELIGHT_DATABASE_URL", raising=False)
    opened = _Opened()
    try:
        result = run_extract(opened.store, opened.trail, opened.settings, project_id)
        patients = [a for a in opened.accounts.list() if a.role == "patient"]
        with opened.store.engine.connect() as conn:
            ids = set(conn.execute(select(XP.c.patient_id)).scalars())
        included = [(a.username, a.patient_id in ids) for a in patients]
    finally:
        opened.close()
    assert result.people > 0 and included
    return included


def _vote(browser, base: str, checker: str, decision: str, comment: str) -> str:
    context, page = _person(browser, base, checker)
    try:
        page.goto(f"{base}/sde/review")
        page.get_by_role("link", name="counts.csv").click()
        assert "count" in page.inner_text("#safe-file")  # the safe version, as a table
        _screenshot(page, f"sde-review-{checker}.png")
        assert "You will see the other checker's vote" in page.inner_text("main")
        assert_accessible(page)
        page.check(f"#decision-{decision}")
        page.fill("#comment", comment)
        page.get_by_role("button", name="Record my vote").click()
        page.wait_for_url("**/voted")
        return page.inner_text("main")
    finally:
        context.close()


def test_from_project_application_to_released_table(browser, sde_server, monkeypatch):
    base, env = sde_server
    today = dt.date.today()

    # The researcher applies for a project and submits it.
    researcher, page = _person(browser, base, "researcher")
    assert_accessible(page)
    page.get_by_role("link", name="Apply for a project").click()
    page.fill("#title", "Men and women in the practice population")
    page.fill("#organisation", "University of Brackenfold")
    page.fill("#start_date", (today - dt.timedelta(days=30)).isoformat())
    page.fill("#end_date", (today + dt.timedelta(days=365)).isoformat())
    page.fill("#lay_summary", "How many men and women are registered, to plan services.")
    page.fill("#purpose", "To count the practice population by sex.")
    page.check("#table_patients")
    assert_accessible(page)
    _screenshot(page, "sde-apply.png")
    page.get_by_role("button", name="Create the draft").click()
    page.wait_for_url("**/sde/projects/*")
    project_id = int(page.url.rsplit("/", 1)[1])
    page.get_by_role("button", name="Submit to the data access committee").click()
    page.wait_for_url(f"**/sde/projects/{project_id}")
    assert "submitted" in page.inner_text("main")

    # The committee approves, accredits the researcher and activates the project.
    dac, dpage = _person(browser, base, "dac")
    assert "Men and women in the practice population" in dpage.inner_text("main")
    assert_accessible(dpage)
    dpage.get_by_role("link", name="Men and women in the practice population").click()
    dpage.fill("#approve-reason", "A clear public benefit; only counts leave.")
    dpage.get_by_role("button", name="Approve").click()
    dpage.goto(f"{base}/sde/accreditations")
    dpage.fill("#username", "researcher")
    dpage.fill("#body", "Office for Research Accreditation")
    dpage.fill("#valid_from", (today - dt.timedelta(days=1)).isoformat())
    dpage.fill("#valid_to", (today + dt.timedelta(days=365)).isoformat())
    assert_accessible(dpage)
    dpage.get_by_role("button", name="Record accreditation").click()
    dpage.goto(f"{base}/sde/projects/{project_id}")
    dpage.get_by_role("button", name="Activate the project").click()
    assert "active" in dpage.inner_text("main")
    dac.close()

    # The research store is extracted (the operator's step).
    included = _extract(env, project_id, monkeypatch)

    # A demo patient sees the project on "how my data is used", and whether they were in it.
    nhs_number, was_included = next((i for i in included if i[1]), included[0])
    assert was_included, "no demo patient's record was in the extract"
    patient_context = local_only(browser.new_context(bypass_csp=True))
    ppage = patient_context.new_page()
    sign_in_patient(ppage, base, nhs_number, "/patient/data-use")
    assert "Men and women in the practice population" in ppage.inner_text("#projects")
    assert_accessible(ppage)
    patient_context.close()

    # The researcher's job runs on dummy data, then the same code on real data.
    page.goto(f"{base}/sde/projects/{project_id}")
    page.fill("#job-title", "Counts by sex")
    page.fill("#definition", DEFINITION)
    page.fill("#script", SCRIPT)
    assert_accessible(page)
    page.get_by_role("button", name="Run on dummy data").click()
    page.wait_for_url("**/sde/jobs/*")
    dummy_url = page.url
    assert _wait_for_job(page, dummy_url) == "succeeded", page.inner_text("main")
    assert_accessible(page)
    page.get_by_role("button", name="Run the same code on real data").click()
    page.wait_for_url("**/sde/jobs/*")
    real_url = page.url
    assert real_url != dummy_url
    assert _wait_for_job(page, real_url) == "succeeded", page.inner_text("main")
    assert "pending" in page.inner_text("main")
    _screenshot(page, "sde-job.png")

    # Two checkers vote, blind: the first does not see a decision; the second approves too.
    first = _vote(browser, base, "checker1", "approve", "Small counts redacted; safe.")
    assert "pending" in first
    second = _vote(browser, base, "checker2", "approve", "Agreed: only rounded counts.")
    assert "approved" in second and "Small counts redacted; safe." in second

    # The researcher downloads the released table: no count of 7 or fewer, all multiples of 5.
    page.goto(f"{base}/sde")
    _screenshot(page, "sde-researcher.png")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download counts.csv").click()
    text = Path(download.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    counts = [r["count"].strip() for r in rows]
    numbers = [int(c) for c in counts if c.isdigit()]
    assert numbers and len(numbers) < len(counts), text  # some cells were small: redacted
    assert all(n > 7 and n % 5 == 0 for n in numbers), text
    assert all(c.isdigit() or not any(ch.isdigit() for ch in c) for c in counts), text
    researcher.close()

    # The public sees both jobs and the release, with no contents.
    with urllib.request.urlopen(f"{base}/register/projects/{project_id}.json") as answer:
        entry = json.loads(answer.read())
    assert [j["data"] for j in entry["jobs"]] == ["dummy", "real"]
    assert [r["file"] for r in entry["releases"]] == ["counts.csv"]
    with urllib.request.urlopen(f"{base}/register/releases.json") as answer:
        assert any(r["project"] == project_id for r in json.loads(answer.read())["releases"])
