"""``carelight mpi …``: train the linkage model, link the whole store, and see where it stands."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select

from carelight.config import Settings

app = typer.Typer(help="The master patient index (record linkage).", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)

# A model is trained on the first load that brings at least this many Patient records.
MIN_TRAINING_RECORDS = 500


def _open():
    """The store, with the transparency log attached so every decision is recorded."""
    from carelight.audit.trail import log_engine, open_trail
    from carelight.fhir.store import open_store

    settings = Settings.from_env()
    settings.ensure_home()
    store = open_store(settings.database_url, settings.base_url)
    store.mpi.trail = open_trail(log_engine(settings, store.engine), settings)
    return store


def _close(store) -> None:
    if store.mpi.trail is not None:
        store.mpi.trail.close()
        store.mpi.trail = None
    store.engine.dispose()


def _link(store, out: Console) -> None:
    from carelight.identity.mpi.batch import link_all

    with store.read_conn() as conn:
        from carelight.identity.mpi.core import MR

        total = conn.execute(select(func.count()).select_from(MR)).scalar_one()
    with Progress(
        TextColumn("Linking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=out,
    ) as progress:  # fmt: skip
        task = progress.add_task("link", total=total)
        report = link_all(store, progress=lambda n: progress.advance(task, n))
    routes = ", ".join(f"{k} {v:,}" for k, v in sorted(report.routes.items()))
    out.print(
        f"Linked {report.records:,} records into {report.persons:,} persons in "
        f"{report.seconds:,.1f} s ({routes}); {report.moved:,} changed person, "
        f"{report.numbers_assigned:,} given their person's NHS number, "
        f"{report.review_open:,} waiting for review."
    )


def train_and_link(store, out: Console, *, seed: int = 5) -> None:
    import time

    from carelight.identity.mpi.batch import train_store

    started = time.perf_counter()
    model = train_store(store, seed=seed)
    out.print(
        f"Trained linkage model version {model.version} on "
        f"{model.training.get('records', 0):,} records in {time.perf_counter() - started:,.1f} s."
    )
    _link(store, out)


def after_load(store, out: Console) -> None:
    """After ``carelight load``: the first time a population is there, train and link it.

    Loaded records were already matched one by one (by NHS number until a model exists); the
    first model is trained on the loaded population and then links it all in one batch.
    """
    from carelight.identity.mpi.core import MR

    with store.read_conn() as conn:
        model = store.mpi.model(conn)
        records = conn.execute(select(func.count()).select_from(MR)).scalar_one()
    if model is not None or records < MIN_TRAINING_RECORDS:
        return
    trail = store.mpi.trail
    if trail is None:
        from carelight.audit.trail import log_engine, open_trail

        settings = Settings.from_env()
        store.mpi.trail = open_trail(log_engine(settings, store.engine), settings)
    try:
        train_and_link(store, out)
    finally:
        if trail is None:
            store.mpi.trail.close()
            store.mpi.trail = trail


@app.command()
def train(seed: int = typer.Option(5, help="Random seed for the u estimate")) -> None:
    """Train a model on every Patient record in the store (the next version), then link all."""
    store = _open()
    try:
        train_and_link(store, console, seed=seed)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        _close(store)


@app.command()
def link() -> None:
    """Re-link every Patient record with the active model (one Splink batch)."""
    store = _open()
    try:
        _link(store, console)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        _close(store)


@app.command()
def status() -> None:
    """Records, persons, how they were linked, the review queue and the model."""
    from carelight.fhir.store import open_store
    from carelight.identity.mpi.core import MR, RV

    settings = Settings.from_env()
    store = open_store(settings.database_url)
    with store.read_conn() as conn:
        records = conn.execute(select(func.count()).select_from(MR)).scalar_one()
        persons = conn.execute(select(func.count(func.distinct(MR.c.person)))).scalar_one()
        how = conn.execute(select(MR.c.how, func.count()).group_by(MR.c.how)).all()
        queue = conn.execute(select(RV.c.status, func.count()).group_by(RV.c.status)).all()
        model = store.mpi.model(conn)
    typer.echo(f"records: {records}")
    typer.echo(f"persons: {persons}")
    for name, n in sorted(how):
        typer.echo(f"linked by {name}: {n}")
    for name, n in sorted(queue):
        typer.echo(f"review {name}: {n}")
    typer.echo(f"model: {'version ' + str(model.version) if model else 'none (NHS number only)'}")
    store.engine.dispose()
