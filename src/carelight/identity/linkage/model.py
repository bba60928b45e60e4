"""Training, saving and using a linkage model (Splink, Fellegi-Sunter, EM-trained).

``train`` fits a model to a population's records; ``LinkageModel.link`` links a batch with
Splink; ``LinkageModel.match_one`` matches one new or changed record against an index in
milliseconds with the pure-Python scorer (same parameters, same weights).

The database is a parameter: ``db_api`` is any Splink database API. DuckDB (in memory) is the
default; Splink's ``SparkAPI`` runs the same settings on Spark (``spark.spark_api()`` builds one
with the scorer's Jaro-Winkler), with the function named for that dialect
(``comparisons.JARO_WINKLER_SQL``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import logging
import math
import os
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from carelight.identity.linkage.comparisons import (
    COMPARISONS,
    FIRST_NAME,
    PREDICTION_BLOCKING,
    TRAINING_BLOCKING,
)
from carelight.identity.linkage.decisions import (
    Clusters,
    Decision,
    Edge,
    Thresholds,
    better,
    is_auto,
    is_review,
    resolve,
)
from carelight.identity.linkage.deterministic import (
    conflicting,
    deterministic_links,
    usable_nhs_number,
)
from carelight.identity.linkage.features import COLUMNS, LinkageRecord
from carelight.identity.linkage.scorer import Scorer

log = logging.getLogger(__name__)

FORMAT = "carelight-linkage-model"
M_FLOOR = 1e-3
FORMAT_VERSION = 1
_MODEL_FILE = re.compile(r"^model-(\d+)\.json$")


@contextlib.contextmanager
def bulk():
    """Pause Python's cyclic garbage collector while building millions of small objects.

    Records, edges, decisions and index entries hold no reference cycles, but every full
    collection walks every tracked object, and building a million of them triggers many; the
    objects are freed by reference counting as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _default_db_api():
    from splink import DuckDBAPI

    return DuckDBAPI()


def _dialect(db_api) -> str:
    return db_api.sql_dialect.sql_dialect_str


def _check_unique(records: Sequence[LinkageRecord]) -> None:
    seen: set[str] = set()
    for record in records:
        if record.unique_id in seen:
            raise ValueError("two records have the same unique_id; each Patient once, please")
        seen.add(record.unique_id)


def _frame(records: Sequence[LinkageRecord]):
    """The records as a pandas DataFrame of object columns (None stays None, i.e. NULL)."""
    import pandas as pd

    _check_unique(records)
    return pd.DataFrame(
        {
            column: pd.Series([getattr(r, column) for r in records], dtype=object)
            for column in COLUMNS
        }
    )


def splink_settings(dialect: str = "duckdb") -> dict[str, Any]:
    """The untrained Splink settings: comparisons and prediction blocking rules."""
    from splink import SettingsCreator, block_on

    creator = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[c.splink(dialect) for c in COMPARISONS],
        blocking_rules_to_generate_predictions=[block_on(*rule) for rule in PREDICTION_BLOCKING],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    return creator.get_settings(dialect).as_dict()


