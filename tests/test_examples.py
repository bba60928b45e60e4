"""The shipped example data set, and the synthetic data the benchmarks generate.

Both must be valid FHIR R4 as the data layer sees it, have unique ids, and only reference
resources within the same set, so they load cleanly into an empty store.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson
import pytest

from carelight.examples import SOURCE_SYSTEMS, example_dir, example_files
from carelight.fhir.validation import validate_resource
from carelight.identity.nhs_number import is_valid_nhs_number

NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is a top-level folder, not part of the installed package
    sys.path.insert(0, str(ROOT))

from bench import generate as gen  # noqa: E402


def local_references(node: object) -> Iterator[str]:
    """Every ``Reference.reference`` in a resource (identifiers and canonicals are not references)."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from local_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from local_references(item)


def dangling_references(resources: Iterable[dict]) -> list[str]:
    resources = list(resources)
    present = {f"{r['resourceType']}/{r['id']}" for r in resources}
    return [
        f"{r['resourceType']}/{r['id']} -> {ref}"
        for r in resources
        for ref in local_references(r)
        if ref not in present
    ]


def nhs_numbers(resources: Iterable[dict]) -> list[str]:
    return [
        ident["value"]
        for r in resources
        if r["resourceType"] == "Patient"
        for ident in r.get("identifier", [])
        if ident.get("system") == NHS_SYSTEM
    ]


# -- the example data set ---------------------------------------------------------------------


def example_resources() -> list[tuple[Path, dict]]:
    out = []
    for path in example_files():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            assert line.strip(), f"{path.name}:{n} is blank"
            out.append((path, json.loads(line)))
    return out


EXAMPLES = example_resources()


def test_examples_are_a_small_realistic_set():
    folders = {p.parent.name for p in example_files()}
    assert folders == set(SOURCE_SYSTEMS)
    assert 60 <= len(EXAMPLES) <= 120
    kinds = Counter(r["resourceType"] for _, r in EXAMPLES)
    for kind in (
        "Organization", "Practitioner", "PractitionerRole", "Patient", "Condition", "Observation",
        "MedicationRequest", "Encounter", "AllergyIntolerance", "Immunization", "CarePlan",
        "CareTeam", "Consent", "Questionnaire", "QuestionnaireResponse",
    ):  # fmt: skip
        assert kinds[kind] >= 1, kind
    assert kinds["Patient"] == 6
    assert kinds["Organization"] == 3


@pytest.mark.parametrize(
    ("path", "resource"),
    EXAMPLES,
    ids=[f"{p.parent.name}/{r['resourceType']}/{r['id']}" for p, r in EXAMPLES],
)
def test_example_validates(path, resource):
    assert path.stem == resource["resourceType"]
    assert validate_resource(resource, expected_type=path.stem) is resource


def test_example_ids_are_unique():
    ids = Counter(r["id"] for _, r in EXAMPLES)
    assert [i for i, n in ids.items() if n > 1] == []


def test_example_references_resolve_within_the_set():
    assert dangling_references(r for _, r in EXAMPLES) == []


def test_example_canonicals_resolve_within_the_set():
    urls = {r["url"] for _, r in EXAMPLES if r["resourceType"] == "Questionnaire"}
    answered = [
        r["questionnaire"] for _, r in EXAMPLES if r["resourceType"] == "QuestionnaireResponse"
    ]
    assert answered
    assert set(answered) <= urls


def test_example_meta_source_names_the_system_of_its_folder():
    sources: dict[str, set[str]] = {}
    for path, resource in EXAMPLES:
        sources.setdefault(path.parent.name, set()).add(resource["meta"]["source"])
    assert all(len(s) == 1 for s in sources.values()), sources
    assert len({next(iter(s)) for s in sources.values()}) == len(sources)


