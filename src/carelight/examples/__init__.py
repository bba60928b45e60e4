"""A small, fictional example data set: a GP practice, an NHS trust and a council's adult social care.

One NDJSON file per resource type under one folder per source system (``gp-practice/``,
``hospital-trust/``, ``council-asc/``); load it with ``carelight load $(example_dir)`` or
``carelight demo``. See README.md beside this file.
"""

from __future__ import annotations

from pathlib import Path

SOURCE_SYSTEMS: tuple[str, ...] = ("gp-practice", "hospital-trust", "council-asc")


def example_dir() -> Path:
    """The folder that holds the example NDJSON files."""
    return Path(__file__).resolve().parent


def example_files() -> list[Path]:
    """Every example NDJSON file, sorted by path."""
    return sorted(example_dir().rglob("*.ndjson"))
