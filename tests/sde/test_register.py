"""The public register (HTML and JSON agree; drafts are hidden) and the lifecycle API."""

from __future__ import annotations

import re
from html import unescape

from sde_support import project_fields


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _projects(world):
    g = world.governance
    draft = g.create(world.who("researcher"), project_fields(title="A secret draft"))
    submitted = g.create(world.who("researcher"), project_fields(title="Falls in care homes"))
    g.transition(world.who("researcher"), submitted.id, "submit")
    rejected = g.create(
        world.who("researcher2"),
        project_fields(title="Selling data", commercial=True, legal_basis="legitimate-interest",
                       organisation="Acme Analytics Ltd"),
    )  # fmt: skip
    g.transition(world.who("researcher2"), rejected.id, "submit")
    g.transition(world.who("dac"), rejected.id, "reject", "No public benefit shown.")
    exempt = g.create(
        world.who("researcher"),
        project_fields(title="Consented cohort", confidentiality_basis="explicit-consent"),
    )
    g.transition(world.who("researcher"), exempt.id, "submit")
    g.transition(world.who("dac"), exempt.id, "approve", "Consent is in place.")
    return draft, submitted, rejected, exempt


def test_register_lists_every_public_project_and_hides_drafts(world, app_client):
    draft, submitted, rejected, exempt = _projects(world)
    listed = app_client.get("/register/projects.json")
    assert listed.status_code == 200
    projects = listed.json()["projects"]
    assert [p["id"] for p in projects] == [submitted.id, rejected.id, exempt.id]
    by_id = {p["id"]: p for p in projects}
    assert by_id[rejected.id]["status"] == "rejected"
    assert by_id[rejected.id]["decision"]["reason"] == "No public benefit shown."
    assert by_id[rejected.id]["commercial"] is True
    assert by_id[submitted.id]["national_data_opt_outs_applied"] is True
    assert by_id[exempt.id]["national_data_opt_outs_applied"] is False
    for p in projects:
        for key in (
            "organisation",
            "title",
            "lay_summary",
            "purpose",
            "legal_basis",
            "datasets",
            "commercial",
            "start_date",
            "end_date",
            "status",
            "extracts",
        ):
            assert key in p  # fmt: skip
        assert "members" not in p  # the public register names organisations, not people
    # The draft is not announced at all.
    assert app_client.get(f"/register/projects/{draft.id}.json").status_code == 404
    page = app_client.get(f"/register/projects/{draft.id}")
    assert page.status_code == 404 and "A secret draft" not in page.text
    assert "A secret draft" not in app_client.get("/register").text


def test_html_and_json_agree(world, app_client):
    _projects(world)
    page = app_client.get("/register")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "nhsuk" in page.text
    text = _text(page.text)
    for p in app_client.get("/register/projects.json").json()["projects"]:
        assert p["title"] in text and p["organisation"] in text
        one = app_client.get(f"/register/projects/{p['id']}.json").json()
        assert one == p
        html = _text(app_client.get(f"/register/projects/{p['id']}").text)
        for key in (
            "title",
            "lay_summary",
            "purpose",
            "legal_basis",
            "confidentiality_basis",
            "start_date",
            "end_date",
            "status",
            "organisation",
        ):
            assert str(p[key]) in html, key  # fmt: skip
        for d in p["datasets"]:
            assert d["table"] in html
        opt = "National data opt-outs applied " + ("Yes" if p["national_data_opt_outs_applied"]
                                                     else "No")  # fmt: skip
        assert opt in html


def test_the_api_runs_the_lifecycle_with_the_same_rules(world, app_client):
    c = app_client
    made = c.post("/sde/api/projects", json=project_fields(), headers=c.as_("researcher"))
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    assert made.json()["status"] == "draft" and made.json()["members"] == ["researcher"]
    # Another researcher cannot see a draft that is not theirs; the committee can.
    assert c.get(f"/sde/api/projects/{pid}", headers=c.as_("outsider")).status_code == 404
    assert c.get(f"/sde/api/projects/{pid}", headers=c.as_("dac")).status_code == 200
    refused = c.post(f"/sde/api/projects/{pid}/approve", headers=c.as_("dac"))
    assert refused.status_code == 409 and "only when submitted" in refused.json()["error"]
    assert (
        c.post(f"/sde/api/projects/{pid}/submit", headers=c.as_("researcher")).json()["status"]
        == "submitted"
    )
    own = c.post(f"/sde/api/projects/{pid}/approve", headers=c.as_("researcher"))
    assert own.status_code == 403
    approved = c.post(
        f"/sde/api/projects/{pid}/approve", json={"reason": "Fine."}, headers=c.as_("dac")
    )
    assert approved.json()["status"] == "approved"
    # No token, or a role outside the SDE: refused.
    assert c.get("/sde/api/projects").status_code == 401
    acc = c.post(
        "/sde/api/accreditations",
        json={"username": "researcher", "body": "ONS", "valid_from": "2025-01-01",
              "valid_to": "2030-12-31"},
        headers=c.as_("dac"),
    )  # fmt: skip
    assert acc.status_code == 201, acc.text
    active = c.post(f"/sde/api/projects/{pid}/activate", headers=c.as_("dac"))
    assert active.json()["status"] == "active"
    assert c.get(f"/register/projects/{pid}.json").json()["status"] == "active"
    bad = c.post("/sde/api/projects", json={"title": "x"}, headers=c.as_("researcher"))
    assert bad.status_code == 400 and "lay summary" in bad.json()["error"]
