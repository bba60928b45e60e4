"""``carelight synth``: generate the synthetic population and report what was written."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from carelight.synth.writer import generate


def run(people: int, seed: int, out: Path, workers: int | None, console: Console) -> None:
    last_shown = [0]

    def progress(done: int, total: int) -> None:
        # A line every ~10 %: works the same on a terminal and in CI logs.
        if done * 10 // total > last_shown[0] or done == total:
            last_shown[0] = done * 10 // total
            console.print(f"  {done:,} / {total:,} people")

    console.print(f"Generating {people:,} people (seed {seed}) into {out}")
    summary = generate(out, people, seed, workers=workers, progress=progress)
    table = Table(title="Resources written", show_edge=False)
    table.add_column("type")
    table.add_column("count", justify="right")
    for kind, count in sorted(summary.by_type().items()):
        table.add_row(kind, f"{count:,}")
    table.add_row("total", f"{summary.resources:,}")
    console.print(table)
    rate = summary.resources / summary.seconds if summary.seconds else 0
    console.print(
        f"{summary.resources:,} resources for {people:,} people in {summary.seconds:.1f} s "
        f"({rate:,.0f} resources/s); ground truth in {out / 'ground-truth.csv'}"
    )
