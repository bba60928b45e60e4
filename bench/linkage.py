"""Record linkage (issue 5): accuracy against the ground truth, and how long it takes.

Builds (or reuses, under ``bench/.data/``) a synthetic population, trains a model on it, links
it in one batch with Splink on DuckDB, and matches records one at a time as the write path
will. Prints pairwise precision and recall of automatic links, the review share, a threshold
sweep and the timings. ``--eval-seed`` also links a second, unseen population with the same
model, so the thresholds are not judged only on the data they were chosen on.

Then, unless ``--quick`` (or ``--records 0``), the scale run of issue 5: a Patient-only
population of ``--records`` records (1,000,000 by default; ``bench/linkage_population.py``,
the full generator's Patient records and ground truth), features, training on a sample,
batch linkage with Splink on DuckDB, accuracy, peak memory, and ``match_one`` against the
whole index; and Splink on Spark (local mode) linking ``--spark-records`` records with the
same model, checked against DuckDB's clusters.

    .venv/bin/python -m bench.linkage [--quick] [--people N] [--seed S] [--eval-seed S]
        [--records N] [--train-sample N] [--spark-records N]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import resource
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import linkage_population
from carelight.identity.linkage import (
    GroundTruth,
    LinkageIndex,
    LinkageModel,
    Thresholds,
    evaluate,
    records_from_folder,
    train,
)
from carelight.identity.linkage.comparisons import PREDICTION_BLOCKING
from carelight.identity.linkage.decisions import resolve
from carelight.synth import generate

DATA_DIR = Path(__file__).resolve().parent / ".data"
console = Console()


def population(people: int, seed: int) -> Path:
    """The synthetic population for (people, seed), generated once and cached."""
    folder = DATA_DIR / f"people-{people}-seed-{seed}"
    if not (folder / "ground-truth.csv").exists():
        console.print(f"generating {people:,} people (seed {seed}) into {folder}")
        generate(folder, people, seed)
    return folder


def timed(label: str, timings: dict, fn, *args, **kwargs):
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    timings[label] = time.perf_counter() - started
    return result


def sweep(model: LinkageModel, records, truth: GroundTruth) -> Table:
    """Precision, recall and review share for several thresholds, from one prediction."""
    edges = model.edges(records, min_probability=0.01)
    ids = [r.unique_id for r in records]
    table = Table(title="threshold sweep (pairwise, automatic links)")
    for column in ("upper", "lower", "precision", "recall", "review", "false links"):
        table.add_column(column, justify="right")
    for upper, lower in (
        (0.9, 0.5), (0.99, 0.5), (0.995, 0.5), (0.999, 0.5), (0.9999, 0.5), (0.995, 0.05),
    ):  # fmt: skip
        result = evaluate(resolve(ids, edges, Thresholds(upper=upper, lower=lower)), truth)
        table.add_row(
            f"{upper}", f"{lower}", f"{result.precision:.4%}", f"{result.recall:.4%}",
            f"{result.review_share:.3%}", f"{result.linked_pairs - result.correct_pairs:,}",
        )  # fmt: skip
    return table


def time_match_one(model: LinkageModel, records, clusters, n: int, index=None) -> list[float]:
    """Seconds per ``match_one`` of a record taken out of the index and put back."""
    index = index or LinkageIndex.from_clusters(records, clusters)
    seconds = []
    for record in random.Random(1).sample(records, min(n, len(records))):
        person = index.person[record.unique_id]
        index.remove(record.unique_id)
        started = time.perf_counter()
        model.match_one(record, index)
        seconds.append(time.perf_counter() - started)
        index.add(record, person)
    return seconds


def report(title: str, result) -> None:
    console.print(f"[bold]{title}[/bold]: {result.summary()}")
    if result.missed_by_imperfection:
        missed = ", ".join(f"{k} {v}" for k, v in result.missed_by_imperfection.items())
        console.print(f"  records not with all their partners, by imperfection: {missed}")


def peak_memory_gib() -> float:
    """The process's peak resident memory so far (Python, DuckDB and all), in GiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def blocked_pairs(records) -> dict[str, int]:
    """Pairs each prediction blocking rule generates (their sum bounds the pairs compared)."""
    import duckdb

    from carelight.identity.linkage.model import _frame

    con = duckdb.connect()
    con.register("records", _frame(records))
    out = {}
    for rule in PREDICTION_BLOCKING:
        present = " AND ".join(f"{c} IS NOT NULL" for c in rule)
        n = con.execute(
            f"SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM (SELECT count(*) AS n "
            f"FROM records WHERE {present} GROUP BY {', '.join(rule)})"
        ).fetchone()[0]
        out[" + ".join(rule)] = int(n)
    con.close()
    return out


