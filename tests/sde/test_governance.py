"""The project lifecycle: every allowed transition works and is logged; every forbidden one is
refused with a clear error and changes nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from sde_support import project_fields, snapshot

from carelight.sde.governance import (
    Conflict,
    GovernanceError,
    NotAllowed,
    NotFound,
    accredit,
    accreditations,
)


def _accredit(world, *names):
    for name in names:
        accredit(
            world.store.engine, world.trail, world.who("dac"), name, "Office for National "
            "Statistics", "2025-01-01", "2030-12-31",
        )  # fmt: skip


def _approved(world):
    g = world.governance
    p = g.create(world.who("researcher"), project_fields(members=["researcher2"]))
    g.transition(world.who("researcher"), p.id, "submit")
    return g.transition(world.who("dac"), p.id, "approve", "Meets the criteria.")


def test_the_whole_lifecycle_is_recorded_and_logged(world):
    g = world.governance
    size_before = world.trail.log.size()
    p = g.create(world.who("researcher"), project_fields(members=["researcher2"]))
    assert p.status == "draft" and p.owner == "researcher"
    assert p.members == ("researcher", "researcher2")
    assert p.tables == ("patients", "admissions", "care_packages")
    assert p.opt_outs_apply
    p = g.transition(world.who("researcher2"), p.id, "submit")
    assert p.status == "submitted"
    p = g.transition(world.who("dac"), p.id, "approve", "Meets the criteria.")
    assert p.status == "approved" and p.decision_reason == "Meets the criteria."
    _accredit(world, "researcher", "researcher2")
    p = g.transition(world.who("admin"), p.id, "activate")
    assert p.status == "active"
    p = g.transition(world.who("researcher"), p.id, "close")
    assert p.status == "closed"
    assert [e.transition for e in p.events] == ["create", "submit", "approve", "activate", "close"]
    assert [e.to_status for e in p.events] == ["draft", "submitted", "approved", "active", "closed"]
    assert [e.actor for e in p.events] == [
        "researcher",
        "researcher2",
        "dac",
        "admin",
        "researcher",
    ]
    assert all(e.at > 0 for e in p.events)
    # Each change and each accreditation is one log entry, about the project, never a patient.
    assert world.trail.log.size() == size_before + 7
    for e in p.events:
        entry = orjson.loads(world.trail.log.leaf(e.log_index))
        assert entry["subtype"][-1]["code"] == "sde-project"
        assert {"what": {"reference": f"ResearchStudy/sde-project-{p.id}"}}.items() <= {
            "what": entry["entity"][0]["what"]
        }.items()
        assert not any(
            x.get("what", {}).get("reference", "").startswith("Patient/") for x in entry["entity"]
        )


FORBIDDEN = [
    # (state to reach, who, transition, error, words in the message)
    ("draft", "dac", "approve", Conflict, "only when submitted"),
    ("draft", "researcher", "activate", NotAllowed, "data-access-committee"),
    ("draft", "outsider", "submit", NotAllowed, "not a member"),
    ("draft", "dac", "submit", NotAllowed, "Only the researcher"),
    ("submitted", "researcher", "approve", NotAllowed, "Only the data-access-committee"),
    ("submitted", "checker1", "reject", NotAllowed, "your role is output-checker"),
    ("submitted", "dac", "reject", GovernanceError, "give a reason"),
    ("submitted", "researcher", "submit", Conflict, "only when draft"),
    ("submitted", "dac", "activate", Conflict, "only when approved"),
    ("approved", "dac", "approve", Conflict, "only when submitted"),
    ("approved", "dac", "activate", Conflict, "Not accredited"),
    ("approved", "outsider", "close", NotAllowed, "not a member"),
    ("rejected", "dac", "approve", Conflict, "only when submitted"),
    ("rejected", "researcher", "submit", Conflict, "only when draft"),
    ("closed", "dac", "activate", Conflict, "only when approved"),
    ("closed", "researcher", "close", Conflict, "only when approved or active"),
]


def _reach(world, state):
    g = world.governance
    p = g.create(world.who("researcher"), project_fields())
    steps = {
        "draft": [],
        "submitted": [("researcher", "submit", None)],
        "approved": [("researcher", "submit", None), ("dac", "approve", None)],
        "rejected": [("researcher", "submit", None), ("dac", "reject", "Not in the public "
                     "interest.")],
        "closed": [("researcher", "submit", None), ("dac", "approve", None),
                   ("dac", "close", None)],
    }  # fmt: skip
    for who, name, reason in steps[state]:
        p = g.transition(world.who(who), p.id, name, reason)
    assert p.status == state
    return p


@pytest.mark.parametrize(("state", "who", "name", "error", "words"), FORBIDDEN)
def test_forbidden_transitions_are_refused_and_change_nothing(
    world, state, who, name, error, words
):
    p = _reach(world, state)
    before = snapshot(world.store.engine, p.id)
    size = world.trail.log.size()
    with pytest.raises(error) as caught:
        world.governance.transition(world.who(who), p.id, name, None)
    assert words in caught.value.message
    assert snapshot(world.store.engine, p.id) == before
    assert world.trail.log.size() == size


def test_unknown_transition_and_project(world):
    p = _reach(world, "draft")
    with pytest.raises(GovernanceError, match="Unknown transition 'publish'"):
        world.governance.transition(world.who("dac"), p.id, "publish")
    with pytest.raises(NotFound, match="no project 999"):
        world.governance.transition(world.who("dac"), 999, "approve")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"tables": ["patients", "gp_notes"]}, "no research table 'gp_notes'"),
        ({"legal_basis": "because"}, "Unknown legal basis"),
        ({"confidentiality_basis": "vibes"}, "common-law duty of confidentiality"),
        ({"start_date": "2027-01-01", "end_date": "2026-01-01"}, "is before start_date"),
        ({"start_date": "next week"}, "YYYY-MM-DD"),
        ({"title": "  "}, "needs a title"),
        ({"commercial": "yes"}, "true or false"),
        ({"members": ["dac"]}, "not a researcher"),
        ({"members": ["nobody"]}, "no account 'nobody'"),
        ({"nhs_number": "9990000000"}, "Unknown project field"),
    ],
)
def test_bad_project_fields_are_refused(world, change, words):
    with pytest.raises(GovernanceError, match=words):
        world.governance.create(world.who("researcher"), project_fields(**change))
    assert world.governance.list() == []


def test_only_researchers_create_projects(world):
    with pytest.raises(NotAllowed, match="Only researchers create projects"):
        world.governance.create(world.who("dac"), project_fields())


def test_opt_outs_apply_unless_the_basis_exempts_the_use(world):
    g, me = world.governance, world.who("researcher")
    assert g.create(me, project_fields()).opt_outs_apply
    assert not g.create(me, project_fields(confidentiality_basis="explicit-consent")).opt_outs_apply
    assert not g.create(me, project_fields(legal_basis="legal-requirement")).opt_outs_apply


def test_a_draft_can_be_edited_by_its_members_only_and_only_while_a_draft(world):
    g = world.governance
    p = _reach(world, "draft")
    p = g.edit(world.who("researcher"), p.id, {"title": "A better title", "commercial": True})
    assert p.title == "A better title" and p.commercial
    with pytest.raises(NotAllowed):
        g.edit(world.who("outsider"), p.id, {"title": "Mine now"})
    g.transition(world.who("researcher"), p.id, "submit")
    with pytest.raises(Conflict, match="only a draft can be changed"):
        g.edit(world.who("researcher"), p.id, {"title": "Too late"})
    assert g.get(p.id).title == "A better title"


def test_accreditation_is_recorded_and_checked(world):
    engine, trail = world.store.engine, world.trail
    with pytest.raises(NotAllowed, match="data access committee"):
        accredit(engine, trail, world.who("researcher"), "researcher", "ONS", "2025-01-01",
                 "2030-01-01")  # fmt: skip
    with pytest.raises(GovernanceError, match="only researchers are accredited"):
        accredit(engine, trail, world.who("dac"), "checker1", "ONS", "2025-01-01", "2030-01-01")
    with pytest.raises(GovernanceError, match="is before valid_from"):
        accredit(engine, trail, world.who("dac"), "researcher", "ONS", "2030-01-01", "2025-01-01")
    a = accredit(engine, trail, world.who("admin"), "Researcher", "ONS", "2025-01-01", "2030-12-31")
    assert (a.username, a.body, a.recorded_by) == ("researcher", "ONS", "admin")
    assert a.valid_on(dt.date(2026, 6, 1)) and not a.valid_on(dt.date(2031, 1, 1))
    assert accreditations(engine, "researcher") == [a]
    entry = orjson.loads(trail.log.leaf(a.log_index))
    assert entry["subtype"][-1]["code"] == "sde-accredit"


def test_only_accredited_researchers_join_an_active_project(world):
    g = world.governance
    p = _approved(world)
    _accredit(world, "researcher")
    # researcher2 is a member but not accredited: the project cannot start.
    with pytest.raises(Conflict, match=r"Not accredited on .*: researcher2"):
        g.transition(world.who("dac"), p.id, "activate")
    assert g.get(p.id).status == "approved"
    # An accreditation that has lapsed does not count either.
    accredit(world.store.engine, world.trail, world.who("dac"), "researcher2", "ONS",
             "2020-01-01", "2021-01-01")  # fmt: skip
    with pytest.raises(Conflict, match="researcher2"):
        g.transition(world.who("dac"), p.id, "activate")
    _accredit(world, "researcher2")
    p = g.transition(world.who("dac"), p.id, "activate")
    assert p.status == "active"
    with pytest.raises(Conflict, match=r"Not accredited .*: outsider"):
        g.add_member(world.who("researcher"), p.id, "outsider")
    assert "outsider" not in g.get(p.id).members
    _accredit(world, "outsider")
    assert "outsider" in g.add_member(world.who("researcher"), p.id, "outsider").members
