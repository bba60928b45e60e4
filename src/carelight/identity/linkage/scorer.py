"""A pure-Python Fellegi-Sunter scorer over a trained model's m and u probabilities.

Matching one record on write must take milliseconds; starting a Splink prediction takes far
longer than the arithmetic. This scorer reads the parameters from Splink's own settings
dictionary and reproduces its sums: the match weight is log2 of the prior odds times the
Bayes factor m / u of the level each comparison falls in (null levels count 1), and the match
probability is odds / (1 + odds). It refuses a model whose comparisons differ from
``comparisons.COMPARISONS``, because its levels would then not mean what the model's mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from carelight.identity.linkage.comparisons import BY_NAME, Comparison
from carelight.identity.linkage.features import LinkageRecord

# Splink's value for a level never seen in training (splink.internals.comparison_level).
_NOT_OBSERVED = "level not observed in data"
_NOT_OBSERVED_PROBABILITY = 1e-6


class ModelMismatchError(ValueError):
    """The saved model's comparisons are not the ones this code defines."""


@dataclass(frozen=True)
class Score:
    match_weight: float
    match_probability: float
    levels: tuple[int, ...]  # per comparison, the index of the level the pair fell in


def _probability(value: object, default: object) -> float | None:
    if value == _NOT_OBSERVED:
        return _NOT_OBSERVED_PROBABILITY
    if value is None:
        value = default
    return float(value) if value is not None else None


def _bayes_factor(level: dict) -> float:
    if level.get("is_null_level"):
        return 1.0
    m = _probability(level.get("m_probability"), level.get("default_m_probability"))
    u = _probability(level.get("u_probability"), level.get("default_u_probability"))
    if m is None or u is None:
        raise ModelMismatchError(
            f"level {level.get('label_for_charts')!r} has no m or u probability: "
            "the model is untrained"
        )
    return math.inf if u == 0 else m / u


def odds_to_weight_and_probability(odds: float) -> tuple[float, float]:
    if odds == 0:
        return -math.inf, 0.0
    if math.isinf(odds):
        return math.inf, 1.0
    return math.log2(odds), odds / (1.0 + odds)


class Scorer:
    """Scores pairs of ``LinkageRecord`` with the parameters in a Splink settings dict."""

    def __init__(self, settings: dict) -> None:
        lam = settings.get("probability_two_random_records_match")
        if not isinstance(lam, int | float) or not 0 < lam < 1:
            raise ModelMismatchError("the model has no probability_two_random_records_match")
        self.prior_odds = lam / (1 - lam)
        self.comparisons: list[Comparison] = []
        self.bayes_factors: list[tuple[float, ...]] = []
        for saved in settings.get("comparisons") or ():
            name = saved.get("output_column_name")
            ours = BY_NAME.get(name)
            if ours is None:
                raise ModelMismatchError(f"the model has a comparison {name!r} unknown here")
            labels = [lv.get("label_for_charts") for lv in saved.get("comparison_levels", ())]
            if labels != [lv.label for lv in ours.levels]:
                raise ModelMismatchError(
                    f"the model's levels for {name!r} differ from this code's; retrain the model"
                )
            self.comparisons.append(ours)
            self.bayes_factors.append(tuple(_bayes_factor(lv) for lv in saved["comparison_levels"]))
        if {c.name for c in self.comparisons} != set(BY_NAME):
            raise ModelMismatchError("the model lacks some comparisons this code defines")

    def levels(self, left: LinkageRecord, right: LinkageRecord) -> tuple[int, ...]:
        return tuple(c.level_of(left, right) for c in self.comparisons)

    def level(self, name: str, left: LinkageRecord, right: LinkageRecord) -> str:
        """The label of the level the pair falls in for comparison ``name``."""
        comparison = BY_NAME[name]
        return comparison.levels[comparison.level_of(left, right)].label

    def score(self, left: LinkageRecord, right: LinkageRecord) -> Score:
        levels = self.levels(left, right)
        odds = self.prior_odds
        for factors, level in zip(self.bayes_factors, levels, strict=True):
            odds *= factors[level]
        weight, probability = odds_to_weight_and_probability(odds)
        return Score(weight, probability, levels)
