"""The dataset step of a job: a definition run on the research store mounted in the sandbox.

The job runner (``carelight.sde.jobs``) calls ``produce_dataset`` inside the sandbox with the
store at ``/store`` (read-only): the real research store for a real run, a dummy store made
from the same definition (``carelight.sde.query.dummy.make_dummy_store``) for a dummy run, so
the step itself is the same code either way. It writes a CSV with a header and a
``patient_id`` column (the dataset), or the measures' rows if the definition has only measures.
"""

from __future__ import annotations

from pathlib import Path

from carelight.sde.query.definitions import load_definition
from carelight.sde.query.run import open_engine, run_dataset, run_measures, write_rows


def produce_dataset(definition_path: Path, store_dir: Path, out_path: Path) -> int:
    """Run the definition on the store with DuckDB and write its rows to ``out_path``."""
    definition = load_definition(definition_path)
    engine = open_engine("duckdb", store_dir)
    try:
        if definition.dataset is not None:
            columns, rows = run_dataset(definition, engine)
        else:
            columns, rows = run_measures(definition, engine)
    finally:
        engine.close()
    write_rows(rows, columns, out_path)
    return len(rows)
