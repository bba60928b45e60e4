"""What a checked count table publishes, as intervals an attacker can deduce.

Every cell and margin of a released count table tells an attacker an interval for the true
count: an exact value (a count published as is), ``[r-2, r+2]`` for a count rounded to the
nearest 5 (never below the smallest publishable count), and for a redacted cell only that it
is not a published zero (at least 0 when zeros are redacted too, else at least 1): the same
marker stands for a cell redacted by a rule and one suppressed to protect it. A total
recomputed from the released cells adds nothing and is left out. The status (primary or
secondary) is kept for the checker's own criterion, not as knowledge of the attacker. This is
the form in which a released table is kept in its evidence record and fed to the audit of the
project's later tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from carelight.sde.disclosure.tables import Key

Status = Literal["released", "primary", "secondary"]


@dataclass(frozen=True)
class PublishedCell:
    key: Key
    lo: float
    hi: float
    status: Status


@dataclass
class PublishedTable:
    name: str
    dims: tuple[str, ...]
    labels: tuple[tuple[str, ...], ...]
    population: str | None
    cells: list[PublishedCell] = field(default_factory=list)
    #: the counts a rule redacted in this table (its policy's), which must stay possible
    redacted: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dims": list(self.dims),
            "labels": [list(x) for x in self.labels],
            "population": self.population,
            "redacted": None if self.redacted is None else list(self.redacted),
            "cells": [
                {
                    "key": list(c.key),
                    "lo": c.lo,
                    "hi": None if math.isinf(c.hi) else c.hi,
                    "status": c.status,
                }
                for c in self.cells
            ],
        }

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> PublishedTable:
        try:
            return cls(
                name=str(body["name"]),
                dims=tuple(body["dims"]),
                labels=tuple(tuple(str(x) for x in labs) for labs in body["labels"]),
                population=body.get("population"),
                redacted=tuple(body["redacted"]) if body.get("redacted") else None,
                cells=[
                    PublishedCell(
                        key=tuple(None if k is None else str(k) for k in c["key"]),
                        lo=float(c["lo"]),
                        hi=math.inf if c["hi"] is None else float(c["hi"]),
                        status=c["status"],
                    )
                    for c in body["cells"]
                ],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a released table record: {exc}") from exc
