"""Generate the population and write it out: one folder per source, NDJSON per resource type.

People are generated in chunks, in worker processes when there is more than one core; each
chunk comes back as ready-made NDJSON bytes and is written in chunk order, so the output does
not depend on the number of workers: the same seed gives the same bytes. Memory stays bounded
by the chunks in flight.

Alongside the source folders the writer puts ``ground-truth.csv`` (which Patient records are
the same person) and ``synth-manifest.json`` (what was generated). Neither is ``*.ndjson``, so
``carelight load DIR`` ignores them.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from carelight.synth.directory import all_directory_resources
from carelight.synth.fhir import Output
from carelight.synth.gp import gp_records
from carelight.synth.health import plan_health
from carelight.synth.hospital import hospital_records
from carelight.synth.population import MAX_PEOPLE, Person, make_person
from carelight.synth.socialcare import social_care_records
from carelight.synth.sources import ALL_SOURCES

GENERATOR_VERSION = 1
GROUND_TRUTH = "ground-truth.csv"
MANIFEST = "synth-manifest.json"
CHUNK = 100  # people per task handed to a worker


def person(seed: int, index: int) -> Person:
    """Person ``index`` with their health and care planned (the truth behind the records)."""
    p = make_person(seed, index)
    plan_health(seed, p)
    return p


def person_records(seed: int, index: int, out: Output) -> None:
    p = person(seed, index)
    gp_records(seed, p, out)
    hospital_records(seed, p, out)
    social_care_records(seed, p, out)


def records(seed: int, index: int) -> list[tuple[str, dict]]:
    """(source code, resource) for everything about one person (for tests and exploration)."""
    out = Output()
    person_records(seed, index, out)
    return [(code, orjson.loads(line)) for (code, _), lines in out.lines.items() for line in lines]


def _chunk(task: tuple[int, int, int]) -> tuple[dict[tuple[str, str], bytes], list, int]:
    seed, start, stop = task
    out = Output()
    for index in range(start, stop):
        person_records(seed, index, out)
    blobs = {key: b"\n".join(lines) + b"\n" for key, lines in out.lines.items()}
    return blobs, out.truth, out.count


@dataclass
class Summary:
    people: int
    seed: int
    counts: Counter  # (source code, resource type) -> resources
    seconds: float

    @property
    def resources(self) -> int:
        return sum(self.counts.values())

    def by_type(self) -> Counter:
        totals: Counter = Counter()
        for (_, kind), n in self.counts.items():
            totals[kind] += n
        return totals


class _Files:
    """Output files opened on first use, one per (source folder, resource type)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.handles: dict[tuple[str, str], object] = {}

    def write(self, key: tuple[str, str], data: bytes) -> None:
        handle = self.handles.get(key)
        if handle is None:
            folder = self.root / key[0]
            folder.mkdir(exist_ok=True)
            handle = self.handles[key] = open(folder / f"{key[1]}.ndjson", "wb")  # noqa: SIM115
        handle.write(data)

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()


def _check_output_dir(out_dir: Path) -> None:
    """Refuse to write over anything but an earlier synthetic population."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = list(out_dir.iterdir())
    if entries and not (out_dir / MANIFEST).exists():
        raise FileExistsError(
            f"{out_dir} is not empty and holds no {MANIFEST}; choose an empty folder"
        )
    for source in ALL_SOURCES:
        folder = out_dir / source.code
        if folder.is_dir():
            for path in folder.glob("*.ndjson"):
                path.unlink()


def _tasks(seed: int, people: int, chunk: int) -> Iterator[tuple[int, int, int]]:
    for start in range(0, people, chunk):
        yield seed, start, min(start + chunk, people)


def generate(
    out_dir: Path,
    people: int,
    seed: int,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Write the population of ``people`` people for ``seed`` under ``out_dir``."""
    if not 1 <= people <= MAX_PEOPLE:
        raise ValueError(f"people must be between 1 and {MAX_PEOPLE:,}")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    _check_output_dir(out_dir)
    files = _Files(out_dir)
    counts: Counter = Counter()
    try:
        for source, resource in all_directory_resources():
            key = (source.code, resource["resourceType"])
            files.write(key, orjson.dumps(resource) + b"\n")
            counts[key] += 1
        workers = workers or min(os.cpu_count() or 1, 8)
        tasks = _tasks(seed, people, CHUNK)
        with open(out_dir / GROUND_TRUTH, "w", newline="", encoding="utf-8") as truth_file:
            truth = csv.writer(truth_file, lineterminator="\n")
            truth.writerow(("person_key", "source", "patient_id", "imperfections"))
            if workers > 1 and people > CHUNK:
                context = multiprocessing.get_context("fork")
                with context.Pool(workers) as pool:
                    _drain(pool.imap(_chunk, tasks), files, truth, counts, progress, people)
            else:
                _drain(map(_chunk, tasks), files, truth, counts, progress, people)
    finally:
        files.close()
    summary = Summary(people, seed, counts, time.perf_counter() - started)
    manifest = {
        "generator": "carelight synth",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "people": people,
        "resources": summary.resources,
        "sources": {
            source.code: {
                "name": source.name,
                "kind": source.kind,
                "meta_source": source.uri,
                "patient_id_system": source.patient_id_system,
                "resources": {
                    kind: n for (code, kind), n in sorted(counts.items()) if code == source.code
                },
            }
            for source in ALL_SOURCES
        },
        "ground_truth": GROUND_TRUTH,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return summary


def _drain(results, files: _Files, truth, counts: Counter, progress, people: int) -> None:
    done = 0
    for blobs, rows, _ in results:
        for key, data in sorted(blobs.items()):
            files.write(key, data)
            counts[key] += data.count(b"\n")
        truth.writerows(rows)
        done = min(done + CHUNK, people)
        if progress:
            progress(done, people)
