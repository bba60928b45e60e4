"""Every route out: the API, the /sde pages and the CLI. A row-level output has no way out,
a release goes only to the project's members, the checker's pages are blind, and every job
and release is in the public register."""

from __future__ import annotations

import html
import re

import pytest
from records_support import DEFINITION, SCRIPT, active_project, research_store
from typer.testing import CliRunner

from carelight.apps.sde.services import jobs_of, queue_of

PASSWORD = "correct horse battery"


def csrf_of(page: str) -> str:
    return html.unescape(re.search(r'name="csrf" value="([^"]*)"', page).group(1))


def sign_in(web, username: str) -> None:
    web.cookies.clear()
    page = web.get("/signin", params={"next": "/sde"})
    form = {"csrf": csrf_of(page.text), "next": "/sde", "username": username, "password": PASSWORD}
    assert web.post("/signin", data=form, follow_redirects=False).status_code == 303


def post(web, path: str, form: dict, from_page: str = "/sde"):
    token = csrf_of(web.get(from_page).text)
    return web.post(path, data={"csrf": token, **form}, follow_redirects=False)


@pytest.fixture
def ran_by_web(world, app_client):
    """A project run through the pages: a job on dummy then real data, outputs pending."""
    world.accounts.create("checker2", "output-checker", password=PASSWORD)
    p = active_project(world)
    app = app_client.app
    jobs = jobs_of(app)
    research_store(world, jobs, p.id)
    sign_in(app_client, "researcher")
    page = app_client.get(f"/sde/projects/{p.id}")
    assert page.status_code == 200 and "Submit a job" in page.text
    sent = post(app_client, f"/sde/projects/{p.id}/jobs",
                {"title": "Counts", "definition": DEFINITION, "script": SCRIPT},
                f"/sde/projects/{p.id}")  # fmt: skip
    assert sent.status_code == 303
    dummy_id = int(sent.headers["location"].rsplit("/", 1)[1])
    assert queue_of(app).wait(dummy_id).status == "succeeded"
    sent = post(app_client, f"/sde/jobs/{dummy_id}/real", {}, f"/sde/jobs/{dummy_id}")
    real_id = int(sent.headers["location"].rsplit("/", 1)[1])
    assert queue_of(app).wait(real_id).status == "succeeded"
    outputs = {o.path: o for o in jobs.outputs(real_id)}
    return p, jobs, real_id, outputs


def test_the_pages_take_a_job_through_checking_to_a_release(world, app_client, ran_by_web):
    p, _jobs, real_id, outputs = ran_by_web
    page = app_client.get(f"/sde/jobs/{real_id}")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "people.csv" in page.text and "stays inside" in page.text
    counts = outputs["counts.csv"].id
    # The first checker sees the safe file and votes; the second cannot see that vote.
    sign_in(app_client, "checker1")
    queue = app_client.get("/sde/review")
    assert f"/sde/review/{counts}" in queue.text
    shown = app_client.get(f"/sde/review/{counts}")
    assert "[REDACTED]" in shown.text and ">23<" not in shown.text
    refused = post(app_client, f"/sde/review/{counts}", {"decision": "approve", "comment": ""},
                   f"/sde/review/{counts}")  # fmt: skip
    assert refused.status_code == 200 and "Give a comment" in refused.text
    voted = post(app_client, f"/sde/review/{counts}",
                 {"decision": "approve", "comment": "Safe: small counts redacted."},
                 f"/sde/review/{counts}")  # fmt: skip
    assert voted.status_code == 303
    sign_in(app_client, "checker2")
    blind = app_client.get(f"/sde/review/{counts}")
    assert "Safe: small counts redacted." not in blind.text and "checker1" not in blind.text
    post(app_client, f"/sde/review/{counts}", {"decision": "approve", "comment": "Agreed."},
         f"/sde/review/{counts}")  # fmt: skip
    after = app_client.get(f"/sde/review/{counts}/voted")
    assert "Safe: small counts redacted." in after.text and "approved" in after.text
    # The researcher downloads the released, safe table.
    sign_in(app_client, "researcher")
    (release_id,) = re.findall(r"/sde/releases/(\d+)/download", app_client.get("/sde").text)
    got = app_client.get(f"/sde/releases/{release_id}/download")
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    assert b"[REDACTED]" in got.content and b",5\n" not in got.content
    # Nobody else downloads it, through the pages or the API.
    for name in ("outsider", "checker1", "dac"):
        sign_in(app_client, name)
        assert app_client.get(f"/sde/releases/{release_id}/download").status_code in (403, 404)
        api = app_client.get(f"/sde/api/releases/{release_id}/download",
                             headers=app_client.as_(name))  # fmt: skip
        assert api.status_code == 403 and b"female" not in api.content
    ok = app_client.get(f"/sde/api/releases/{release_id}/download",
                        headers=app_client.as_("researcher"))  # fmt: skip
    assert ok.status_code == 200 and ok.content == got.content
    # The public register lists the jobs and the release, with no output contents.
    app_client.cookies.clear()
    jobs_json = app_client.get("/register/jobs.json").json()["jobs"]
    assert {j["id"] for j in jobs_json} == {real_id - 1, real_id}
    assert {j["status"] for j in jobs_json} == {"succeeded"}
    releases_json = app_client.get("/register/releases.json").json()["releases"]
    assert [(r["file"], r["approved_by"]) for r in releases_json] == [
        ("counts.csv", ["checker1", "checker2"])
    ]
    entry = app_client.get(f"/register/projects/{p.id}.json").json()
    assert len(entry["jobs"]) == 2 and len(entry["releases"]) == 1
    public_page = app_client.get(f"/register/projects/{p.id}").text
    assert "Released outputs" in public_page and "counts.csv" in public_page
    assert "female" not in public_page and "Agreed." not in public_page


