"""Shared synthetic populations for the synth tests (generated once per test session)."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from carelight.synth import generate

SMALL = 150  # every resource of this one is validated
MEDIUM = 2000  # for the statistical checks


@dataclass
class Synth:
    """A generated population, parsed lazily one resource type at a time."""

    root: Path
    people: int
    truth: list[dict] = field(default_factory=list)
    _parsed: dict[str, list[tuple[str, dict]]] = field(default_factory=dict)

    @property
    def folders(self) -> dict[str, list[str]]:
        """Source folder -> the resource types it has files for."""
        found: dict[str, list[str]] = defaultdict(list)
        for path in sorted(self.root.glob("*/*.ndjson")):
            found[path.parent.name].append(path.stem)
        return found

    def resources(self, kind: str | None = None):
        """(source folder, resource) pairs, of one type or of all."""
        kinds = [kind] if kind else sorted({p.stem for p in self.root.glob("*/*.ndjson")})
        for k in kinds:
            if k not in self._parsed:
                self._parsed[k] = [
                    (path.parent.name, orjson.loads(line))
                    for path in sorted(self.root.glob(f"*/{k}.ndjson"))
                    for line in path.read_bytes().splitlines()
                ]
            yield from self._parsed[k]


def load(root: Path, people: int) -> Synth:
    synth = Synth(root, people)
    with open(root / "ground-truth.csv", newline="", encoding="utf-8") as fh:
        synth.truth = list(csv.DictReader(fh))
    return synth


@pytest.fixture(scope="session")
def small(tmp_path_factory) -> Synth:
    root = tmp_path_factory.mktemp("synth-small")
    generate(root, SMALL, seed=11, workers=2)
    return load(root, SMALL)


@pytest.fixture(scope="session")
def medium(tmp_path_factory) -> Synth:
    root = tmp_path_factory.mktemp("synth-medium")
    generate(root, MEDIUM, seed=5, workers=2)
    return load(root, MEDIUM)
