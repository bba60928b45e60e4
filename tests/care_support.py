"""A small synthetic population for the shared care record's tests, built once per test
session in a temporary folder shared by the xdist workers (the first to need it builds it, the
others wait on a lock and reuse it; SQLite and the log take writers from several processes): ``carelight synth --people 200``, ``load``,
``mpi train`` and ``users seed-demo``, as a user would. ``care_population`` names the people each scenario
needs, chosen from the data rather than hard-coded.

Tests sharing it must not undo each other's assumptions: each scenario has its own people.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

PEOPLE = 200
SEED = 7
GP, TRUSTS, COUNCIL = "Y99101", ("X9A", "X9B"), "X99LB"
NHS = "https://fhir.nhs.uk/Id/nhs-number"


@dataclass(frozen=True)
class Person:
    nhs_number: str
    patient_id: str  # the GP practice's Patient record
    name: str
    birth_date: str
    postcode: str


@dataclass(frozen=True)
class CarePopulation:
    home: Path
    env: dict[str, str]
    shared: Person  # registered at the demo GP, known to a trust and to adult social care
    social_care: Person  # registered at the demo GP, in an open social care episode
    stranger_to_trust: Person  # registered at the demo GP, never seen by the demo nurse's trust
    # Another such person, for tests that need them still closed (no break-glass yet).
    another_stranger: Person


def skip_or_fail(reason: str) -> None:
    """Skip, or under CI=true fail: CI must not hide a missing component (as conftest's)."""
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(
            f"{reason} (CI=true: a missing component is an error, not a skip)", pytrace=False
        )
    pytest.skip(reason)


def carelight(*args: str, env: dict[str, str]) -> None:
    script = Path(sys.executable).parent / "carelight"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "carelight.cli"]
    done = subprocess.run([*command, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"carelight {args[0]} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )


def _ndjson(path: Path):
    if path.exists():
        with path.open() as f:
            for line in f:
                yield json.loads(line)


def choose_people(out: Path) -> dict[str, Person]:
    gp_patients: dict[str, dict] = {}
    sources: dict[str, set[str]] = defaultdict(set)
    by_id: dict[str, str] = {}  # Patient id -> NHS number
    for folder in out.iterdir():
        for patient in _ndjson(folder / "Patient.ndjson"):
            nhs = next(
                (i["value"] for i in patient.get("identifier", ()) if i.get("system") == NHS), None
            )
            if not nhs:
                continue
            by_id[patient["id"]] = nhs
            sources[nhs].add(folder.name)
            if folder.name == GP:
                gp_patients[nhs] = patient
    open_episode = {
        by_id.get(e["patient"]["reference"].split("/")[1])
        for e in _ndjson(out / COUNCIL / "EpisodeOfCare.ndjson")
        if e.get("status") == "active"
    }

    def person(nhs: str) -> Person:
        p = gp_patients[nhs]
        name = p["name"][0]
        return Person(
            nhs, p["id"], " ".join([*name.get("given", ()), name["family"]]), p["birthDate"],
            p["address"][0]["postalCode"],
        )  # fmt: skip

    ordered = sorted(gp_patients)
    shared = next(n for n in ordered if TRUSTS[0] in sources[n] and n in open_episode)
    social = next(n for n in ordered if n in open_episode and n != shared)
    strangers = [n for n in ordered if not sources[n] & {TRUSTS[0], COUNCIL}]
    return {
        "shared": person(shared),
        "social_care": person(social),
        "stranger_to_trust": person(strangers[0]),
        "another_stranger": person(strangers[1]),
    }


@pytest.fixture(scope="session")
def care_population(tmp_path_factory) -> CarePopulation:
    # The parent of this worker's base temp folder is the session's, shared by the workers.
    root = tmp_path_factory.getbasetemp().parent / "care-population"
    root.mkdir(exist_ok=True)
    home, out = root / "home", root / "synth"
    env = {**os.environ, "CARELIGHT_HOME": str(home)}
    env.pop("CARELIGHT_DATABASE_URL", None)
    with (root / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "ready").exists():
            carelight(
                "synth", "--people", str(PEOPLE), "--seed", str(SEED), "--out", str(out), env=env
            )
            carelight("load", str(out), env=env)
            # 200 people are fewer records than the first load trains on (500): train the
            # master patient index's model here, so records without an NHS number link too.
            carelight("mpi", "train", env=env)
            carelight("users", "seed-demo", env=env)
            # Makes the token-signing key now, so servers started by several workers share it.
            carelight("token", "--user", "gp", env=env)
            (root / "ready").write_text("ok")
    return CarePopulation(home=home, env=env, **choose_people(out))


def in_process_app(population: CarePopulation):
    """The whole server over the care population, in process (a generator for a fixture:
    the app, then its transparency log closed)."""
    from carelight.config import Settings
    from carelight.server import create_app

    settings = Settings(
        home=population.home,
        database_url=f"sqlite:///{population.home / 'carelight.db'}",
        base_url="http://testserver/fhir",
    )
    app = create_app(settings=settings)
    yield app
    app.state.trail.close()
