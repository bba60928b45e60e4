"""Record linkage (issue 5): accuracy against the ground truth, and how long it takes.

Builds (or reuses, under ``bench/.data/``) a synthetic population, trains a model on it, links
it in one batch with Splink on DuckDB, and matches records one at a time as the write path
will. Prints pairwise precision and recall of automatic links, the review share, a threshold
sweep and the timings. ``--eval-seed`` also links a second, unseen population with the same
model, so the thresholds are not judged only on the data they were chosen on.

    .venv/bin/python -m bench.linkage [--quick] [--people N] [--seed S] [--eval-seed S]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from carelight.identity.linkage import (
    GroundTruth,
    LinkageIndex,
    LinkageModel,
    Thresholds,
    evaluate,
    records_from_folder,
    train,
)
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


def time_match_one(model: LinkageModel, records, clusters, n: int) -> list[float]:
    """Seconds per ``match_one`` of a record taken out of the index and put back."""
    index = LinkageIndex.from_clusters(records, clusters)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 people instead of 10,000")
    parser.add_argument("--people", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--eval-seed", type=int, default=None, help="also link this population")
    parser.add_argument("--max-pairs", type=float, default=5e6, help="pairs sampled for u")
    args = parser.parse_args(argv)
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

    table = Table(title="timings")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for label, seconds in timings.items():
        table.add_row(label, f"{seconds:.2f}")
    one.sort()
    table.add_row(
        f"match_one x{len(one)} (median / p99, ms)",
        f"{statistics.median(one) * 1000:.2f} / {one[int(len(one) * 0.99) - 1] * 1000:.2f}",
    )
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
