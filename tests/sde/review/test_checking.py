"""Two-person output checking and release, on SQLite and PostgreSQL: who may check, blind
votes, one vote each, the most restrictive outcome, and what a release holds."""

from __future__ import annotations

import csv
import io
import itertools

import orjson
import pytest
from records_support import active_project, make_jobs, ran, research_store
from sqlalchemy import insert

from carelight.sde.governance import Conflict, GovernanceError, NotAllowed
from carelight.sde.review import checking, release
from carelight.sde.tables import sde_project_member


@pytest.fixture
def checked(world):
    """A real run's outputs waiting for checking: (jobs, project, real job, outputs by path)."""
    world.accounts.create("checker2", "output-checker", password="correct horse battery")
    p = active_project(world)
    jobs = make_jobs(world)
    research_store(world, jobs, p.id)
    _, real = ran(jobs, world.who("researcher"), p.id)
    return jobs, p, real, {o.path: o for o in jobs.outputs(real.id)}


@pytest.mark.parametrize(
    ("first", "second", "result"),
    [
        (a, b, "rejected" if "reject" in (a, b) else
         "changes-requested" if "request-changes" in (a, b) else "approved")
        for a, b in itertools.product(checking.DECISIONS, repeat=2)
    ],
)  # fmt: skip
def test_the_most_restrictive_vote_wins(first, second, result):
    assert checking.outcome([first, second]) == result


def test_only_checkers_vote_and_never_the_author_or_a_member(world, checked):
    jobs, p, _real, outputs = checked
    counts = outputs["counts.csv"]
    for name in ("researcher", "dac", "admin", "outsider"):
        with pytest.raises(NotAllowed, match="Only output checkers"):
            checking.vote(jobs, world.who(name), counts.id, "approve", "Fine.")
        with pytest.raises(NotAllowed):
            checking.for_checking(jobs, world.who(name), counts.id)
    # A checker who is also on the project (an account whose role changed) is refused, and
    # the file is not in their queue.
    with world.store.engine.begin() as conn:
        conn.execute(insert(sde_project_member).values(project_id=p.id, username="checker1",
                                                       added=0.0))  # fmt: skip
    with pytest.raises(NotAllowed, match=f"member of project {p.id}"):
        checking.vote(jobs, world.who("checker1"), counts.id, "approve", "Fine.")
    with pytest.raises(NotAllowed, match="member"):
        checking.for_checking(jobs, world.who("checker1"), counts.id)
    assert checking.queue(jobs, world.who("checker1")) == []
    assert {o.path for _, o in checking.queue(jobs, world.who("checker2"))} == {
        "counts.csv", "notes.txt",
    }  # fmt: skip
    assert checking._votes(jobs, counts.id) == []


def test_the_author_is_refused_even_as_a_checker(world, checked):
    jobs, _p, real, outputs = checked
    from dataclasses import replace

    author_as_checker = replace(world.who("checker1"), username=real.username)
    with pytest.raises(NotAllowed, match="you submitted this job"):
        checking.vote(jobs, author_as_checker, outputs["counts.csv"].id, "approve", "Mine.")


def test_votes_are_blind_until_both_have_voted(world, checked):
    jobs, _p, _real, outputs = checked
    counts = outputs["counts.csv"].id
    one, two = world.who("checker1"), world.who("checker2")
    out, _ = checking.vote(jobs, one, counts, "request-changes", "Add a total row.")
    assert out.review == "pending"
    assert [v.checker for v in checking.votes_seen_by(jobs, one, counts)] == ["checker1"]
    assert checking.votes_seen_by(jobs, two, counts) == []  # the other vote is hidden
    assert checking.votes_seen_by(jobs, world.who("researcher"), counts) == []
    _, _, _ = checking.for_checking(jobs, two, counts)  # can still open the file
    out, _ = checking.vote(jobs, two, counts, "approve", "Looks safe.")
    assert out.review == "changes-requested"
    for who in (one, two, world.who("researcher")):
        assert {v.checker for v in checking.votes_seen_by(jobs, who, counts)} == {
            "checker1", "checker2",
        }  # fmt: skip
    assert release.releases(jobs.engine) == []