def test_a_row_level_output_has_no_route_out(world, app_client, ran_by_web, monkeypatch):
    _p, _jobs, real_id, outputs = ran_by_web
    people = outputs["people.csv"]
    assert people.kind == "row_level"
    for name in ("researcher", "checker1", "checker2", "dac", "admin"):
        headers = app_client.as_(name)
        for path in (f"/sde/api/review/{people.id}", f"/sde/api/releases/{people.id}/download"):
            got = app_client.get(path, headers=headers)
            assert got.status_code in (403, 404), (name, path)
            assert b"dummy" not in got.content and b",female" not in got.content
        voted = app_client.post(f"/sde/api/review/{people.id}", headers=headers,
                                json={"decision": "approve", "comment": "out"})  # fmt: skip
        assert voted.status_code in (403, 409)
        sign_in(app_client, name)
        for path in (f"/sde/review/{people.id}", f"/sde/releases/{people.id}/download"):
            got = app_client.get(path)
            assert got.status_code in (403, 404), (name, path)
            assert "patient_id" not in got.text
    # Nor through the command line.
    from carelight.cli import app as cli

    monkeypatch.setenv("CARELIGHT_HOME", str(world.settings.home))
    monkeypatch.setenv(
        "CARELIGHT_DATABASE_URL", world.store.engine.url.render_as_string(hide_password=False)
    )
    runner = CliRunner()
    for args in (
        ["sde", "review", "show", str(people.id), "--as", "checker1"],
        ["sde", "review", "vote", str(people.id), "--as", "checker1", "--decision", "approve",
         "--comment", "out"],
        ["sde", "release", "download", str(people.id), "--as", "researcher", "--out",
         str(world.settings.home / "out")],
    ):  # fmt: skip
        result = runner.invoke(cli, args)
        assert result.exit_code != 0, args
        assert "patient_id" not in result.output
    assert not (world.settings.home / "out").exists()
    # The CLI lists the job and its row-level output's kind, never its contents.
    shown = runner.invoke(cli, ["sde", "job", "show", str(real_id), "--as", "researcher"])
    assert shown.exit_code == 0 and '"kind": "row_level"' in shown.output
    assert ",female" not in shown.output and ",male" not in shown.output


def test_the_api_is_blind_and_refuses_jobs_to_non_members(world, app_client, ran_by_web):
    p, _jobs, _real_id, outputs = ran_by_web
    counts = outputs["counts.csv"].id
    one, two = app_client.as_("checker1"), app_client.as_("checker2")
    assert app_client.post(f"/sde/api/review/{counts}", headers=one,
                           json={"decision": "reject", "comment": "A cell of 10 is near."}
                           ).status_code == 201  # fmt: skip
    seen = app_client.get(f"/sde/api/review/{counts}", headers=two).json()
    assert seen["votes"] == [] and "[REDACTED]" in seen["safe_content"]
    assert [v["checker"] for v in app_client.get(f"/sde/api/review/{counts}", headers=one)
            .json()["votes"]] == ["checker1"]  # fmt: skip
    again = app_client.post(f"/sde/api/review/{counts}", headers=one,
                            json={"decision": "approve", "comment": "Hmm."})  # fmt: skip
    assert again.status_code == 409
    mine = app_client.post(f"/sde/api/review/{counts}", headers=app_client.as_("researcher"),
                           json={"decision": "approve", "comment": "Mine."})  # fmt: skip
    assert mine.status_code == 403
    refused = app_client.post("/sde/api/jobs", headers=app_client.as_("outsider"),
                              json={"project": p.id, "title": "x", "definition": DEFINITION,
                                    "script": SCRIPT})  # fmt: skip
    assert refused.status_code == 403 and "not a member" in refused.json()["error"]
    listed = app_client.get("/sde/api/jobs", headers=app_client.as_("outsider")).json()
    assert listed["jobs"] == []
