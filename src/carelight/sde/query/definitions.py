"""Loading a researcher's dataset definition file: run it, take its ``dataset`` and ``measures``.

A definition file is ordinary Python that builds a ``dataset`` (``create_dataset()``) and/or
``measures`` (``create_measures()``) at module level. ``load_definition`` runs it and returns
the query model of each. Relative paths given to ``codelist_from_csv`` are read from the
definition file's folder, so a project folder can be moved or checked out anywhere.

This runs the file's code in this process: it is not a sandbox. Inside the secure data
environment, jobs load definitions in a sandboxed subprocess (issue 9); only the query model
crosses back.
"""

from __future__ import annotations

import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carelight.sde.query import codelists, nodes
from carelight.sde.query.dataset import Dataset
from carelight.sde.query.language import QueryError
from carelight.sde.query.measures import Measures


class DefinitionError(RuntimeError):
    """A definition file that cannot be loaded; the message says why."""


@dataclass(frozen=True)
class Definition:
    """What a definition file defines: the query model of its dataset and measures."""

    path: Path
    dataset: nodes.Dataset | None
    measures: tuple[nodes.Measure, ...] = ()
    dummy_data: dict[str, Any] = field(default_factory=dict, compare=False)


def load_definition(path: str | Path) -> Definition:
    """Run a definition file and return its ``dataset`` and ``measures`` as query models."""
    path = Path(path)
    if not path.is_file():
        raise DefinitionError(f"no definition file {str(path)!r}")
    token = codelists.BASE_DIR.set(path.resolve().parent)
    try:
        namespace = runpy.run_path(str(path), run_name="carelight_definition")
    except (QueryError, codelists.CodelistError) as e:
        raise DefinitionError(f"{path.name}: {e}") from None
    finally:
        codelists.BASE_DIR.reset(token)

    dataset = namespace.get("dataset")
    measures = namespace.get("measures")
    if dataset is None and measures is None:
        raise DefinitionError(
            f"{path.name} defines neither `dataset` (create_dataset()) nor `measures` "
            "(create_measures()) at module level"
        )
    if dataset is not None and not isinstance(dataset, Dataset):
        raise DefinitionError(f"{path.name}: `dataset` must come from create_dataset()")
    if measures is not None and not isinstance(measures, Measures):
        raise DefinitionError(f"{path.name}: `measures` must come from create_measures()")
    try:
        return Definition(
            path=path,
            dataset=dataset.to_query() if dataset is not None else None,
            measures=measures.to_query() if measures is not None else (),
            dummy_data=dataset.dummy_data_config if dataset is not None else {},
        )
    except QueryError as e:
        raise DefinitionError(f"{path.name}: {e}") from None
