"""Accuracy against a synthetic population's ground truth (``ground-truth.csv``).

Pairwise, over automatically linked records: precision is the share of record pairs put in
one person that truly are one person; recall is the share of all true pairs that were put in
one person. Records sent to review count as not linked (they lower recall, never precision);
the review share is the share of records routed to review.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from carelight.identity.linkage.decisions import Clusters


@dataclass(frozen=True)
class GroundTruth:
    person: dict[str, str]  # patient id -> person key
    imperfections: dict[str, tuple[str, ...]]

    @classmethod
    def read(cls, path: str | Path) -> GroundTruth:
        path = Path(path)
        if path.is_dir():
            path = path / "ground-truth.csv"
        person: dict[str, str] = {}
        tags: dict[str, tuple[str, ...]] = {}
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                person[row["patient_id"]] = row["person_key"]
                tags[row["patient_id"]] = tuple(t for t in row["imperfections"].split(";") if t)
        return cls(person, tags)


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


@dataclass(frozen=True)
class Evaluation:
    records: int
    true_pairs: int
    linked_pairs: int
    correct_pairs: int
    routes: dict[str, int]
    missed_by_imperfection: dict[str, int] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.linked_pairs if self.linked_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def review_share(self) -> float:
        return self.routes.get("review", 0) / self.records if self.records else 0.0

    def summary(self) -> str:
        return (
            f"{self.records:,} records: precision {self.precision:.4%}, recall {self.recall:.4%} "
            f"({self.correct_pairs:,} of {self.true_pairs:,} true pairs; "
            f"{self.linked_pairs - self.correct_pairs:,} false), "
            f"review {self.review_share:.3%} ({self.routes.get('review', 0):,} records)"
        )


def evaluate(clusters: Clusters, truth: GroundTruth) -> Evaluation:
    """Pairwise precision and recall of ``clusters`` against ``truth``.

    Raises ValueError if a linked record is missing from the ground truth.
    """
    missing = [uid for uid in clusters.decisions if uid not in truth.person]
    if missing:
        raise ValueError(f"{len(missing)} linked records are not in the ground truth")
    true_sizes = Counter(truth.person[uid] for uid in clusters.decisions)
    persons = clusters.persons()
    linked_pairs = correct_pairs = 0
    for members in persons.values():
        linked_pairs += _pairs(len(members))
        correct_pairs += sum(_pairs(n) for n in Counter(truth.person[m] for m in members).values())
    # Which kinds of imperfection the missed records carried.
    missed: dict[str, int] = defaultdict(int)
    for uid, decision in clusters.decisions.items():
        key = truth.person[uid]
        together = sum(truth.person[m] == key for m in persons[decision.person_id])
        if together < true_sizes[key]:
            for tag in truth.imperfections.get(uid) or ("none",):
                missed[tag] += 1
    return Evaluation(
        records=len(clusters.decisions),
        true_pairs=sum(_pairs(n) for n in true_sizes.values()),
        linked_pairs=linked_pairs,
        correct_pairs=correct_pairs,
        routes=clusters.routes(),
        missed_by_imperfection=dict(sorted(missed.items())),
    )
