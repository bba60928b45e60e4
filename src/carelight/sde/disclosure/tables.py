"""Aggregate tables as the checker sees them: dimensions, cells, and the facts per cell.

A table has one or more *index* (row) dimensions and at most one *column* dimension. With a
column dimension it is written *wide* (a crosstab: index labels, then one column per label);
without, *long* (the index labels, then the value column). Every label is a string. A cell key
is the tuple of its labels; a *margin* key has ``None`` where a dimension is summed over (so a
row total of a crosstab is ``(row label, None)`` and the grand total is all ``None``).

Totals in a file read here are dropped: the checker publishes its own (docs/disclosure-control.md).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from carelight.sde.disclosure.metadata import CellFacts, TableMetadata

Key = tuple[str | None, ...]
TOTAL = "Total"
TOTAL_LABELS = frozenset({"total", "all", "overall", "totals", "grand total"})
REDACTED = "[REDACTED]"


class TableError(ValueError):
    """A file that does not have the shape its metadata (or its look) says."""


@dataclass
class Table:
    statistic: str
    index: tuple[str, ...]
    columns: tuple[str, ...]
    value_column: str
    labels: tuple[tuple[str, ...], ...]
    values: dict[Key, float]
    raw: dict[Key, str] = field(default_factory=dict)
    facts: dict[Key, CellFacts] = field(default_factory=dict)
    margins: bool = False
    population: str | None = None
    unit: str = "patients"
    had_totals: bool = False

    @property
    def dims(self) -> tuple[str, ...]:
        return self.index + self.columns

    @property
    def wide(self) -> bool:
        return bool(self.columns)

    @property
    def is_count(self) -> bool:
        return self.statistic == "count"

    def keys(self) -> list[Key]:
        return list(self.values)

    def contributors(self, key: Key) -> int | None:
        """How many people (or rows) a cell describes, if known."""
        if key in self.facts:
            return self.facts[key].n
        if self.is_count and self.unit == "patients":
            v = self.values[key]
            return None if math.isnan(v) else round(v)
        return None

    def margin_keys(self) -> list[Key]:
        """The totals this table publishes: row, column and grand totals of a crosstab, the
        grand total of a long table; none without margins."""
        if not self.margins:
            return []
        k = len(self.index)
        out: list[Key] = []
        if self.wide:
            seen: dict[Key, None] = {}
            for key in self.values:
                seen[(*key[:k], None)] = None
            out.extend(seen)
            out.extend((*([None] * k), label) for label in self.labels[k])
        out.append(tuple([None] * len(self.dims)))
        return out

    def members(self, margin: Key) -> list[Key]:
        """The cells a margin adds up."""
        return [
            key
            for key in self.values
            if all(m is None or m == c for m, c in zip(margin, key, strict=True))
        ]


def _is_total_label(label: str) -> bool:
    return label.strip().lower() in TOTAL_LABELS


def _number(text: str, where: str) -> float:
    text = text.strip()
    if text == "" or text.lower() in {"nan", "na", "null", "none"}:
        return math.nan
    try:
        return float(text.replace(",", ""))
    except ValueError:
        raise TableError(f"{where}: {text[:20]!r} is not a number") from None


def _ordered(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def read_csv_strings(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise TableError(f"{path.name} is not a readable CSV file: {exc}") from None


def table_from_frame(
    frame: pd.DataFrame,
    *,
    statistic: str,
    index: tuple[str, ...],
    columns: tuple[str, ...],
    value_column: str,
    margins: bool = False,
    population: str | None = None,
    unit: str = "patients",
    facts: Iterable[CellFacts] = (),
    drop_totals: bool = True,
) -> Table:
    """Build a table from a frame of strings laid out wide (with ``columns``) or long.

    Rows and columns labelled as totals are dropped unless ``drop_totals`` is off (a file of
    the outputs API has none, so a category called "All" there is a real category)."""

    def _is_total(label: str) -> bool:
        return drop_totals and _is_total_label(label)

    missing = [c for c in index if c not in frame.columns]
    if missing:
        raise TableError(f"the file has no column(s) {missing} named as its row dimensions")
    values: dict[Key, float] = {}
    raw: dict[Key, str] = {}
    had_totals = False
    if columns:
        value_headers = [c for c in frame.columns if c not in index]
        kept = [c for c in value_headers if not _is_total(c)]
        had_totals = len(kept) != len(value_headers)
        for _, row in frame.iterrows():
            labels = tuple(str(row[c]) for c in index)
            if any(_is_total(lab) for lab in labels):
                had_totals = True
                continue
            for col in kept:
                key = (*labels, str(col))
                if key in values:
                    raise TableError(f"cell {list(key)} appears twice")
                raw[key] = str(row[col])
                values[key] = _number(raw[key], f"cell {list(key)}")
    else:
        if value_column not in frame.columns:
            raise TableError(f"the file has no value column {value_column!r}")
        for _, row in frame.iterrows():
            labels = tuple(str(row[c]) for c in index)
            if any(_is_total(lab) for lab in labels):
                had_totals = True
                continue
            if labels in values:
                raise TableError(f"cell {list(labels)} appears twice")
            raw[labels] = str(row[value_column])
            values[labels] = _number(raw[labels], f"cell {list(labels)}")
    dims = index + columns
    labels_per_dim = tuple(_ordered(k[i] for k in values) for i in range(len(dims)))
    facts_by_key = {f.key: f for f in facts}
    return Table(
        statistic=statistic,
        index=index,
        columns=columns,
        value_column=value_column,
        labels=labels_per_dim,  # type: ignore[arg-type]
        values=values,
        raw=raw,
        facts=facts_by_key,
        margins=margins,
        population=population,
        unit=unit,
        had_totals=had_totals,
    )


def table_from_metadata(path: Path, meta: TableMetadata) -> Table:
    frame = read_csv_strings(path)
    table = table_from_frame(
        frame,
        statistic=meta.statistic,
        index=meta.index,
        columns=meta.columns,
        value_column=meta.value_column,
        margins=meta.margins,
        population=meta.population,
        unit=meta.unit,
        facts=meta.cells,
        drop_totals=False,
    )
    unknown = [k for k in table.values if k not in table.facts]
    if unknown:
        raise TableError(
            f"cell {list(unknown[0])} of {path.name} is not described in its metadata file"
        )
    return table


def render(table: Table, shown: dict[Key, str]) -> str:
    """The CSV text of a table: ``shown`` holds what to print per cell and per margin key."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    k = len(table.index)
    margin_keys = set(table.margin_keys())
    if table.wide:
        col_labels = list(table.labels[k])
        header = [*table.index, *col_labels]
        row_margin = table.margins
        if row_margin:
            header.append(TOTAL)
        writer.writerow(header)
        rows = _ordered(key[:k] for key in table.values)  # type: ignore[misc]
        for labels in rows:
            line = list(labels)
            line += [shown.get((*labels, c), "") for c in col_labels]
            if row_margin:
                line.append(shown.get((*labels, None), ""))
            writer.writerow(line)
        if table.margins:
            blank: list[str | None] = [None] * k
            line = [TOTAL] * k
            line += [shown.get((*blank, c), "") for c in col_labels]
            line.append(shown.get((*blank, None), ""))
            writer.writerow(line)
    else:
        writer.writerow([*table.index, table.value_column])
        for key in table.values:
            writer.writerow([*key, shown.get(key, "")])
        grand = tuple([None] * k)
        if grand in margin_keys:
            writer.writerow([*([TOTAL] * k), shown.get(grand, "")])
    return buf.getvalue()


def describe(table: Table | object, key: Key) -> dict[str, str]:
    """A cell or total named by its labels, ``Total`` where summed over (for the evidence)."""
    dims = table.dims  # type: ignore[attr-defined]
    return {d: (TOTAL if lab is None else lab) for d, lab in zip(dims, key, strict=True)}
