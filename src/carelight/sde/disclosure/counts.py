"""Disclosure control of a count table: primary suppression, rounding, secondary
suppression audited by linear programming, and totals.

1. **Primary suppression.** A cell describing fewer than ``min_count`` people is redacted
   (``threshold``); so is a zero when the policy holds zeros disclosive (``zeros``). Under
   ``margins = "true"`` the totals are cells too and are checked the same way.
2. **Rounding** of every remaining count (and true total) to the policy's base.
3. **Secondary suppression** (``secondary.py``). When totals are true totals, or the
   project has released tables of the same population, a redacted cell might be worked out by
   subtraction; more cells are suppressed until the audit (``audit.py``) finds every redacted
   cell, here and in the linked released tables, protected.
4. **Totals.** Under ``margins = "recompute"`` each total is the sum of the released (rounded)
   cells it covers, computed last, so it never says anything about a redacted cell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from carelight.sde.disclosure.audit import AuditTooLarge
from carelight.sde.disclosure.evidence import Evidence
from carelight.sde.disclosure.policy import Policy
from carelight.sde.disclosure.published import PublishedCell, PublishedTable, Status
from carelight.sde.disclosure.rounding import round_count, rounded_interval
from carelight.sde.disclosure.secondary import suppress_until_protected
from carelight.sde.disclosure.tables import REDACTED, Key, Table, TableError, describe


@dataclass
class CountOutcome:
    shown: dict[Key, str]
    published: PublishedTable | None
    status: dict[Key, Status] = field(default_factory=dict)
    protected: bool = True


def _true_counts(table: Table) -> dict[Key, int]:
    counts: dict[Key, int] = {}
    for key, v in table.values.items():
        if math.isnan(v):
            raise TableError(f"cell {describe(table, key)} of a count table is empty")
        if v < 0 or v != int(v):
            raise TableError(f"cell {describe(table, key)} is not a whole, non-negative count")
        counts[key] = int(v)
    return counts


def check_count_table(
    table: Table,
    policy: Policy,
    evidence: Evidence,
    *,
    name: str,
    released: Sequence[PublishedTable] = (),
) -> CountOutcome:
    counts = _true_counts(table)
    true_margins = policy.margins == "true" and table.margins and table.unit == "patients"
    margin_keys = table.margin_keys()
    people: dict[Key, int] = {}
    for key in counts:
        n = table.contributors(key)
        people[key] = counts[key] if n is None else n
    if true_margins:
        for m in margin_keys:
            members = table.members(m)
            counts[m] = sum(counts[k] for k in members)
            people[m] = counts[m]

    threshold = evidence.rule(
        "threshold",
        f"a count describing fewer than {policy.min_count} people is redacted",
    )
    zeros = evidence.rule(
        "zeros",
        "a zero count is redacted (zeros are disclosive under this policy)"
        if policy.zeros_disclosive
        else "zero counts are published: this policy does not hold zeros disclosive",
    )
    status: dict[Key, Status] = {}
    for key, n in people.items():
        where = describe(table, key)
        if n == 0 and policy.zeros_disclosive:
            status[key] = "primary"
            zeros.hit("redacted", "a zero count", where)
        elif 0 < n < policy.min_count:
            status[key] = "primary"
            threshold.hit("redacted", f"fewer than {policy.min_count} people", where)
        else:
            status[key] = "released"

    base = policy.rounding_base
    rounding = evidence.rule(
        "rounding",
        f"every published count is rounded to the nearest {base}" if base > 1 else "no rounding",
    )
    shown_value: dict[Key, int] = {}
    for key, s in status.items():
        if s == "released":
            r = round_count(counts[key], base)
            shown_value[key] = r
            if r != counts[key]:
                rounding.hit("rounded", f"rounded to a multiple of {base}", describe(table, key))

    def published() -> PublishedTable:
        # A redacted cell shows the same marker whether it was redacted by a rule or
        # suppressed as secondary, so all an attacker knows of it is that it is not a
        # published zero: at least the smallest count a rule redacts.
        cells = []
        for key, s in status.items():
            if s == "released":
                lo, hi = rounded_interval(shown_value[key], base, policy.min_count)
            else:
                lo, hi = float(policy.primary_range[0]), math.inf
            cells.append(PublishedCell(key, lo, hi, s))
        return PublishedTable(
            name=name,
            dims=table.dims,
            labels=table.labels,
            population=table.population,
            cells=cells,
            redacted=policy.primary_range,
        )

    secondary = evidence.rule(
        "secondary-suppression",
        "further cells are suppressed until no redacted cell can be narrowed down from the "
        "published totals or the project's released tables (linear-programming audit)",
    )
    ok = True
    usable_released = list(released) if table.unit == "patients" else []
    has_primary = any(s == "primary" for s in status.values())
    released_primary = any(c.status == "primary" for t in usable_released for c in t.cells)
    needs_audit = (has_primary and (true_margins or usable_released)) or released_primary
    if needs_audit:
        try:
            ok = suppress_until_protected(
                table,
                policy,
                evidence,
                status,
                shown_value,
                counts,
                published,
                usable_released,
            )
        except AuditTooLarge as exc:
            evidence.escalate(
                "needs-review",
                f"the audit against the project's released tables is too large ({exc}): "
                "an output checker must compare them by hand",
            )
            ok = False
            if has_primary and true_margins:  # still protect the table's own totals
                try:
                    ok = suppress_until_protected(
                        table, policy, evidence, status, shown_value, counts, published, []
                    )
                except AuditTooLarge:
                    evidence.escalate(
                        "needs-review", "the table is too large to audit its own totals"
                    )
        for key, s in status.items():
            if s == "secondary":
                secondary.hit(
                    "suppressed-secondary",
                    "suppressed to protect a redacted cell",
                    describe(table, key),
                )
    else:
        evidence.audit = {
            "method": "none needed",
            "reason": "no redacted cell, or no published total or released table relates "
            "a redacted cell to published ones",
        }

    shown: dict[Key, str] = {
        key: (str(shown_value[key]) if s == "released" else REDACTED) for key, s in status.items()
    }
    if table.margins and not true_margins:
        recompute = evidence.rule(
            "totals-recomputed",
            "each total is the sum of the published cells it covers (redacted cells count as "
            "nothing), so a total never reveals a redacted cell",
        )
        for m in margin_keys:
            shown[m] = str(sum(shown_value.get(k, 0) for k in table.members(m)))
            recompute.hit("recomputed", "sum of the published cells", describe(table, m))
    if table.had_totals:
        evidence.rule(
            "totals-in-file",
            "totals written in the file were dropped; the checker publishes its own",
        ).hit("recomputed", "the file's own total rows or columns were removed")
    pub = published() if table.unit == "patients" else None
    return CountOutcome(shown=shown, published=pub, status=status, protected=ok)
