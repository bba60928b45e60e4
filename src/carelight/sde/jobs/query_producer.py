"""The dataset step's producer for definitions written in Carelight's query language, an
adapter until ``carelight.sde.query`` offers ``produce_dataset`` itself (the runner's
:data:`~carelight.sde.jobs.dataset.DEFAULT_PRODUCER`).

Runs **inside the sandbox** (``python -I -m carelight.sde.jobs.dataset``): loads the
definition (``sde.query.definitions``), runs its ``dataset`` on the DuckDB engine over the
read-only research store (dummy or real, as the runner mounted it) and writes the rows as CSV.
"""

from __future__ import annotations

from pathlib import Path


def produce_dataset(definition_path: Path, store_dir: Path, out_path: Path) -> None:
    from carelight.sde.query.definitions import load_definition
    from carelight.sde.query.run import open_engine, run_dataset, write_rows

    definition = load_definition(definition_path)
    columns, rows = run_dataset(definition, open_engine("duckdb", store_dir))
    write_rows(rows, columns, Path(out_path))