def test_example_patients_have_valid_test_range_nhs_numbers():
    patients = [r for _, r in EXAMPLES if r["resourceType"] == "Patient"]
    numbers = nhs_numbers(patients)
    assert len(numbers) == len(patients) == len(set(numbers))
    for number in numbers:
        assert is_valid_nhs_number(number), number
        assert number.startswith("999"), number
    for patient in patients:
        assert patient["birthDate"]
        assert patient["address"][0]["postalCode"]
        assert patient["generalPractitioner"]


def test_examples_load_into_a_store(tmp_path):
    from carelight.fhir.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'examples.db'}")
    report = store.bulk_load(r for _, r in EXAMPLES)
    assert report.errors == []
    assert report.loaded == len(EXAMPLES)
    again = store.bulk_load(r for _, r in EXAMPLES)
    assert (again.loaded, again.unchanged, again.errors) == (0, len(EXAMPLES), [])


def test_example_dir_is_the_package_folder():
    assert example_dir() == Path(__file__).resolve().parent.parent / "src/carelight/examples"


# -- the benchmark generator ------------------------------------------------------------------


SMALL = 3_000


@pytest.fixture(scope="module")
def small_set() -> list[dict]:
    return list(gen.generate(SMALL))


def test_generator_yields_exactly_the_requested_count(small_set):
    assert len(small_set) == SMALL
    plan = gen.make_plan(SMALL)
    assert sum(plan.patient_size(i) for i in range(plan.patients)) + plan.directory_size == SMALL
    assert Counter(r["resourceType"] for r in small_set)["Patient"] == plan.patients


def test_generator_is_deterministic(small_set):
    again = list(gen.generate(SMALL))
    assert orjson.dumps(again) == orjson.dumps(small_set)
    other_seed = list(gen.generate(SMALL, seed=gen.DEFAULT_SEED + 1))
    assert other_seed[0]["id"] != small_set[0]["id"]


def test_generated_resources_validate(small_set):
    rng = random.Random(7)
    sample = rng.sample(small_set, 300)
    kinds = {r["resourceType"] for r in small_set}
    sample += [next(r for r in small_set if r["resourceType"] == kind) for kind in kinds]
    for resource in sample:
        validate_resource(resource)


def test_generated_ids_are_unique_and_references_resolve(small_set):
    ids = Counter(r["id"] for r in small_set)
    assert [i for i, n in ids.items() if n > 1] == []
    assert dangling_references(small_set) == []


def test_generated_patients_have_unique_valid_test_nhs_numbers(small_set):
    numbers = nhs_numbers(small_set)
    assert len(numbers) == len(set(numbers)) == gen.make_plan(SMALL).patients
    assert all(is_valid_nhs_number(n) and n.startswith("999") for n in numbers)
    many = {gen.nhs_number_for(i, gen.DEFAULT_SEED) for i in range(20_000)}
    assert len(many) == 20_000
    assert all(is_valid_nhs_number(n) for n in many)


def test_generated_resources_have_realistic_sizes(small_set):
    sizes = [len(orjson.dumps(r)) for r in small_set]
    assert 1000 <= sum(sizes) / len(sizes) <= 2000


def test_a_million_is_about_3300_patients_of_about_300():
    plan = gen.make_plan(1_000_000)
    assert 3_200 <= plan.patients <= 3_400
    assert {plan.patient_size(i) for i in range(plan.patients)} <= {300, 301}
    assert (
        plan.directory_size + sum(plan.patient_size(i) for i in range(plan.patients)) == 1_000_000
    )


def test_sample_patients_regenerates_the_same_records(small_set):
    plan = gen.make_plan(SMALL)
    samples = gen.sample_patients(plan, 3, random.Random(1))
    by_id = {r["id"]: r for r in small_set}
    for sample in samples:
        patient = by_id[sample.id]
        assert patient["identifier"][0]["value"] == sample.nhs_number
        assert sample.size == plan.patient_size(sample.index) == len(sample.resources)
        for kind, rid in sample.resources:
            assert by_id[rid]["resourceType"] == kind
            if kind != "Patient":
                subject = by_id[rid].get("subject") or by_id[rid].get("patient")
                assert subject["reference"] == f"Patient/{sample.id}"


