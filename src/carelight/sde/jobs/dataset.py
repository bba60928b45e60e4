"""The dataset step: run a dataset definition to produce the job's dataset file.

The query language (``carelight.sde.query``) owns what a definition means. The runner only
needs one function, called **inside the sandbox** (a definition is researcher code too)::

    produce_dataset(definition_path: Path, store_dir: Path, out_path: Path) -> None

It reads the definition, queries the research store at ``store_dir`` (read-only) and writes
the dataset to ``out_path`` (CSV: one row per patient, a header row). ``CARELIGHT_DATA`` in
the environment says ``dummy`` or ``real``: for a dummy run ``store_dir`` is a dummy store, and
a producer may instead generate dummy data from the definition.

A producer is named ``module:function``. :data:`DEFAULT_PRODUCER` is the query language's;
until it exists, runs fail with a clear message and tests use :mod:`.standin`.

Run as ``python -I -m carelight.sde.jobs.dataset PRODUCER DEFINITION STORE OUT``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

DEFAULT_PRODUCER = "carelight.sde.query:produce_dataset"
DATASET_FILENAME = "dataset.csv"


class ProduceDataset(Protocol):
    def __call__(self, definition_path: Path, store_dir: Path, out_path: Path) -> None: ...


class ProducerNotFound(LookupError):
    pass


def check_producer_name(spec: str) -> tuple[str, str]:
    module, sep, func = spec.partition(":")
    if not sep or not module or not func.isidentifier():
        raise ValueError(f"a dataset producer is named 'module:function', not {spec!r}")
    return module, func


def load_producer(spec: str) -> Callable[[Path, Path, Path], None]:
    module_name, func = check_producer_name(spec)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ProducerNotFound(
            f"dataset producer {spec} is not installed ({exc.msg}); the query language "
            "provides carelight.sde.query:produce_dataset"
        ) from None
    producer = getattr(module, func, None)
    if not callable(producer):
        raise ProducerNotFound(f"{module_name} has no function {func}")
    return producer


def main(args: list[str]) -> int:
    if len(args) != 4:
        print("usage: dataset PRODUCER DEFINITION STORE OUT", file=sys.stderr)
        return 2
    spec, definition, store, out = args
    try:
        producer = load_producer(spec)
    except (ProducerNotFound, ValueError) as exc:
        print(f"dataset step: {exc}", file=sys.stderr)
        return 3
    producer(Path(definition), Path(store), Path(out))
    if not Path(out).is_file():
        print(f"dataset step: {spec} wrote no dataset at {out}", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
