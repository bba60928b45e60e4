"""Where a bulk load's CPU goes, per resource (issue 3), for comparing changes on a busy machine.

The target (``carelight load`` of 10,000 people at >= 10,000 resources/s) is a wall-clock
figure on an idle machine: ``/usr/bin/time -v carelight load`` measures it (docs/benchmarks.md).
When the machine is shared, wall clock says little; CPU time does. This runs the stages of
``Store.bulk_load`` one after another in this process, each timed with ``process_time``:

- worker: ``prepare_batch`` (parse, validate, extract, pack), best of ``--repeat``;
- writer: ``Store._write_batch`` of every packed batch into an empty store (the search
  indexes deferred, as a load into an empty store defers them);
- index build: ``Store.ensure_indexes`` (its sort threads' CPU included);

then, with ``--parallel``, the load as ``carelight load`` runs it (worker processes), with the
CPU of every process (user + system) and the wall clock of the streaming phase and the build.

    .venv/bin/carelight synth --people 1000 --seed 7 --out /tmp/synth1k
    .venv/bin/python -m bench.load /tmp/synth1k [--repeat 3] [--parallel]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from carelight.cli import _lines, _source_of, ndjson_files
from carelight.fhir.store import LoadReport, _batches, open_store, prepare_batch


def _items(directory: Path):
    for f in ndjson_files(directory):
        source = _source_of(f, directory)
        label = str(f.relative_to(directory))
        for n, line in _lines(f):
            yield f"{label}:{n}", line, source


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def stages(directory: Path, home: Path, repeat: int) -> dict[str, float]:
    store = open_store(f"sqlite:///{home / 'stages.db'}", mmap=False)
    batches = list(_batches(_items(directory), 2000, LoadReport(), as_bytes=True))
    n = sum(len(b) for b in batches)
    worker = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        prepared = [prepare_batch(b, None, pack=True) for b in batches]
        worker = min(worker, time.process_time() - started)
    store.drop_search_indexes()
    report = LoadReport()
    started = time.process_time()
    for p in prepared:
        store._write_batch(p, report, None)
    writer = time.process_time() - started
    started = time.process_time()
    store.ensure_indexes()
    build = time.process_time() - started
    store.engine.dispose()
    assert report.created == n and not report.errors, (report.created, report.errors[:3])
    return {"resources": n, "worker": worker, "writer": writer, "index build": build}


def parallel(directory: Path, home: Path) -> dict[str, float]:
    store = open_store(f"sqlite:///{home / 'parallel.db'}", mmap=False)
    cpu, started = _cpu(), time.perf_counter()
    streamed: list[float] = []

    def progress(_n: int) -> None:
        streamed[:] = [time.perf_counter()]

    report = store.bulk_load(_items(directory), progress=progress)
    done = time.perf_counter()
    store.engine.dispose()
    return {
        "resources": report.created + report.unchanged,
        "cpu": _cpu() - cpu,
        "streaming": streamed[0] - started,
        "build": done - streamed[0],
        "wall": done - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="a population from `carelight synth`")
    parser.add_argument("--repeat", type=int, default=3, help="worker stage: best of N")
    parser.add_argument("--parallel", action="store_true", help="also run the parallel load")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        load = os.getloadavg()[0]
        s = stages(args.directory, home, args.repeat)
        n = s.pop("resources")
        print(f"{n:,} resources; load average {load:.2f} at the start")
        for name, seconds in s.items():
            print(f"  {name:12s} {seconds / n * 1e6:6.1f} µs CPU per resource")
        print(f"  {'total':12s} {sum(s.values()) / n * 1e6:6.1f} µs CPU per resource")
        if args.parallel:
            p = parallel(args.directory, home)
            n = p["resources"]
            print(
                f"parallel: {p['cpu'] / n * 1e6:.1f} µs CPU per resource (every process); "
                f"streaming {p['streaming']:.1f} s, index build {p['build']:.1f} s, "
                f"{n / p['wall']:,.0f} resources/s (wall clock: meaningful on an idle machine)"
            )
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
