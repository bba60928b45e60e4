"""A Patient-only synthetic population of a given number of records, for linkage benchmarks.

``carelight synth`` writes every resource of every person (about 46 million for the 430,000
people behind a million Patient records); linkage needs only the Patient records. This writes
the same Patient records the full generator would (``carelight.synth.patients``: same people,
sources, ids and imperfections) into the same layout, ``<source>/Patient.ndjson`` plus
``ground-truth.csv``, for people 0, 1, 2, ... until there are at least ``records`` records.

    .venv/bin/python -m bench.linkage_population --records 1000000 [--seed 7]
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

DATA_DIR = Path(__file__).resolve().parent / ".data"
CHUNK = 5000  # people per task
DONE = "patients-manifest.json"


def _chunk(task: tuple[int, int, int]) -> list[tuple[int, list[tuple[str, bytes, tuple]]]]:
    seed, start, stop = task
    return [
        (index, [(code, orjson.dumps(p), row) for code, p, row in patients(seed, index)])
        for index in range(start, stop)
    ]


def _tasks(seed: int):
    start = 0
    while True:
        yield seed, start, start + CHUNK
        start += CHUNK


def write(folder: Path, records: int, seed: int, workers: int | None = None) -> dict:
    """Write the population into ``folder`` (replacing any earlier one); its manifest."""
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DONE).unlink(missing_ok=True)
    handles: dict[str, object] = {}
    written = people = 0
    workers = workers or min(os.cpu_count() or 1, 8)
    context = multiprocessing.get_context("fork")
    with (
        context.Pool(workers) as pool,
        open(folder / "ground-truth.csv", "w", newline="", encoding="utf-8") as truth_file,
    ):
        truth = csv.writer(truth_file, lineterminator="\n")
        truth.writerow(("person_key", "source", "patient_id", "imperfections"))
        for chunk in pool.imap(_chunk, _tasks(seed)):
            for index, rows in chunk:
                for code, line, row in rows:
                    handle = handles.get(code)
                    if handle is None:
                        (folder / code).mkdir(exist_ok=True)
                        handle = handles[code] = open(folder / code / "Patient.ndjson", "wb")  # noqa: SIM115
                    handle.write(line + b"\n")
                    truth.writerow(row)
                written += len(rows)
                people = index + 1
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
        "people": people,
        "records": written,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (folder / DONE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def population(records: int, seed: int) -> Path:
    """The folder for (records, seed), generated once and cached under ``bench/.data``."""
    folder = DATA_DIR / f"patients-{records}-seed-{seed}"
    if not (folder / DONE).exists():
        print(f"generating {records:,} Patient records (seed {seed}) into {folder}", flush=True)
        manifest = write(folder, records, seed)
        print(
            f"  {manifest['records']:,} records of {manifest['people']:,} people "
            f"in {manifest['seconds']} s",
            flush=True,
        )
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(population(args.records, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
