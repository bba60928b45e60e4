"""The dataset step of a job: a definition run inside the sandbox.

The job runner (``carelight.sde.jobs``) calls ``produce_dataset`` inside the sandbox (a
definition is researcher code too) with the store at ``/store`` (read-only) and
``CARELIGHT_DATA`` set to ``dummy`` or ``real``:

* a **real** run runs the definition on the project's research store with DuckDB;
* a **dummy** run makes dummy data from the definition itself (``carelight.sde.query.dummy``:
  its population, at the size its ``configure_dummy_data`` asks for, with the codes and values
  it mentions) and runs the definition on that with the reference engine. The analysis script
  then gets a dataset shaped exactly like the real one, without anyone seeing real data.

It writes a CSV with a header and a ``patient_id`` column (the dataset), or the measures' rows
if the definition has only measures.
"""

from __future__ import annotations

import os
from pathlib import Path

from carelight.sde.query.definitions import load_definition
from carelight.sde.query.run import open_engine, run_dataset, run_measures, write_rows


def produce_dataset(definition_path: Path, store_dir: Path, out_path: Path) -> int:
    """Run the definition (on dummy data for a dummy run) and write its rows to ``out_path``."""
    definition = load_definition(definition_path)
    if os.environ.get("CARELIGHT_DATA") == "dummy":
        from carelight.sde.query.dummy import DEFAULT_SIZE, generate_tables
        from carelight.sde.query.engines.inmemory import InMemoryEngine

        query = definition.dataset if definition.dataset is not None else definition.measures
        size = definition.dummy_data.get("population_size") or DEFAULT_SIZE
        engine = InMemoryEngine(generate_tables(query, size))
    else:
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
