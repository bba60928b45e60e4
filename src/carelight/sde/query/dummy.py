"""Dummy data from a dataset or measures definition, so researchers never need real data to
write and test their code.

The generator reads the query model, not the research store: it learns which tables the
definition uses, which codes it looks for (codelists and constants compared with a column), the
value ranges it compares numbers with, the dates it is anchored on and the ages it asks about.
It then makes fictional patients whose events use those codes, values and dates, keeps the ones
the population accepts (the in-memory reference engine decides, so the rule is exactly the
definition's), and goes on until it has the requested number.

Reaching the requested size is the hard part: a population such as "women over 80 with
diabetes, no SGLT2 inhibitor, an HbA1c above 75 in the last year" is rare among random patients,
and generators that draw every patient the same way run out of attempts. Here each patient is
drawn at an *intensity* between 0 and 1 for each thing the definition mentions (each table's
number of events, and each column: its codes, values, dates): how strongly that part leans on
what the definition mentions (how often events use the mentioned codes, how close values sit
to the mentioned thresholds and on which side, how near dates are to the mentioned ones).
Intensity 0 gives background data (what a definition that excludes something needs), 1 data
made of the definition's own codes. The generator counts which intensities the population
accepts, per part, and draws more of those, so a rare population is reached quickly and a
population defined by absence still is (``bench/sde_dummy.py`` measures both against uniform
draws). If after a budget of attempts the population is still not reached, the error says how
far it got: usually the population cannot be true (an age above 200, say).

Nothing here reads real data; every value is drawn from a seeded random generator, so the same
definition, size and seed give the same dummy data.
"""

from __future__ import annotations

import csv
import datetime
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from carelight.sde import model
from carelight.sde.query import dates
from carelight.sde.query.engines.inmemory import InMemoryEngine
from carelight.sde.query.nodes import (
    BinaryOp,
    Dataset,
    DateDifference,
    IsIn,
    Measure,
    Node,
    SelectColumn,
    Series,
    UnaryOp,
    Value,
    all_nodes,
    tables_used,
)

Row = dict[str, Any]
LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)  # the intensities a patient can be drawn at
BATCH = 400  # patients generated and judged at a time


class DummyDataError(ValueError):
    """The population could not be reached; the message says how far the generator got."""


# --- What the definition mentions -------------------------------------------------------


