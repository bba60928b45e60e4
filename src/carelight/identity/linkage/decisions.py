"""From scored pairs to decisions: link automatically, send to review, or make a new person.

Two thresholds on the match probability split every record's best candidate into three
routes (``Thresholds.route``). In a batch, records joined by automatic links (and NHS number
links) form one person each: connected components, as Splink clusters. A record left on its
own becomes a review item when its best candidate lies between the thresholds (or an
automatic link was held back, see below); otherwise it is a new person.

Two kinds of pair are never linked automatically, however high their score:

- ``nhs-number-conflict``: the same NHS number on records whose names and dates of birth
  disagree strongly (``deterministic.conflicting``);
- ``first-names-differ``: the first names are entirely different. Fellegi-Sunter treats the
  fields as independent, so twins (same surname, date of birth and address) outscore one
  different first name; a person does not usually change their first name, so a reviewer
  decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Route = Literal["auto", "review", "new"]
AUTO_KINDS = frozenset({"nhs-number", "probabilistic"})


@dataclass(frozen=True)
class Thresholds:
    """Match-probability thresholds: at or above ``upper`` link, at or above ``lower`` review."""

    upper: float = 0.995
    lower: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.lower < self.upper <= 1.0:
            raise ValueError(
                f"thresholds must satisfy 0 < lower < upper <= 1 (got lower={self.lower}, "
                f"upper={self.upper})"
            )

    def route(self, probability: float) -> Route:
        if probability >= self.upper:
            return "auto"
        if probability >= self.lower:
            return "review"
        return "new"


@dataclass(frozen=True)
class Edge:
    """A scored pair of records. ``kind`` says how it may be used (see the module docstring)."""

    left: str
    right: str
    match_probability: float
    match_weight: float | None  # None for a link decided by NHS number alone
    kind: str  # "nhs-number", "probabilistic", "nhs-number-conflict", "first-names-differ"

    def other(self, unique_id: str) -> str:
        return self.right if unique_id == self.left else self.left


@dataclass(frozen=True)
class Decision:
    """What happens to one incoming record."""

    unique_id: str
    route: Route
    person_id: str  # the person joined (auto), else the record's own new person
    match_probability: float | None = None  # of the best candidate, when there was one
    match_weight: float | None = None
    matched_id: str | None = None  # the record the best candidate was
    candidate_person_id: str | None = None  # for review: the person it may belong to
    reason: str = "no candidate above the lower threshold"


@dataclass
class Clusters:
    """The result of linking a batch: one decision per record, and the persons they form."""

    decisions: dict[str, Decision]
    review_pairs: list[Edge] = field(default_factory=list)  # candidate links for a reviewer

    def person_of(self, unique_id: str) -> str:
        return self.decisions[unique_id].person_id

    def persons(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for uid, decision in self.decisions.items():
            out.setdefault(decision.person_id, []).append(uid)
        return out

    def routes(self) -> dict[str, int]:
        counts = {"auto": 0, "review": 0, "new": 0}
        for decision in self.decisions.values():
            counts[decision.route] += 1
        return counts


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def rank(edge: Edge) -> tuple[float, float]:
    """How good a candidate link is: probability, then weight, rounded so that two engines
    summing the same weights in a different order rank them alike."""
    return round(edge.match_probability, 12), round(edge.match_weight or 0.0, 9)


def better(edge: Edge, than: Edge | None, other: str, than_other: str | None) -> bool:
    """Whether ``edge`` (to record ``other``) beats ``than`` (to ``than_other``); ties go to
    the smaller record id, so the result does not depend on the order pairs arrive in."""
    if than is None:
        return True
    mine, theirs = rank(edge), rank(than)
    return mine > theirs or (mine == theirs and other < (than_other or ""))


def is_auto(edge: Edge, thresholds: Thresholds) -> bool:
    return edge.kind in AUTO_KINDS and edge.match_probability >= thresholds.upper


def is_review(edge: Edge, thresholds: Thresholds) -> bool:
    """Between the thresholds, or held back from auto; an NHS number conflict always."""
    if edge.kind == "nhs-number-conflict":
        return True
    return edge.match_probability >= thresholds.lower and not is_auto(edge, thresholds)


def resolve(unique_ids: Iterable[str], edges: Iterable[Edge], thresholds: Thresholds) -> Clusters:
    """Cluster a batch: automatic links join persons, the rest route to review or new."""
    ids = list(unique_ids)
    links = _UnionFind()
    best_auto: dict[str, Edge] = {}
    best_review: dict[str, Edge] = {}
    reviewable: list[Edge] = []
    for edge in edges:
        if is_auto(edge, thresholds):
            links.union(edge.left, edge.right)
            table = best_auto
        elif is_review(edge, thresholds):
            reviewable.append(edge)
            table = best_review
        else:
            continue
        for uid in (edge.left, edge.right):
            best = table.get(uid)
            if better(edge, best, edge.other(uid), best and best.other(uid)):
                table[uid] = edge
    person = {uid: links.find(uid) for uid in ids}
    decisions: dict[str, Decision] = {}
    for uid in ids:
        auto = best_auto.get(uid)
        review = best_review.get(uid)
        if auto is not None:
            decisions[uid] = Decision(
                uid, "auto", person[uid], auto.match_probability, auto.match_weight,
                auto.other(uid), None, auto.kind,
            )  # fmt: skip
        elif review is not None:
            other = review.other(uid)
            decisions[uid] = Decision(
                uid, "review", person[uid], review.match_probability, review.match_weight,
                other, person.get(other, other), review.kind,
            )  # fmt: skip
        else:
            decisions[uid] = Decision(uid, "new", person[uid])
    review_pairs = [e for e in reviewable if links.find(e.left) != links.find(e.right)]
    return Clusters(decisions, review_pairs)