def test_write_ndjson_splits_by_type(tmp_path, small_set):
    counts = gen.write_ndjson(small_set[:500], tmp_path)
    files = {p.stem: p for p in tmp_path.glob("*.ndjson")}
    assert set(files) == set(counts)
    assert sum(counts.values()) == 500
    for kind, path in files.items():
        lines = path.read_bytes().splitlines()
        assert len(lines) == counts[kind]
        assert all(orjson.loads(line)["resourceType"] == kind for line in lines)


# -- the benchmark harness (the parts that need no server) ------------------------------------


def test_bench_percentile_interpolates():
    from bench.run import percentile

    assert percentile([5.0], 99) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile(list(map(float, range(101))), 95) == 95.0


def test_bench_store_marker_and_url_handling():
    from bench import run

    url = run.default_database_url(1234)
    assert run.sqlite_path(url) == run.DATA_DIR / "carelight-1234.db"
    assert run.marker_path(url) == run.DATA_DIR / "carelight-1234.json"
    pg = "postgresql+psycopg://bench:secret@127.0.0.1:5432/bench"
    assert run.redact(pg) == "postgresql+psycopg://bench:***@127.0.0.1:5432/bench"
    assert run.marker_path(pg).parent == run.DATA_DIR
    assert run.marker_path(pg) != run.marker_path(pg.replace("bench", "other"))


def test_bench_workload_targets_generated_resources(small_set):
    from bench.run import make_workload

    plan = gen.make_plan(SMALL)
    work = make_workload(plan, patients=3, reads=200, seed=5)
    by_key = {(r["resourceType"], r["id"]): r for r in small_set}
    assert len(work.reads) == 200
    for path, kind, rid in work.reads:
        assert path == f"/fhir/{kind}/{rid}"
        assert (kind, rid) in by_key
    for path, patient_id in work.searches:
        assert path.startswith("/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C999")
        nhs = path.rsplit("%7C", 1)[1]
        assert by_key[("Patient", patient_id)]["identifier"][0]["value"] == nhs
    for path, size, ids in work.everything:
        assert path.endswith("/$everything?_count=1000")
        assert len(ids) == size >= 300


def test_bench_record_renders_a_markdown_section():
    from bench.run import record_markdown

    latency = [
        {"name": n, "what": "", "n": 10, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0,
         "mean_ms": 1.2, "max_ms": 4.0, "target_p50_ms": 5.0, "passed": True, "note": ""}
        for n in ("read", "search", "everything")
    ]  # fmt: skip
    results = {
        "finished_at": "2026-01-01T12:00+00:00",
        "machine": {"nproc": 2, "cpu": "Test CPU", "ram_gib": 24, "os": "Linux", "python": "3.11",
                    "commit": "abc1234"},
        "store": {"resources": 1_000_000, "patients": 3332, "engine": "SQLite 3", "seed": 1,
                  "generator_version": 1, "reused": True, "load_rate": 2000.0,
                  "load_seconds": 500.0},
        "server_workers": 2,
        "latency": latency,
        "throughput": {"client": "wrk", "seconds": 30, "requests": 60_000, "errors": 0,
                       "reads_per_second": 2000.0, "per_core": 1000.0, "vs_hapi_per_core": 2.13,
                       "vs_medplum_per_core": 5.93, "p50_ms": 7.0, "p99_ms": 40.0,
                       "passed": True},
    }  # fmt: skip
    text = record_markdown(results)
    assert "### 2026-01-01 12:00 UTC · 1,000,000 resources · SQLite 3" in text
    assert "Against the targets: all met." in text
    assert "| read | 1.00 ms | 2.00 ms | 3.00 ms | 10 | p50 ≤ 5 ms | **pass** |" in text
    assert "2,000/s, **pass**" in text
    assert "2.1x HAPI" in text
