"""The seam between jobs and automatic disclosure control: ``control(path, data)`` gives the
safe (redacted) version of one aggregate output and its evidence record.

It uses ``carelight.sde.disclosure`` (the disclosure-control package) when that is installed.
Until then it applies a small built-in version of the default policy (the rules used for NHS
data in England) to CSV and TSV tables: every count of 7 or fewer is redacted, every other
count rounded to the nearest 5. Other reviewable files (text, JSON, images) pass unchanged,
with evidence saying no automatic rule applied, so the two checkers read them by eye.

The evidence names rules, cells (row and column positions) and actions, never the values.
"""

from __future__ import annotations

import csv
import importlib
import io
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

THRESHOLD = 7  # counts of this or fewer are redacted
ROUNDING = 5
REDACTED = "[REDACTED]"
# Integer columns that name groups, not counts: never rounded.
_GROUPING = re.compile(r"(^|_)(year|month|week|day|age|band|code|period|interval|id|group)s?($|_)")


@dataclass(frozen=True)
class Controlled:
    status: str  # passed | modified | blocked
    safe: bytes | None  # the version checkers see and researchers may receive; None if blocked
    evidence: dict = field(default_factory=dict)


def control(path: str, data: bytes, context: dict | None = None) -> Controlled:
    """Disclosure control of one aggregate file, through the package if present."""
    external = _external()
    if external is not None:
        return external(path, data, context or {})
    return builtin_control(path, data)


def _external():
    """An adapter over ``carelight.sde.disclosure`` if it offers ``control_file``."""
    try:
        module = importlib.import_module("carelight.sde.disclosure")
    except ModuleNotFoundError:
        return None
    fn = getattr(module, "control_file", None)
    if fn is None:
        return None

    def adapt(path: str, data: bytes, context: dict) -> Controlled:
        result = fn(path, data, **context)
        return Controlled(result.status, result.safe, dict(result.evidence))

    return adapt


def _is_count_column(name: str, values: list[str]) -> bool:
    norm = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    if _GROUPING.search(norm):
        return False
    present = [v.strip() for v in values if v.strip()]
    return bool(present) and all(re.fullmatch(r"\d+", v) for v in present)


def builtin_control(path: str, data: bytes) -> Controlled:
    suffix = PurePosixPath(path).suffix.lower()
    base = {"file": path, "policy": "nhs-england", "implementation": "built-in"}
    if suffix not in (".csv", ".tsv"):
        return Controlled(
            "passed",
            data,
            base | {"rules": [], "note": "Not a table: no automatic rule applies; check by eye."},
        )
    delimiter = "\t" if suffix == ".tsv" else ","
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8")), delimiter=delimiter))
    except (UnicodeDecodeError, csv.Error) as exc:
        return Controlled("blocked", None, base | {"rules": [], "blocked": f"unreadable: {exc}"})
    if not rows:
        return Controlled("passed", data, base | {"rules": [], "note": "empty table"})
    header, body = rows[0], [list(r) for r in rows[1:]]
    width = len(header)
    count_columns = [
        j for j, name in enumerate(header)
        if _is_count_column(name, [r[j] for r in body if j < len(r)])
    ]  # fmt: skip
    redacted, rounded = [], []
    for i, row in enumerate(body, start=1):
        for j in count_columns:
            if j >= len(row) or not row[j].strip():
                continue
            value = int(row[j])
            if value <= THRESHOLD:
                row[j] = REDACTED
                redacted.append([i, header[j]])
            else:
                new = ROUNDING * round(value / ROUNDING)
                if new != value:
                    rounded.append([i, header[j]])
                row[j] = str(new)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(r + [""] * (width - len(r)) if len(r) < width else r for r in body)
    rules = [
        {
            "rule": "small-count",
            "threshold": THRESHOLD,
            "columns": [header[j] for j in count_columns],
            "cells": redacted,
            "action": "redacted",
        },
        {
            "rule": "rounding",
            "base": ROUNDING,
            "columns": [header[j] for j in count_columns],
            "cells": rounded,
            "action": "rounded to the nearest 5",
        },
    ]
    status = "modified" if redacted or rounded else "passed"
    return Controlled(status, out.getvalue().encode(), base | {"rules": rules})
