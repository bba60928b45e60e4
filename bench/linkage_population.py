"""A Patient-only synthetic population of a given number of records, for linkage benchmarks.

``carelight synth`` writes every resource of every person (about 46 million for the 430,000
people behind a million Patient records); linkage needs only the Patient records. This writes
the same Patient records the full generator would (``carelight.synth.patients``: same people,
sources, ids and imperfections) into the same layout, ``<source>/Patient.ndjson`` plus
``ground-truth.csv``, for people 0, 1, 2, ... until there are at least ``records`` records
(or, with ``people``, for that many people).

    .venv/bin/python -m bench.linkage_population --records 1000000 [--seed 7]
    .venv/bin/python -m bench.linkage_population --people 900000
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import time
from pathlib import Path

import orjson

from carelight.synth.patients import patients
from carelight.synth.population import MAX_PEOPLE

DATA_DIR = Path(__file__).resolve().parent / ".data"
CHUNK = 5000  # people per task
DONE = "patients-manifest.json"


def _chunk(task: tuple[int, int, int]) -> list[tuple[int, list[tuple[str, bytes, tuple]]]]:
    seed, start, stop = task
    return [
        (index, [(code, orjson.dumps(p), row) for code, p, row in patients(seed, index)])
        for index in range(start, stop)
    ]


def _tasks(seed: int, people: int):
    for start in range(0, people, CHUNK):
        yield seed, start, min(start + CHUNK, people)


def write(
    folder: Path, records: int | None, seed: int, workers: int | None = None, people: int = 0
) -> dict:
    """Write the population into ``folder`` (replacing any earlier one); its manifest.

    ``records`` records (people 0, 1, ... until there are that many), or every record of
    ``people`` people; at most ``MAX_PEOPLE`` (the NHS numbers of the synthetic range)."""
    records = records or 10**12
    people_cap = min(people or MAX_PEOPLE, MAX_PEOPLE)
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DONE).unlink(missing_ok=True)
    handles: dict[str, object] = {}
    written = done_people = 0
    workers = workers or min(os.cpu_count() or 1, 8)
    context = multiprocessing.get_context("fork")
    with (
        context.Pool(workers) as pool,
        open(folder / "ground-truth.csv", "w", newline="", encoding="utf-8") as truth_file,
    ):
        truth = csv.writer(truth_file, lineterminator="\n")
        truth.writerow(("person_key", "source", "patient_id", "imperfections"))
        for chunk in pool.imap(_chunk, _tasks(seed, people_cap)):
            for index, rows in chunk:
                for code, line, row in rows:
                    handle = handles.get(code)
                    if handle is None:
                        (folder / code).mkdir(exist_ok=True)
                        handle = handles[code] = open(folder / code / "Patient.ndjson", "wb")  # noqa: SIM115
                    handle.write(line + b"\n")
                    truth.writerow(row)
                written += len(rows)
                done_people = index + 1
                if written >= records:
                    break
            if written >= records:
                pool.terminate()
                break
    for handle in handles.values():
        handle.close()
    manifest = {
        "generator": "bench.linkage_population (carelight.synth.patients)",
        "seed": seed,
        "people": done_people,
        "records": written,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (folder / DONE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def population(records: int | None, seed: int, people: int = 0) -> Path:
    """The folder for (records or people, seed), generated once, cached under ``bench/.data``."""
    name = f"patients-of-{people}-people" if people else f"patients-{records}"
    folder = DATA_DIR / f"{name}-seed-{seed}"
    if not (folder / DONE).exists():
        what = f"the Patient records of {people:,} people" if people else f"{records:,} records"
        print(f"generating {what} (seed {seed}) into {folder}", flush=True)
        manifest = write(folder, None if people else records, seed, people=people)
        print(
            f"  {manifest['records']:,} records of {manifest['people']:,} people "
            f"in {manifest['seconds']} s",
            flush=True,
        )
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=0, help="instead of --records")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(population(args.records, args.seed, people=args.people))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