def test_one_vote_each_and_none_after_the_decision(world, checked):
    jobs, _p, _real, outputs = checked
    counts = outputs["counts.csv"].id
    checking.vote(jobs, world.who("checker1"), counts, "approve", "Fine.")
    with pytest.raises(Conflict, match="one vote each"):
        checking.vote(jobs, world.who("checker1"), counts, "reject", "Changed my mind.")
    checking.vote(jobs, world.who("checker2"), counts, "reject", "Too small.")
    world.accounts.create("checker3", "output-checker", password="correct horse battery")
    with pytest.raises(Conflict, match="not waiting for checking"):
        checking.vote(jobs, world.who("checker3"), counts, "approve", "Late.")
    assert len(checking._votes(jobs, counts)) == 2
    assert checking.get_output(jobs, counts)[1].review == "rejected"
    with pytest.raises(GovernanceError, match="comment"):
        checking.vote(jobs, world.who("checker3"), outputs["notes.txt"].id, "approve", "  ")
    with pytest.raises(GovernanceError, match="Unknown decision"):
        checking.vote(jobs, world.who("checker3"), outputs["notes.txt"].id, "ok", "Fine.")


def test_approved_files_are_released_safe_to_members_only(world, checked):
    jobs, p, real, outputs = checked
    counts = outputs["counts.csv"].id
    checking.vote(jobs, world.who("checker1"), counts, "approve", "Safe.")
    out, vote = checking.vote(jobs, world.who("checker2"), counts, "approve", "Agreed.")
    assert out.review == "approved"
    (made,) = release.releases(jobs.engine, p.id)
    assert made.checkers == ("checker1", "checker2") and made.path == "counts.csv"
    _got, data = release.download(jobs, world.who("researcher"), made.id)
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    # Small counts never reach a released file; every count is a multiple of 5.
    values = [r["count"] for r in rows]
    assert "[REDACTED]" in values
    assert all(int(v) > 7 and int(v) % 5 == 0 for v in values if v != "[REDACTED]")
    assert {r["sex"]: r["count"] for r in rows} == {
        "female": "25", "male": "[REDACTED]", "other": "10",
    }  # fmt: skip
    for name in ("outsider", "checker1", "checker2", "dac", "admin"):
        with pytest.raises(NotAllowed, match="Only researchers on project"):
            release.download(jobs, world.who(name), made.id)
    # The release is in the log, naming the hash and the checkers.
    entry = orjson.loads(world.trail.log.leaf(made.log_index))
    assert entry["subtype"][-1]["code"] == "sde-release"
    vote_entry = orjson.loads(world.trail.log.leaf(vote.log_index))
    assert vote_entry["subtype"][-1]["code"] == "sde-review"
    # A released file changed on disk afterwards is refused, not handed out.
    safe = jobs.safe_path(jobs.get(real.id), "counts.csv")
    safe.write_bytes(safe.read_bytes().replace(b"[REDACTED]", b"5"))
    with pytest.raises(Conflict, match="changed"):
        release.download(jobs, world.who("researcher"), made.id)


def test_row_level_files_are_never_checked_nor_released(world, checked):
    jobs, _p, real, outputs = checked
    people = outputs["people.csv"]
    assert people.kind == "row_level"
    with pytest.raises(NotAllowed, match="not for checking"):
        checking.for_checking(jobs, world.who("checker1"), people.id)
    with pytest.raises(Conflict, match="not waiting for checking"):
        checking.vote(jobs, world.who("checker1"), people.id, "approve", "Let it out.")
    with pytest.raises(NotAllowed, match="stays inside"):
        checking.read_safe(jobs, real, people)
    with world.store.engine.begin() as conn, pytest.raises(NotAllowed):
        release.make_release(conn, jobs, real, people, ["checker1", "checker2"], 0.0)
    assert release.releases(jobs.engine) == []


def test_a_real_runs_cell_level_evidence_is_for_checkers_not_the_researchers(world, checked):
    jobs, _p, real, outputs = checked
    stored = outputs["counts.csv"].evidence
    assert stored["rules"]  # the record keeps everything
    seen = {o.path: o for o in jobs.outputs_seen_by(world.who("researcher"), real)}
    shown = seen["counts.csv"].evidence
    assert set(shown) == {"outcome", "policy", "withheld"}
    assert shown["outcome"] == stored["outcome"]
    assert "rules" not in shown and "cells" not in orjson.dumps(shown).decode()
    checker = {o.path: o for o in jobs.outputs_seen_by(world.who("checker1"), real)}
    assert checker["counts.csv"].evidence == stored
    # A dummy run's evidence (made-up data) stays whole for the researchers.
    dummy = jobs.get(real.code_of)
    for o in jobs.outputs_seen_by(world.who("researcher"), dummy):
        assert o.evidence is None or "rules" in o.evidence
