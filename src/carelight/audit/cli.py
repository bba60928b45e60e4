"""``carelight audit …``: check the transparency log, print its checkpoint and key."""

from __future__ import annotations

import base64
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from carelight.config import Settings

app = typer.Typer(help="The transparency log.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)


def _engine(settings: Settings):
    from carelight.audit.trail import log_engine

    return log_engine(settings, create=False)  # verify reads; it never makes a log


@app.command()
def verify(
    public_key: str = typer.Option(
        None,
        "--public-key",
        help="The log's verifier key (vkey, as served at /audit/public-key); "
        "default: the key file in CARELIGHT_HOME",
    ),
    checkpoint: list[Path] = typer.Option(
        None,
        "--checkpoint",
        exists=True,
        dir_okay=False,
        help="A checkpoint saved earlier (e.g. from GET /audit/checkpoint); may be repeated",
    ),
) -> None:
    """Check the whole transparency log; exit 1 if anything is wrong.

    Recomputes every leaf hash from the stored entries and the whole Merkle tree, compares them
    with the stored hashes, checks every checkpoint's signatures and that its root matches the
    entries at its size, and that the patient index matches the entries.
    """
    from carelight.audit.checkpoint import CheckpointError, parse_vkey, public_key_of
    from carelight.audit.verify import has_log, verify_log

    settings = Settings.from_env()
    if public_key:
        try:
            _, _, key = parse_vkey(public_key)
        except CheckpointError as exc:
            console.print(f"[red]--public-key: {exc}[/red]")
            raise typer.Exit(2) from None
    else:
        key = public_key_of(settings.home)
    engine = _engine(settings)
    try:
        if not has_log(engine):
            console.print(
                "[red]This database has no transparency log yet[/red] "
                f"({settings.database_url.split('@')[-1]}): run `carelight serve` or "
                "`carelight migrate` first."
            )
            raise typer.Exit(2)
        notes = [path.read_text(encoding="utf-8") for path in checkpoint or ()]
        with Progress(
            TextColumn("verifying"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("verify", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = verify_log(engine, key, extra_checkpoints=notes, progress=progress)
    finally:
        engine.dispose()

    checked = f"{_count(report.entries, 'entry', 'entries')}, "
    checked += _count(report.checkpoints, "checkpoint", "checkpoints")
    if report.external:
        checked += f" and {_count(report.external, 'given checkpoint', 'given checkpoints')}"
    if report.ok:
        root = base64.b64encode(report.root).decode()
        console.print(f"[green]The transparency log is intact[/green]: {checked}; root {root}")
        return
    if report.first_bad_index is not None:
        console.print(f"[red]The log is damaged from entry {report.first_bad_index}.[/red]")
    else:
        console.print("[red]The log is damaged.[/red]")
    for problem in report.problems[:20]:
        console.print(f"  [red]✗[/red] {problem}", highlight=False)
    if len(report.problems) > 20:
        console.print(f"  … and {len(report.problems) - 20} more problems")
    console.print(f"Checked {checked}.")
    raise typer.Exit(1)


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


@app.command()
def checkpoint() -> None:
    """Print the latest signed checkpoint (signing a new one if the log has grown)."""
    from carelight.audit.trail import log_engine, open_trail
    from carelight.fhir.store import open_store

    settings = Settings.from_env()
    settings.ensure_home()
    store = open_store(settings.database_url, settings.base_url)
    trail = open_trail(log_engine(settings, store.engine), settings)
    try:
        typer.echo(trail.log.latest_checkpoint(force=True).note, nl=False)
    finally:
        trail.close()
        store.engine.dispose()


@app.command("public-key")
def public_key_command() -> None:
    """Print the log's verifier key (vkey), creating the key on first use."""
    from carelight.audit.checkpoint import load_signer

    settings = Settings.from_env()
    typer.echo(load_signer(settings.home).vkey)