def timings_table(timings: dict, one: list[float] | None = None, title: str = "timings"):
    table = Table(title=title)
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for label, seconds in timings.items():
        table.add_row(label, f"{seconds:.2f}")
    if one:
        one = sorted(one)
        table.add_row(
            f"match_one x{len(one)} (median / p99, ms)",
            f"{statistics.median(one) * 1000:.2f} / {one[int(len(one) * 0.99) - 1] * 1000:.2f}",
        )
    return table


def scale(
    n_records: int, seed: int, train_sample: int, spark_records: int, index_people: int = 0
) -> int:
    """The million-record run: returns 1 if a target of issue 5 is missed."""
    console.rule(f"scale: {n_records:,} Patient records")
    console.print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs"
    )
    folder = linkage_population.population(n_records, seed)
    timings: dict[str, float] = {}
    records = timed("read features", timings, records_from_folder, folder)
    truth = GroundTruth.read(folder)
    pairs = timed("count blocked pairs", timings, blocked_pairs, records)
    sample = random.Random(seed).sample(records, min(train_sample, len(records)))
    model = timed(f"train (sample of {len(sample):,})", timings, train, sample)
    del sample
    clusters = timed("link (batch, DuckDB)", timings, model.link, records)
    linked_peak = peak_memory_gib()
    result = evaluate(clusters, truth)
    index = timed("build the match_one index", timings, LinkageIndex.from_clusters, records,
                  clusters)  # fmt: skip
    one = time_match_one(model, records, clusters, 2000, index=index)
    # A server would freeze its long-lived objects after loading the index, so the collector's
    # full passes stop walking them; measured both ways.
    gc.freeze()
    frozen = time_match_one(model, records, clusters, 2000, index=index)
    gc.unfreeze()
    console.print(
        f"{len(records):,} records; blocked pairs per rule: "
        + ", ".join(f"{rule} {n:,}" for rule, n in pairs.items())
        + f" (at most {sum(pairs.values()):,} in all)"
    )
    report("linked", result)
    console.print(
        f"peak memory: {linked_peak:.2f} GiB after linking, {peak_memory_gib():.2f} GiB with the "
        f"match_one index; load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    table = timings_table(timings, one, title=f"timings, {len(records):,} records")
    frozen.sort()
    table.add_row(
        "match_one x2000 after gc.freeze() (median / p99, ms)",
        f"{statistics.median(frozen) * 1000:.2f} / {frozen[int(len(frozen) * 0.99) - 1] * 1000:.2f}",
    )
    console.print(table)
    one.sort()
    failed = [
        name
        for name, ok in (
            ("batch linkage <= 180 s", timings["link (batch, DuckDB)"] <= 180),
            ("match_one p99 <= 50 ms", one[int(len(one) * 0.99) - 1] <= 0.05),
            ("precision >= 99.5 %", result.precision >= 0.995),
            ("recall >= 98 %", result.recall >= 0.98),
            ("review < 2 %", result.review_share < 0.02),
        )
        if not ok
    ]
    del index, clusters, records
    if spark_records:
        spark(model, spark_records, seed)
    if index_people and not big_index(model, index_people, seed):
        failed.append(f"match_one p99 <= 50 ms against {index_people:,} people")
    if failed:
        console.print(f"[red]targets missed: {', '.join(failed)}[/red]")
        return 1
    console.print("targets met: batch <= 3 min, match_one <= 50 ms, accuracy")
    console.print(
        "(the generator has at most 900,000 people: the synthetic NHS numbers' range; "
        "the 1,000,000-person index of issue 5 is measured with that many)"
    )
    return 0


def big_index(model: LinkageModel, people: int, seed: int) -> bool:
    """``match_one`` against an index of every record of ``people`` people; True if p99 <= 50 ms.

    Each record is its own person here (no batch linkage first): the time of ``match_one``
    depends on the candidates the blocking keys find, not on how they were clustered."""
    console.rule(f"match_one against the records of {people:,} people")
    folder = linkage_population.population(None, seed + 2, people=people)
    timings: dict[str, float] = {}
    records = timed("read features", timings, records_from_folder, folder)
    index = timed("build the index", timings, LinkageIndex, records)
    gc.freeze()
    one = time_match_one(model, records, None, 2000, index=index)
    gc.unfreeze()
    console.print(
        f"{len(records):,} records of {people:,} people in the index; peak memory "
        f"{peak_memory_gib():.2f} GiB; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    console.print(timings_table(timings, one, title="match_one, after gc.freeze()"))
    one.sort()
    return one[int(len(one) * 0.99) - 1] <= 0.05


def spark(model: LinkageModel, n_records: int, seed: int) -> None:
    """The same model linking a smaller population on Spark (local mode) and on DuckDB."""
    from carelight.identity.linkage.spark import local_session, spark_api

    console.rule(f"Spark (local[2]) vs DuckDB: {n_records:,} Patient records")
    folder = linkage_population.population(n_records, seed + 1)
    records = records_from_folder(folder)
    timings: dict[str, float] = {}
    session = timed("start Spark", timings, local_session, master="local[2]",
                    shuffle_partitions=4, driver_memory="4g")  # fmt: skip
    try:
        api = spark_api(session)
        on_spark = timed("link (batch, Spark)", timings, model.link, records, db_api=api)
        on_duckdb = timed("link (batch, DuckDB)", timings, model.link, records)
    finally:
        session.stop()
    same = {u: d.person_id for u, d in on_spark.decisions.items()} == {
        u: d.person_id for u, d in on_duckdb.decisions.items()
    }
    report("linked on Spark", evaluate(on_spark, GroundTruth.read(folder)))
    console.print(f"Spark and DuckDB clusters identical: {same}")
    console.print(timings_table(timings, title=f"timings, {len(records):,} records"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 people instead of 10,000")
    parser.add_argument("--people", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--eval-seed", type=int, default=None, help="also link this population")
    parser.add_argument("--max-pairs", type=float, default=5e6, help="pairs sampled for u")
    parser.add_argument(
        "--records", type=int, default=None, help="scale run size (1,000,000; 0: none)"
    )
    parser.add_argument("--train-sample", type=int, default=200_000, help="scale run training")
    parser.add_argument(
        "--spark-records", type=int, default=None, help="Spark run size (100,000; 0: none)"
    )
    parser.add_argument(
        "--index-people", type=int, default=None, help="match_one index (900,000; 0: none)"
    )
    parser.add_argument("--scale-only", action="store_true", help="skip the 10,000-people run")
    args = parser.parse_args(argv)
    n_records = args.records if args.records is not None else (0 if args.quick else 1_000_000)
    spark_records = args.spark_records
    if spark_records is None:
        spark_records = 0 if args.quick else 100_000
    index_people = args.index_people
    if index_people is None:
        index_people = 0 if args.quick else 900_000
    run_scale = lambda: scale(  # noqa: E731
        n_records, args.seed, args.train_sample, spark_records, index_people
    )
    if args.scale_only:
        return run_scale() if n_records else 0
    people = args.people or (2000 if args.quick else 10000)

    timings: dict[str, float] = {}
    folder = population(people, args.seed)
    records = timed("read features", timings, records_from_folder, folder)
    truth = GroundTruth.read(folder)
    model = timed("train", timings, train, records, max_pairs=args.max_pairs)
    path = timed("save", timings, model.save, DATA_DIR / "linkage-models")
    model = timed("load", timings, LinkageModel.load, path)
    clusters = timed("link (batch)", timings, model.link, records)
    one = time_match_one(model, records, clusters, 1000)

    console.print(
        f"{people:,} people, seed {args.seed}: {len(records):,} Patient records; "
        f"thresholds upper {model.thresholds.upper}, lower {model.thresholds.lower}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    )
    report("linked", evaluate(clusters, truth))
    console.print(sweep(model, records, truth))
    if args.eval_seed is not None:
        other = population(people, args.eval_seed)
        other_records = records_from_folder(other)
        other_clusters = timed("link (unseen population)", timings, model.link, other_records)
        report(
            f"unseen population (seed {args.eval_seed})",
            evaluate(other_clusters, GroundTruth.read(other)),
        )

    console.print(timings_table(timings, one))
    if n_records:
        return run_scale()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
