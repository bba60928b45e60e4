"""The shape of the output: folders, files, ids, references, meta.source, determinism."""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from carelight.fhir.resource_types import SUPPORTED
from carelight.fhir.validation import validate_resource
from carelight.identity.nhs_number import is_valid_nhs_number
from carelight.synth import generate
from carelight.synth.codes import NHS_NUMBER, ODS
from carelight.synth.sources import ALL_SOURCES, BY_CODE

SMALL = 150  # as in conftest.py


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_the_same_bytes_whatever_the_workers(tmp_path):
    generate(tmp_path / "a", 230, seed=3, workers=1)
    generate(tmp_path / "b", 230, seed=3, workers=2)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_a_different_seed_gives_different_people(tmp_path):
    generate(tmp_path / "a", 50, seed=3, workers=1)
    generate(tmp_path / "b", 50, seed=4, workers=1)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a["ground-truth.csv"] != b["ground-truth.csv"]
    assert a["Y99101/Organization.ndjson"] == b["Y99101/Organization.ndjson"]  # the directory
    changed = [k for k in a.keys() & b.keys() if k.endswith("Patient.ndjson") and a[k] != b[k]]
    assert changed


def test_one_folder_per_source_one_file_per_type(small):
    assert set(small.folders) == {s.code for s in ALL_SOURCES}
    for folder, types in small.folders.items():
        assert "Organization" in types, folder
        assert set(types) <= SUPPORTED
    for folder, resource in small.resources():
        assert (small.root / folder / f"{resource['resourceType']}.ndjson").exists()
    manifest = json.loads((small.root / "synth-manifest.json").read_text())
    assert manifest["people"] == SMALL
    assert manifest["resources"] == sum(1 for _ in small.resources())
    assert not list(small.root.glob("*.ndjson")), "only source folders hold NDJSON"


def _validate(resources: list[dict]) -> list[str]:
    from carelight.fhir.errors import FhirError

    failures = []
    for resource in resources:
        try:
            validate_resource(resource)
        except FhirError as exc:
            failures.append(f"{resource['id']}: {exc.issues[:3]}")
    return failures


def test_every_resource_is_valid_fhir(small):
    resources = [r for _, r in small.resources()]
    kinds = Counter(r["resourceType"] for r in resources)
    # Two processes: validation is the slow part of this suite.
    halves = [resources[0::2], resources[1::2]]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        failures = [f for part in pool.map(_validate, halves) for f in part]
    assert failures == []
    # The whole vocabulary is exercised, even in a small population.
    for kind in (
        "Patient", "RelatedPerson", "Practitioner", "PractitionerRole", "Organization",
        "Location", "Encounter", "EpisodeOfCare", "Condition", "Observation",
        "DiagnosticReport", "MedicationRequest", "MedicationStatement", "Procedure",
        "Immunization", "CarePlan", "CareTeam", "Goal", "Questionnaire",
        "QuestionnaireResponse", "ServiceRequest", "DocumentReference", "Consent",
    ):  # fmt: skip
        assert kinds[kind] > 0, kind


def test_ids_are_unique_across_the_whole_output(small):
    ids = Counter((r["resourceType"], r["id"]) for _, r in small.resources())
    assert [k for k, n in ids.items() if n > 1] == []
    plain = Counter(r["id"] for _, r in small.resources())
    assert [k for k, n in plain.items() if n > 1] == []
    for folder, resource in small.resources():
        if resource["resourceType"] != "Questionnaire":
            assert resource["id"].startswith(f"{folder}-"), resource["id"]


def _references(node):
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def test_references_resolve_within_each_source_folder(small):
    by_folder = defaultdict(list)
    for folder, resource in small.resources():
        by_folder[folder].append(resource)
    for folder, resources in by_folder.items():
        present = {f"{r['resourceType']}/{r['id']}" for r in resources}
        dangling = [
            (r["id"], target)
            for r in resources
            for target in _references(r)
            if target not in present
        ]
        assert dangling == [], folder


def test_cross_source_links_are_by_ods_identifier_only(small):
    for folder, resource in small.resources("Patient"):
        for gp in resource.get("generalPractitioner", []):
            if "reference" in gp:
                assert BY_CODE[folder].kind == "gp"
                assert gp["reference"] == f"Organization/{folder}-org"
            else:
                assert gp["identifier"]["system"] == ODS
                assert BY_CODE[gp["identifier"]["value"]].kind == "gp"


def test_meta_source_names_the_folder_system(small):
    for folder, resource in small.resources():
        assert resource["meta"]["source"] == BY_CODE[folder].uri


def test_patients_carry_local_ids_and_valid_test_range_nhs_numbers(small):
    for folder, patient in small.resources("Patient"):
        systems = {i["system"]: i["value"] for i in patient["identifier"]}
        assert systems[BY_CODE[folder].patient_id_system]
        number = systems.get(NHS_NUMBER)
        if BY_CODE[folder].kind == "gp":
            assert number is not None
        if number is not None:
            assert is_valid_nhs_number(number) and number.startswith("999")


def test_nhs_numbers_identify_people(medium):
    person_of = {row["patient_id"]: row["person_key"] for row in medium.truth}
    owner: dict[str, str] = {}
    for _, patient in medium.resources("Patient"):
        for ident in patient["identifier"]:
            if ident["system"] == NHS_NUMBER:
                person = person_of[patient["id"]]
                assert owner.setdefault(ident["value"], person) == person


@pytest.mark.parametrize("workers", [1])
def test_cli_writes_a_population(tmp_path, workers):
    from typer.testing import CliRunner

    from carelight.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["synth", "--people", "25", "--seed", "2", "--out", str(out), "--workers", str(workers)],
    )
    assert result.exit_code == 0, result.output
    assert (out / "ground-truth.csv").exists()
    assert (out / "Y99101" / "Organization.ndjson").exists()
    # Refuses to write over an unrelated folder.
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    result = CliRunner().invoke(app, ["synth", "--people", "5", "--out", str(other)])
    assert result.exit_code != 0
    assert (other / "keep.txt").read_text() == "mine"


def test_output_loads_into_a_store(tmp_path):
    from itertools import chain

    from carelight.cli import ndjson_files, read_ndjson
    from carelight.fhir.store import open_store

    root = tmp_path / "synth"
    summary = generate(root, 12, seed=8, workers=1)
    store = open_store(f"sqlite:///{tmp_path / 'synth.db'}")
    lines = chain.from_iterable(read_ndjson(path) for path in ndjson_files(root))
    report = store.bulk_load(lines, workers=1)
    assert report.errors == []
    assert report.loaded == summary.resources


def test_references_to_a_patient_show_the_name_that_source_recorded(small):
    """Displays must not leak the true name into a record that holds a misspelt one."""
    recorded = {
        p["id"]: f"{p['name'][0]['given'][0]} {p['name'][0]['family']}"
        for _, p in small.resources("Patient")
    }
    checked = 0
    for _, resource in small.resources():
        for key in ("subject", "patient"):
            target = resource.get(key)
            if isinstance(target, dict) and target.get("reference", "").startswith("Patient/"):
                assert target["display"] == recorded[target["reference"][8:]]
                checked += 1
    assert checked > 1000