@dataclass
class Hints:
    """What a definition mentions, by ``(table, column)``."""

    values: dict[tuple[str, str], set] = field(default_factory=lambda: defaultdict(set))
    numbers: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    dates: list[datetime.date] = field(default_factory=list)
    column_dates: dict[tuple[str, str], list[datetime.date]] = field(
        default_factory=lambda: defaultdict(list)
    )
    ages: list[int] = field(default_factory=list)
    # (threshold, +1 for "above", -1 for "below") from comparisons like ``value > 75``
    directions: dict[tuple[str, str], list[tuple[float, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    tables: set[str] = field(default_factory=set)

    @property
    def anchor(self) -> datetime.date:
        """The latest date the definition mentions (its index date), or today."""
        return max(self.dates) if self.dates else datetime.date.today()

    @property
    def earliest(self) -> datetime.date:
        return min(self.dates) if self.dates else self.anchor


def _column(node: Node) -> SelectColumn | None:
    """The column a series reads, seen through year()/month()/to_float() and the like."""
    while isinstance(node, UnaryOp):
        node = node.arg
    return node if isinstance(node, SelectColumn) else None


def _is_birth_difference(node: Node) -> bool:
    return isinstance(node, DateDifference) and any(
        (c := _column(side)) is not None and c.name == "date_of_birth"
        for side in (node.start, node.end)
    )


def hints_for(roots: Iterable[Node]) -> Hints:
    """Everything the generator should lean on, read from the query model."""
    h = Hints()
    for root in roots:
        h.tables.update(tables_used(root))
        for n in all_nodes(root):
            if isinstance(n, Value) and isinstance(n.value, datetime.date):
                h.dates.append(n.value)
            elif isinstance(n, IsIn):
                col = _column(n.arg)
                if col is not None:
                    h.values[(col.source.table, col.name)].update(n.values)
            elif isinstance(n, BinaryOp):
                for a, b, flip in ((n.lhs, n.rhs, 1), (n.rhs, n.lhs, -1)):
                    if not isinstance(b, Value) or b.value is None:
                        continue
                    if _is_birth_difference(a) and isinstance(b.value, int):
                        h.ages.append(b.value)
                    col = _column(a)
                    if col is None:
                        continue
                    key = (col.source.table, col.name)
                    v = b.value
                    if isinstance(v, bool | str):
                        h.values[key].add(v)
                    elif isinstance(v, int | float):
                        h.numbers[key].append(float(v))
                        side = {"gt": 1, "ge": 1, "lt": -1, "le": -1}.get(n.op)
                        if side:
                            h.directions[key].append((float(v), side * flip))
                    elif isinstance(v, datetime.date):
                        h.column_dates[key].append(v)
    return h


# --- Background values ------------------------------------------------------------------

_CODE_FILES = {
    "snomedct_code": ("conditions.csv", "procedures.csv", "allergies.csv"),
    "dmd_code": ("medicines.csv",),
    "code": ("observations.csv",),
    "vaccine_code": ("vaccines.csv",),
    "primary_diagnosis": ("icd10.csv",),
}
_STRINGS = {
    "sex": ("female", "male", "female", "male", "unknown"),
    "admission_class": ("inpatient", "emergency"),
    "package_type": ("home care", "reablement", "day care"),
    "assessment_type": ("Care Act needs assessment", "Carer's assessment", "Review"),
    "unit": ("mmol/mol", "mmol/L", "mL/min/1.73m2", "kg/m2"),
}


def _codes(files: Sequence[str]) -> tuple[str, ...]:
    codes: list[str] = []
    base = resources.files("carelight.synth") / "codelists"
    for name in files:
        with (base / name).open(encoding="utf-8") as fh:
            codes.extend(row["code"] for row in csv.DictReader(fh))
    return tuple(codes)


_BACKGROUND: dict[str, tuple[str, ...]] = {}


def _background(column: str) -> tuple[str, ...]:
    if column not in _BACKGROUND:
        files = _CODE_FILES.get(column)
        _BACKGROUND[column] = _codes(files) if files else _STRINGS.get(column, ())
    return _BACKGROUND[column]


# --- Generation -------------------------------------------------------------------------


class _Intensities:
    """Per ``(table, column)`` (and ``(table, "rows")`` for how many events): how often a
    patient drawn at each intensity was accepted, and a draw that favours the intensities that
    worked. Keys are learnt independently, so a definition that wants diabetes codes *and* no
    SGLT2 inhibitor learns a high intensity for one and a low one for the other."""

    def __init__(self, rng: random.Random, adaptive: bool) -> None:
        self.rng = rng
        self.adaptive = adaptive
        self.tried: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * len(LEVELS))
        self.kept: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * len(LEVELS))

    def draw(self) -> _Draw:
        return _Draw(self)

    def level(self, key: tuple[str, str]) -> int:
        if not self.adaptive:
            return self.rng.randrange(len(LEVELS))
        tried, kept = self.tried[key], self.kept[key]
        weights = [(k + 1) / (t + 1) for k, t in zip(kept, tried, strict=True)]
        return self.rng.choices(range(len(LEVELS)), weights)[0]

    def learn(self, draw: _Draw, accepted: bool) -> None:
        for key, i in draw.levels.items():
            self.tried[key][i] += 1
            if accepted:
                self.kept[key][i] += 1


class _Draw:
    """One patient's intensities, drawn per key the first time the key is asked for."""

    def __init__(self, owner: _Intensities) -> None:
        self.owner = owner
        self.levels: dict[tuple[str, str], int] = {}

    def __call__(self, table: str, column: str) -> float:
        key = (table, column)
        if key not in self.levels:
            self.levels[key] = self.owner.level(key)
        return LEVELS[self.levels[key]]


class _Generator:
    def __init__(self, hints: Hints, rng: random.Random) -> None:
        self.h = hints
        self.rng = rng
        self.anchor = hints.anchor
        self.earliest = hints.earliest

    def _date_between(self, lo: datetime.date, hi: datetime.date) -> datetime.date:
        if hi <= lo:
            return lo
        return lo + datetime.timedelta(days=self.rng.randrange((hi - lo).days + 1))

    def _near(self, day: datetime.date, spread_days: int) -> datetime.date:
        return day + datetime.timedelta(days=self.rng.randint(-spread_days, spread_days))

    def patient(self, pid: str, q: _Draw) -> Row:
        rng, h = self.rng, self.h
        if h.ages and rng.random() < 0.5 + q("patients", "date_of_birth") / 2:
            lo, hi = max(0, min(h.ages) - 5), min(110, max(h.ages) + 5)
            age = rng.randint(lo, max(lo, hi))
        else:
            age = rng.randint(0, 100)
        born = dates.add(self.anchor, -age, "years") - datetime.timedelta(days=rng.randrange(365))
        born = born.replace(day=1)
        died = None
        death_mentioned = ("patients", "date_of_death") in h.column_dates
        if rng.random() < 0.05 + 0.3 * q("patients", "date_of_death") * death_mentioned:
            died = self._date_between(max(born, self.earliest), self._near(self.anchor, 365))
            died = died.replace(day=1)
        return {
            "patient_id": pid,
            "sex": self._string("patients", "sex", q),
            "date_of_birth": born,
            "date_of_death": died,
            "area_code": self._string("patients", "area_code", q),
        }

    def _string(self, table: str, column: str, q: _Draw, damp: float = 1.0) -> str | None:
        mentioned = self.h.values.get((table, column))
        if mentioned and self.rng.random() < 0.1 + 0.85 * q(table, column) * damp:
            return self.rng.choice(sorted(v for v in mentioned if isinstance(v, str)) or [None])
        pool = _background(column)
        if pool:
            return self.rng.choice(pool)
        if column == "area_code":
            return f"E0{self.rng.randrange(1_000_000, 1_040_000)}"
        if column.endswith("_code"):
            return f"X{self.rng.randrange(10_000, 99_999)}"
        return f"{column}-{self.rng.randrange(1, 6)}"

    def _number(self, table: str, column: str, kind: str, q: _Draw) -> float | int:
        key = (table, column)
        mentioned = self.h.numbers.get(key)
        level = q(table, column)
        if mentioned:
            lo, hi = min(mentioned), max(mentioned)
            width = max(abs(hi - lo), abs(hi) * 0.5, 1.0)
            directions = self.h.directions.get(key)
            if directions and self.rng.random() < 0.5 + level / 2:
                threshold, side = self.rng.choice(directions)
                x = threshold + side * self.rng.uniform(0, width)
            else:
                x = self.rng.uniform(lo - width, hi + width)
        else:
            x = self.rng.uniform(0, 120)
        return round(x) if kind == "int" else round(x, 1)

    def _event_date(self, table: str, column: str, born: datetime.date, q: _Draw):
        mentioned = self.h.column_dates.get((table, column)) or self.h.dates
        level = q(table, column)
        if mentioned and self.rng.random() < 0.3 + 0.6 * level:
            day = self._near(self.rng.choice(mentioned), int(400 * (1.2 - level)))
        else:
            day = self._date_between(
                dates.add(self.earliest, -10, "years"), dates.add(self.anchor, 1, "years")
            )
        return max(day, born)

    def events(self, patient: Row, table: model.Table, q: _Draw) -> list[Row]:
        rng = self.rng
        if table.name == "practice_registrations":
            count = 1
        else:
            count = rng.randint(0, 1 + int(6 * q(table.name, "rows")))
        out = []
        born = patient["date_of_birth"]
        for _ in range(count):
            row: Row = {"patient_id": patient["patient_id"]}
            start = None
            for c in table.columns[1:]:
                if c.type == "date":
                    if c.name in ("end_date", "discharge_date"):
                        if start is None or rng.random() < 0.4:
                            row[c.name] = None
                        else:
                            row[c.name] = start + datetime.timedelta(days=rng.randint(0, 200))
                        continue
                    if table.name == "practice_registrations":
                        row[c.name] = self._date_between(
                            born, dates.add(self.earliest, -1, "years")
                        )
                    else:
                        row[c.name] = self._event_date(table.name, c.name, born, q)
                    start = row[c.name]
                elif c.type == "str":
                    row[c.name] = self._string(table.name, c.name, q)
                elif c.type in ("int", "float"):
                    value = self._number(table.name, c.name, c.type, q)
                    mentioned = (table.name, c.name) in self.h.numbers
                    row[c.name] = value if mentioned or rng.random() < 0.8 else None
                elif c.type == "bool":
                    mentioned = self.h.values.get((table.name, c.name))
                    if mentioned and rng.random() < 0.5 + q(table.name, c.name) / 2:
                        row[c.name] = rng.choice(sorted(mentioned))
                    else:
                        row[c.name] = rng.random() < 0.5
            if table.name == "admissions" and row.get("primary_diagnosis"):
                extra = self._string("admissions", "primary_diagnosis", q, damp=0.5)
                row["all_diagnoses"] = "||".join(x for x in (row["primary_diagnosis"], extra) if x)
            out.append(row)
        return out


def _populations(query: Dataset | Sequence[Measure]) -> list[Series]:
    if isinstance(query, Dataset):
        return [query.population]
    return [m.dataset_for(a, b).population for m in query for a, b in m.intervals]


def _roots(query: Dataset | Sequence[Measure]) -> list[Node]:
    if isinstance(query, Dataset):
        return [query]
    out: list[Node] = []
    for m in query:
        out.extend(m.dataset_for(a, b) for a, b in m.intervals)
    return out


def generate_tables(
    query: Dataset | Sequence[Measure],
    size: int,
    *,
    seed: int = 0,
    max_attempts: int | None = None,
    time_budget: float = 120.0,
    adaptive: bool = True,
    report: dict | None = None,
) -> dict[str, list[Row]]:
    """Research-store tables (table → rows) whose population has exactly ``size`` patients.

    ``query`` is a dataset's or measures' query model. Every table the definition reads is
    filled, and ``patients`` always is. Raises :class:`DummyDataError` if the population is not
    reached within ``max_attempts`` patients (default 500 times size, at least 20,000) or
    ``time_budget`` seconds. ``adaptive=False`` draws every intensity equally often (for
    comparison in the benchmark). ``report``, if given, is filled with the attempts made.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise DummyDataError("the dummy population size must be a positive whole number")
    hints = hints_for(_roots(query))
    rng = random.Random(seed)
    gen = _Generator(hints, rng)
    intensities = _Intensities(rng, adaptive)
    event_tables = [
        model.table(name) for name in sorted(hints.tables) if model.table(name).kind == "event"
    ]
    populations = _populations(query)
    limit = max_attempts or max(20_000, 500 * size)
    out: dict[str, list[Row]] = {"patients": []}
    for t in event_tables:
        out[t.name] = []
    accepted = 0
    attempts = 0
    started = time.monotonic()
    while accepted < size:
        if attempts >= limit or time.monotonic() - started > time_budget:
            raise DummyDataError(
                f"only {accepted} of the {size} dummy patients asked for satisfy the "
                f"population after {attempts} attempts in {time.monotonic() - started:.0f} s; "
                "check that the population can be true (for example an age or a date range "
                "that no one can have)"
            )
        batch: dict[str, list[Row]] = {name: [] for name in out}
        draws: dict[str, _Draw] = {}
        for _ in range(BATCH):
            attempts += 1
            pid = f"dummy-{attempts:07d}"
            draws[pid] = q = intensities.draw()
            patient = gen.patient(pid, q)
            batch["patients"].append(patient)
            for t in event_tables:
                batch[t.name].extend(gen.events(patient, t, q))
        engine = InMemoryEngine(batch)
        chosen: set[str] = set()
        for population in populations:
            chosen.update(r["patient_id"] for r in engine.get_rows(Dataset(population, ())))
        for pid, draw in draws.items():
            intensities.learn(draw, pid in chosen)
        keep = sorted(chosen)[: size - accepted]
        accepted += len(keep)
        wanted = set(keep)
        for name, rows in batch.items():
            out[name].extend(r for r in rows if r["patient_id"] in wanted)
    if report is not None:
        report.update(attempts=attempts, accepted=accepted)
    return out


def dummy_rows(query: Dataset, size: int, *, seed: int = 0) -> list[Row]:
    """The dataset's rows over generated dummy tables: exactly ``size`` patients."""
    tables = generate_tables(query, size, seed=seed)
    return InMemoryEngine(tables).get_rows(query)


DEFAULT_SIZE = 100


def make_dummy_store(definition_path, folder, *, size: int | None = None, seed: int = 0) -> int:
    """Write a research store of dummy data made from a definition; returns its patients.

    What a job's dummy run mounts as its store: the same layout as the real one, filled for
    the definition's dataset (or, with only measures, its measures).
    """
    from carelight.sde.query.definitions import load_definition
    from carelight.sde.query.store import write_store

    definition = load_definition(definition_path)
    query = definition.dataset if definition.dataset is not None else definition.measures
    wanted = size or definition.dummy_data.get("population_size") or DEFAULT_SIZE
    tables = generate_tables(query, wanted, seed=seed)
    write_store(folder, tables)
    return len(tables["patients"])


def run_dummy(
    definition_path,
    output,
    *,
    size: int | None = None,
    seed: int = 0,
    store_out=None,
    measures: bool = False,
) -> tuple[int, int]:
    """Load a definition, make dummy tables for it, and write its rows to ``output``.

    The size is ``size``, else the definition's ``configure_dummy_data(population_size=…)``,
    else ``DEFAULT_SIZE``. With ``store_out`` the dummy tables are also written as a research
    store (``research.duckdb`` and Parquet, the real store's layout), so an analysis script can
    be tried against them with any engine. Returns (patients, rows written).
    """
    from carelight.sde.query.definitions import DefinitionError, load_definition
    from carelight.sde.query.run import run_dataset, run_measures, write_rows
    from carelight.sde.query.store import write_store

    definition = load_definition(definition_path)
    if measures and not definition.measures:
        raise DefinitionError(f"{definition.path.name} defines no measures")
    if not measures and definition.dataset is None:
        raise DefinitionError(f"{definition.path.name} defines no dataset (use measures?)")
    query = definition.measures if measures else definition.dataset
    wanted = size or definition.dummy_data.get("population_size") or DEFAULT_SIZE
    tables = generate_tables(query, wanted, seed=seed)
    if store_out is not None:
        write_store(store_out, tables)
    engine = InMemoryEngine(tables)
    columns, rows = (run_measures if measures else run_dataset)(definition, engine)
    write_rows(rows, columns, output)
    return len(tables["patients"]), len(rows)
