"""Disclosure control of a table of sums, means, medians or standard deviations.

Each cell is checked with the facts the outputs API recorded from the microdata: the number of
contributors (threshold and zeros), and for sums and means the two largest absolute
contributions and the sum of absolute values (dominance and p-ratio):

- **dominance (n, k)**: the ``n`` largest contributions make up more than ``k`` of the total;
  one or two people then largely *are* the cell's value.
- **p-ratio**: what is left after the two largest, ``total - top1 - top2``, is less than
  ``p * top1``; the second-largest contributor could then estimate the largest within p %.

- **all values the same** (``acro``, after ACRO's check of the same name): if every contributor
  has the same value, the statistic is each person's value (everyone in the group was
  prescribed 0 units, or all had the same score).

A failing cell is redacted. A negative contribution makes both tests unreliable, so the file
goes to an output checker. No totals are published for these tables, so there is nothing for
secondary suppression to protect against inside the table; the same statistic released at a
coarser breakdown is for the human checkers (docs/disclosure-control.md).
"""

from __future__ import annotations

import math

from carelight.sde.disclosure.evidence import Evidence
from carelight.sde.disclosure.policy import Policy
from carelight.sde.disclosure.tables import REDACTED, Key, Table, describe


def dominated(top: list[float], total: float, n: int, k: float) -> bool:
    """The ``n`` largest contributions exceed ``k`` of the total."""
    if total <= 0:
        return False
    return sum(sorted(top, reverse=True)[:n]) > k * total


def fails_p_ratio(top1: float, top2: float, total: float, p: float) -> bool:
    """What remains after the two largest contributions is under ``p`` of the largest."""
    if top1 <= 0:
        return False
    return total - top1 - top2 < p * top1


def check_statistic_table(table: Table, policy: Policy, evidence: Evidence) -> dict[Key, str]:
    threshold = evidence.rule(
        "threshold", f"a statistic of fewer than {policy.min_count} people is redacted"
    )
    zeros = evidence.rule("zeros", "a cell with no contributors")
    additive = table.statistic in ("sum", "mean")
    dominance = evidence.rule(
        "dominance",
        f"the {policy.dominance_n} largest contributions make up more than "
        f"{policy.dominance_k:.0%} of the total"
        if policy.dominance_n and additive
        else "not applied (the policy has no dominance rule, or the statistic is not a sum/mean)",
    )
    pratio = evidence.rule(
        "p-ratio",
        f"the total less the two largest contributions is under {policy.p_ratio:.0%} of the largest"
        if policy.p_ratio and additive
        else "not applied (the policy has no p-ratio rule, or the statistic is not a sum/mean)",
    )
    negatives = evidence.rule("negative-values", "a cell with a negative contribution")
    same = evidence.rule(
        "all-values-same",
        "every contributor has the same value, so the statistic is each one's value"
        if policy.same_values_disclosive
        else "not applied (this policy does not hold identical values disclosive)",
    )
    shown: dict[Key, str] = {}
    for key, value in table.values.items():
        where = describe(table, key)
        facts = table.facts[key]
        redact = False
        if facts.n == 0:
            redact = True
            zeros.hit("redacted", "no contributors", where)
        elif facts.n < policy.min_count:
            redact = True
            threshold.hit("redacted", f"fewer than {policy.min_count} contributors", where)
        elif policy.same_values_disclosive and facts.all_same:
            redact = True
            same.hit("redacted", "every contributor has the same value", where)
        elif additive and facts.top1 is not None and facts.total is not None:
            top1, top2 = abs(facts.top1), abs(facts.top2 or 0.0)
            total = abs(facts.total)
            if facts.negative:
                negatives.hit("flagged", "negative contributions: dominance is unreliable", where)
            if policy.dominance_n and dominated(
                [top1, top2], total, policy.dominance_n, policy.dominance_k
            ):
                redact = True
                dominance.hit("redacted", "dominated by its largest contributions", where)
            elif policy.p_ratio and fails_p_ratio(top1, top2, total, policy.p_ratio):
                redact = True
                pratio.hit("redacted", "fails the p-ratio test", where)
        elif additive and (policy.dominance_n or policy.p_ratio):
            redact = True
            dominance.hit("redacted", "the metadata has no contributions to test", where)
        shown[key] = REDACTED if redact else ("" if math.isnan(value) else table.raw[key])
    if negatives.hits:
        evidence.escalate(
            "needs-review",
            "some cells have negative contributions, so dominance and p-ratio cannot be relied on",
        )
    return shown