def regularise(settings: dict[str, Any], *, m_floor: float = M_FLOOR) -> dict[str, Any]:
    """Settings with every level's m at least ``m_floor`` (renormalised), and no gaps.

    EM on data where true matches never disagree on a field (clean synthetic data) drives
    that level's m towards 0, a weight near minus infinity: one miskeyed sex code would then
    veto a link however well everything else agrees. A floor keeps every level's weight
    finite. A level EM never saw among matches has no m at all (Splink would fall back to a
    default); the floor makes it explicit, so Splink and the Python scorer use the same
    number.
    """
    for comparison in settings["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        floored = [max(float(lv.get("m_probability") or 0.0), m_floor) for lv in levels]
        total = sum(floored)
        for level, m in zip(levels, floored, strict=True):
            level["m_probability"] = m / total
    return settings


def _spark_frame(records: Sequence[LinkageRecord], db_api):
    """The records as a Spark DataFrame with every column a nullable string.

    Built from rows with an explicit schema rather than from pandas: Spark cannot infer the
    type of a column that is NULL in every row of a small batch, and the pandas route goes
    through PySpark's pandas conversion, which lags pandas releases.
    """
    from pyspark.sql.types import StringType, StructField, StructType

    _check_unique(records)
    schema = StructType([StructField(column, StringType(), True) for column in COLUMNS])
    rows = [tuple(getattr(r, column) for column in COLUMNS) for r in records]
    return db_api.spark.createDataFrame(rows, schema=schema)


def _linker(records: Sequence[LinkageRecord], settings: dict, db_api):
    from splink import Linker

    if not records:
        raise ValueError("no records to link")
    spark = _dialect(db_api) == "spark"
    table = _spark_frame(records, db_api) if spark else _frame(records)
    return Linker(table, settings, db_api, set_up_basic_logging=False)


_EDGE_COLUMNS = ("unique_id_l", "unique_id_r", "match_probability", "match_weight")


def _edge_rows(frame, db_api) -> Iterable[tuple]:
    """(left, right, probability, weight) for each row of Splink's prediction."""
    if _dialect(db_api) == "spark":
        return (tuple(row) for row in frame.as_spark_dataframe().select(*_EDGE_COLUMNS).collect())
    table = frame.as_pandas_dataframe()
    return zip(*(table[column] for column in _EDGE_COLUMNS), strict=True)


def train(
    records: Iterable[LinkageRecord],
    *,
    thresholds: Thresholds | None = None,
    db_api=None,
    seed: int = 5,
    max_pairs: float = 5e6,
    m_floor: float = M_FLOOR,
) -> LinkageModel:
    """Fit a model to a population's records.

    - u probabilities from ``max_pairs`` random pairs (fixed ``seed``: the same data gives the
      same model);
    - m probabilities by expectation maximisation, one pass per ``TRAINING_BLOCKING`` rule;
    - the prior (probability two random records match) from the NHS number links, whose
      recall is estimated as the share of pairs where both records carry a number
      (the square of the share of records that do). With almost no NHS numbers, exact first
      name, surname and date of birth stand in, with an assumed recall of 0.6.
    """
    from splink import block_on

    records = list(records)
    if len(records) < 50:
        raise ValueError(f"training needs a population, not {len(records)} records (50 or more)")
    db_api = db_api or _default_db_api()
    started = time.perf_counter()
    linker = _linker(records, splink_settings(_dialect(db_api)), db_api)
    nhs_share = sum(usable_nhs_number(r) is not None for r in records) / len(records)
    if nhs_share >= 0.2:
        rules, recall = [block_on("nhs_number")], nhs_share**2
    else:
        rules, recall = [block_on("first_name", "family_name", "dob")], 0.6
    linker.training.estimate_probability_two_random_records_match(rules, recall=recall)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    for rule in TRAINING_BLOCKING:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
    settings = regularise(linker.misc.save_model_to_json(), m_floor=m_floor)
    summary = {
        "records": len(records),
        "nhs_number_share": round(nhs_share, 4),
        "seed": seed,
        "max_pairs": max_pairs,
        "m_floor": m_floor,
        "seconds": round(time.perf_counter() - started, 2),
    }
    log.info("linkage model trained on %d records in %.1f s", len(records), summary["seconds"])
    return LinkageModel(
        settings=settings,
        thresholds=thresholds or Thresholds(),
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        training=summary,
    )


class LinkageIndex:
    """Records already linked, with their persons, and blocking-key look-ups for candidates."""

    def __init__(
        self, records: Iterable[LinkageRecord], persons: Mapping[str, str] | None = None
    ) -> None:
        self.records: dict[str, LinkageRecord] = {}
        self.person: dict[str, str] = {}
        self._keys: list[dict[tuple, list[str]]] = [defaultdict(list) for _ in PREDICTION_BLOCKING]
        persons = persons or {}
        with bulk():
            for record in records:
                self.add(record, persons.get(record.unique_id, record.unique_id))

    @classmethod
    def from_clusters(cls, records: Iterable[LinkageRecord], clusters: Clusters) -> LinkageIndex:
        return cls(records, {uid: d.person_id for uid, d in clusters.decisions.items()})

    def __len__(self) -> int:
        return len(self.records)

    def add(self, record: LinkageRecord, person_id: str) -> None:
        """Add (or replace) a record as belonging to ``person_id``."""
        if record.unique_id in self.records:
            self.remove(record.unique_id)
        self.records[record.unique_id] = record
        self.person[record.unique_id] = person_id
        for rule, table in zip(PREDICTION_BLOCKING, self._keys, strict=True):
            key = _key(record, rule)
            if key is not None:
                table[key].append(record.unique_id)

    def remove(self, unique_id: str) -> None:
        record = self.records.pop(unique_id)
        del self.person[unique_id]
        for rule, table in zip(PREDICTION_BLOCKING, self._keys, strict=True):
            key = _key(record, rule)
            if key is not None:
                table[key].remove(unique_id)

    def candidates(self, record: LinkageRecord) -> list[LinkageRecord]:
        """Records sharing at least one blocking key with ``record`` (never itself)."""
        found: dict[str, None] = {}
        for rule, table in zip(PREDICTION_BLOCKING, self._keys, strict=True):
            key = _key(record, rule)
            if key is not None:
                found.update(dict.fromkeys(table.get(key, ())))
        found.pop(record.unique_id, None)
        return [self.records[uid] for uid in found]


def _first_names_differ(left: LinkageRecord, right: LinkageRecord) -> bool:
    return FIRST_NAME.level_of(left, right) == len(FIRST_NAME.levels) - 1


def _ranks_above(edge: Edge, best: Edge | None) -> bool:
    """The batch's ranking (``decisions.better``); the candidate is always ``edge.right``."""
    return better(edge, best, edge.right, best and best.right)


def _key(record: LinkageRecord, rule: tuple[str, ...]) -> tuple | None:
    values = tuple(getattr(record, column) for column in rule)
    return None if any(v is None for v in values) else values


@dataclass
class LinkageModel:
    """A trained model: Splink's settings (with m and u), thresholds, version and date."""

    settings: dict[str, Any]
    thresholds: Thresholds = field(default_factory=Thresholds)
    trained_at: str | None = None
    version: int | None = None
    training: dict[str, Any] = field(default_factory=dict)
    _scorer: Scorer | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            self._scorer = Scorer(self.settings)
        return self._scorer

    # -- persistence -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "trained_at": self.trained_at,
            "thresholds": {"upper": self.thresholds.upper, "lower": self.thresholds.lower},
            "training": self.training,
            "splink_settings": self.settings,
        }

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/model-<n>.json`` with the next free version n; returns the path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        existing = [int(m.group(1)) for p in folder.iterdir() if (m := _MODEL_FILE.match(p.name))]
        self.version = max(existing, default=0) + 1
        path = folder / f"model-{self.version}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LinkageModel:
        path = Path(path)
        if path.is_dir():
            versions = [
                (int(m.group(1)), p) for p in path.iterdir() if (m := _MODEL_FILE.match(p.name))
            ]
            if not versions:
                raise FileNotFoundError(f"no model-<n>.json in {path}: train and save one first")
            path = max(versions)[1]
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path} is not a version {FORMAT_VERSION} {FORMAT} file")
        model = cls(
            settings=data["splink_settings"],
            thresholds=Thresholds(**data["thresholds"]),
            trained_at=data.get("trained_at"),
            version=data.get("version"),
            training=data.get("training") or {},
        )
        _ = model.scorer  # fail now, not on the first write, if the comparisons changed
        return model

    def parameters(self) -> list[dict[str, Any]]:
        """Each comparison level's m, u and match weight, for an administrator to read."""
        out = []
        for comparison in self.settings["comparisons"]:
            for level in comparison["comparison_levels"]:
                if level.get("is_null_level"):
                    continue
                m, u = level.get("m_probability"), level.get("u_probability")
                weight = (
                    math.log2(m / u) if isinstance(m, float) and isinstance(u, float) and m and u
                    else None
                )  # fmt: skip
                out.append(
                    {
                        "comparison": comparison["output_column_name"],
                        "level": level["label_for_charts"],
                        "m_probability": m,
                        "u_probability": u,
                        "match_weight": weight,
                    }
                )
        return out

    # -- batch linkage -----------------------------------------------------------------
    def predict(
        self,
        records: Sequence[LinkageRecord],
        *,
        db_api=None,
        min_probability: float | None = None,
    ) -> list[Edge]:
        """Splink's scored pairs (at or above ``min_probability``, by default the lower
        threshold) as probabilistic edges."""
        db_api = db_api or _default_db_api()
        linker = _linker(records, self.settings, db_api)
        if min_probability is None:
            min_probability = self.thresholds.lower
        frame = linker.inference.predict(threshold_match_probability=min_probability)
        return [
            Edge(str(left), str(right), float(p), float(w), "probabilistic")
            for left, right, p, w in _edge_rows(frame, db_api)
        ]

    def edges(
        self,
        records: Sequence[LinkageRecord],
        *,
        db_api=None,
        min_probability: float | None = None,
    ) -> list[Edge]:
        """Every pair worth deciding: NHS number links and conflicts, then Splink's scored
        pairs (at or above ``min_probability``, by default the lower threshold), with pairs
        whose first names differ entirely marked so they are never linked automatically."""
        by_id = {r.unique_id: r for r in records}
        deterministic = deterministic_links(records)
        settled = {frozenset(p) for p in deterministic.links + deterministic.conflicts}
        edges = [Edge(a, b, 1.0, None, "nhs-number") for a, b in deterministic.links]
        for a, b in deterministic.conflicts:
            score = self.scorer.score(by_id[a], by_id[b])
            edges.append(
                Edge(a, b, score.match_probability, score.match_weight, "nhs-number-conflict")
            )
        for edge in self.predict(records, db_api=db_api, min_probability=min_probability):
            if frozenset((edge.left, edge.right)) in settled:
                continue
            if _first_names_differ(by_id[edge.left], by_id[edge.right]):
                edge = dataclasses.replace(edge, kind="first-names-differ")
            edges.append(edge)
        return edges

    def link(self, records: Iterable[LinkageRecord], *, db_api=None) -> Clusters:
        """Link a batch: NHS number links, Splink's predictions, clustering, routes."""
        records = list(records)
        with bulk():
            edges = self.edges(records, db_api=db_api)
            return resolve((r.unique_id for r in records), edges, self.thresholds)

    # -- one record at a time ----------------------------------------------------------
    def index(self, records: Iterable[LinkageRecord], clusters: Clusters | None = None):
        """An index of ``records`` for ``match_one`` (persons from ``clusters`` if given)."""
        records = list(records)
        return LinkageIndex.from_clusters(records, clusters) if clusters else LinkageIndex(records)

    def edge(self, left: LinkageRecord, right: LinkageRecord) -> Edge:
        """The pair as ``link`` would see it: NHS number link, conflict, or scored pair."""
        a, b = left.unique_id, right.unique_id
        number = usable_nhs_number(left)
        if number is not None and number == usable_nhs_number(right):
            if not conflicting(left, right):
                return Edge(a, b, 1.0, None, "nhs-number")
            score = self.scorer.score(left, right)
            return Edge(a, b, score.match_probability, score.match_weight, "nhs-number-conflict")
        score = self.scorer.score(left, right)
        kind = "first-names-differ" if _first_names_differ(left, right) else "probabilistic"
        return Edge(a, b, score.match_probability, score.match_weight, kind)

    def match_one(self, record: LinkageRecord, index: LinkageIndex) -> Decision:
        """Decide one new or changed record against ``index`` (which it is not added to).

        Candidates come from the blocking rules; each is scored, and the best automatic link
        wins, else the best reviewable candidate, else the record is a new person.
        """
        best_auto: Edge | None = None
        best_review: Edge | None = None
        best_any: Edge | None = None
        for candidate in index.candidates(record):
            edge = self.edge(record, candidate)
            if _ranks_above(edge, best_any):
                best_any = edge
            if is_auto(edge, self.thresholds):
                if _ranks_above(edge, best_auto):
                    best_auto = edge
            elif is_review(edge, self.thresholds) and _ranks_above(edge, best_review):
                best_review = edge
        uid = record.unique_id
        if best_auto is not None:
            other = best_auto.right
            return Decision(
                uid, "auto", index.person[other], best_auto.match_probability,
                best_auto.match_weight, other, None, best_auto.kind,
            )  # fmt: skip
        if best_review is not None:
            other = best_review.right
            return Decision(
                uid, "review", uid, best_review.match_probability, best_review.match_weight,
                other, index.person[other], best_review.kind,
            )  # fmt: skip
        if best_any is not None:
            return Decision(
                uid, "new", uid, best_any.match_probability, best_any.match_weight,
                best_any.right, None, "no candidate above the lower threshold",
            )  # fmt: skip
        return Decision(uid, "new", uid)
