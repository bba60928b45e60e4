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
    root: Path
    people: int
    # source folder -> resource type -> resources
    folders: dict[str, dict[str, list[dict]]] = field(default_factory=dict)
    truth: list[dict] = field(default_factory=list)

    def resources(self, kind: str | None = None):
        for folder, types in self.folders.items():
            for resource_type, items in types.items():
                if kind is None or resource_type == kind:
                    for resource in items:
                        yield folder, resource


def load(root: Path, people: int) -> Synth:
    synth = Synth(root, people)
    for path in sorted(root.glob("*/*.ndjson")):
        lines = path.read_bytes().splitlines()
        synth.folders.setdefault(path.parent.name, defaultdict(list))[path.stem] = [
            orjson.loads(line) for line in lines
        ]
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
