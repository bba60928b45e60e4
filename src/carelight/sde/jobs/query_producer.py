"""The dataset step's producer for definitions written in Carelight's query language, an
adapter until ``carelight.sde.query`` offers ``produce_dataset`` itself (the runner's
:data:`~carelight.sde.jobs.dataset.DEFAULT_PRODUCER`).

Runs **inside the sandbox** (``python -I -m carelight.sde.jobs.dataset``): loads the
definition (``sde.query.definitions``), runs its ``dataset`` on the DuckDB engine over the
read-only research store (dummy or real, as the runner mounted it) and writes the rows as CSV.

A project's extract holds only the tables the project was approved for, while the engine
expects every table of the research data model: the store is attached read-only and each
table it lacks is an empty table of the model's columns, so a definition that names a table
the project was not given sees no rows rather than failing.
"""

from __future__ import annotations

from pathlib import Path


def _connection(store_dir: Path):
    import duckdb

    from carelight.sde import model
    from carelight.sde.query.store import SQL_TYPES, duckdb_path

    con = duckdb.connect(config={"threads": 1})
    path = str(duckdb_path(store_dir)).replace("'", "''")
    con.execute(f"ATTACH '{path}' AS store (READ_ONLY)")
    present = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'store'"
        ).fetchall()
    }
    for t in model.TABLES:  # names and types from the model, never from input
        if t.name in present:
            con.execute(f'CREATE VIEW "{t.name}" AS SELECT * FROM store."{t.name}"')
        else:
            columns = ", ".join(f'"{c.name}" {SQL_TYPES[c.type]}' for c in t.columns)
            con.execute(f'CREATE TABLE "{t.name}" ({columns})')
    return con


def produce_dataset(definition_path: Path, store_dir: Path, out_path: Path) -> None:
    from carelight.sde.query.definitions import load_definition
    from carelight.sde.query.engines.duckdb import DuckDBEngine
    from carelight.sde.query.run import run_dataset, write_rows

    definition = load_definition(definition_path)
    con = _connection(Path(store_dir))
    try:
        columns, rows = run_dataset(definition, DuckDBEngine(connection=con))
    finally:
        con.close()
    write_rows(rows, columns, Path(out_path))
