"""The research-store extract's rate (issue 8): people and resources per second.

Builds (or reuses) a loaded synthetic population in ``bench/.data/care-<people>-<seed>`` (the
same store the care benchmark uses: ``synth``, ``load``, ``users seed-demo``), creates and
approves a project requesting every research table, then times ``run_extract`` in process:
the gate's SQL with opt-outs applied, mapping, staging and writing ``research.duckdb`` and the
Parquet files. Reports wall and CPU time, people/s, resources/s and peak memory (max RSS).

    .venv/bin/python -m bench.sde_extract [--quick] [--people N] [--spark]

``--quick`` is 2,000 people; the default 10,000. ``--spark`` also times the Spark engine.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

from rich.console import Console

from bench.care import build
from bench.run import machine_info

console = Console()


def _project(store, trail):
    from carelight.access.accounts import AccountStore, principal_for
    from carelight.sde import model
    from carelight.sde.governance import Governance

    accounts = AccountStore(store.engine)
    who = lambda name: principal_for(accounts.get(name))  # noqa: E731
    g = Governance(store.engine, trail)
    p = g.create(
        who("researcher"),
        {
            "title": "Benchmark: every table", "lay_summary": "A benchmark of the extract.",
            "purpose": "Measure the extract's rate.", "legal_basis": "public-task",
            "confidentiality_basis": "section-251", "organisation": "Carelight benchmarks",
            "tables": [t.name for t in model.TABLES], "start_date": "2026-01-01",
            "end_date": "2030-12-31",
        },
    )  # fmt: skip
    g.transition(who("researcher"), p.id, "submit")
    g.transition(who("dac"), p.id, "approve", "Benchmark.")
    return p.id


def run(people: int, seed: int, spark: bool) -> dict:
    home, _ = build(people, seed)
    os.environ["CARELIGHT_HOME"] = str(home)
    os.environ.pop("CARELIGHT_DATABASE_URL", None)
    from carelight.audit.trail import log_engine, open_trail
    from carelight.config import Settings
    from carelight.fhir.store import open_store
    from carelight.sde.extract import run_extract

    settings = Settings.from_env()
    store = open_store(settings.database_url, settings.base_url)
    trail = open_trail(log_engine(settings, store.engine), settings)
    results = {}
    try:
        project_id = _project(store, trail)
        for engine in ("duckdb", "spark") if spark else ("duckdb",):
            wall, cpu = time.perf_counter(), time.process_time()
            result = run_extract(store, trail, settings, project_id, engine=engine)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            results[engine] = {
                "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "people": result.people,
                "resources": result.resources, "rows": sum(result.table_rows.values()),
                "opted_out": result.opted_out,
                "people_per_s": round(result.people / wall), "resources_per_s":
                round(result.resources / wall), "people_per_cpu_s": round(result.people / cpu),
            }  # fmt: skip
    finally:
        trail.close()
        store.engine.dispose()
    results["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 people")
    parser.add_argument("--people", type=int, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--spark", action="store_true", help="also time the Spark engine")
    args = parser.parse_args(argv)
    people = args.people or (2000 if args.quick else 10_000)
    info = machine_info()
    load = os.getloadavg()
    console.print(f"{info} load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    results = run(people, args.seed, args.spark)
    console.print(f"Extract of {people:,} synthetic people (every research table):")
    for engine, r in results.items():
        if engine == "max_rss_mib":
            continue
        console.print(
            f"  {engine}: {r['wall_s']} s wall, {r['cpu_s']} s CPU (this process); "
            f"{r['people']:,} people, {r['resources']:,} resources, {r['rows']:,} rows, "
            f"{r['opted_out']:,} opted out; {r['people_per_s']:,} people/s, "
            f"{r['resources_per_s']:,} resources/s ({r['people_per_cpu_s']:,} people per CPU s)"
        )
    console.print(f"  peak memory (max RSS of this process): {results['max_rss_mib']:,} MiB")
    load = os.getloadavg()
    console.print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
