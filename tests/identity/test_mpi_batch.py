"""Training on a loaded population and linking it in one batch, on both engines, and the
first `carelight load` doing that by itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from carelight.identity.linkage import GroundTruth, evaluate
from carelight.identity.mpi.batch import link_all, store_clusters, train_store
from carelight.identity.mpi.core import is_assigned
from carelight.synth import generate

NHS = "https://fhir.nhs.uk/Id/nhs-number"


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi-batch") / "population"
    generate(out, 300, 9, workers=1)
    return out


def _items(folder):
    for path in sorted(folder.glob("*/*.ndjson")):
        source = f"urn:carelight:source:{path.parent.name}"
        for n, line in enumerate(path.read_bytes().splitlines(), start=1):
            if line.strip():
                yield f"{path.name}:{n}", line, source


def test_train_and_link_a_loaded_population(store, population):
    report = store.bulk_load(_items(population), workers=0)
    assert report.errors == []
    truth = GroundTruth.read(population)
    before = evaluate(store_clusters(store), truth)  # NHS numbers only, as loaded
    assert before.precision == 1.0 and before.recall < 1.0
    train_store(store)
    linked = link_all(store)
    after = evaluate(store_clusters(store), truth)
    assert after.precision >= 0.995 and after.recall >= 0.98 and after.review_share < 0.02
    assert after.recall > before.recall
    assert linked.routes.get("probabilistic", 0) > 0 and linked.numbers_assigned > 0
    # Every number given came from another record of the same (true) person.
    clusters = store_clusters(store).decisions
    members: dict[str, list[str]] = {}
    for pid, decision in clusters.items():
        members.setdefault(decision.person_id, []).append(pid)

    def own_number(pid):
        doc = store.read("Patient", pid).json()
        return [i["value"] for i in doc.get("identifier", []) if i["system"] == NHS
                and not is_assigned(i)]  # fmt: skip

    given_count = 0
    for pid, decision in clusters.items():
        doc = store.read("Patient", pid).json()
        given = [i["value"] for i in doc.get("identifier", []) if is_assigned(i)]
        if given:
            given_count += 1
            assert decision.route == "auto"
            assert any(
                truth.person[o] == truth.person[pid] and own_number(o) == given
                for o in members[decision.person_id]
                if o != pid
            )
    assert given_count == linked.numbers_assigned
    # Linking again moves nothing and gives no new numbers: person ids are stable.
    again = link_all(store)
    assert (again.moved, again.numbers_assigned) == (0, 0)


def test_training_needs_a_population(store):
    with pytest.raises(ValueError, match="at least 50"):
        train_store(store)


def _cli(args, home):
    env = {**os.environ, "CARELIGHT_HOME": str(home), "COLUMNS": "200"}
    env.pop("CARELIGHT_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "carelight.cli", *args], env=env, capture_output=True, text=True
    )


def test_the_first_load_trains_and_links_and_loading_again_changes_nothing(tmp_path, population):
    home = tmp_path / "home"
    first = _cli(["load", str(population), "--workers", "1"], home)
    assert first.returncode == 0, first.stderr
    assert "Trained linkage model version 1" in first.stderr
    assert re.search(r"Linked [\d,]+ records into [\d,]+ persons", first.stderr)
    status = _cli(["mpi", "status"], home)
    assert "model: version 1" in status.stdout and "linked by probabilistic" in status.stdout
    second = _cli(["load", str(population), "--workers", "1"], home)
    assert second.returncode == 0, second.stderr
    assert re.search(r"^0 created, 0 updated, [\d,]+ unchanged, 0 refused", second.stderr, re.M)
    assert "Trained" not in second.stderr
    verify = _cli(["audit", "verify"], home)
    assert verify.returncode == 0, verify.stderr
