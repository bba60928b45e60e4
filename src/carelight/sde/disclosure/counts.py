"""Disclosure control of a count table: primary suppression, rounding, secondary
suppression audited by linear programming, and totals.

1. **Primary suppression.** A cell describing fewer than ``min_count`` people is redacted
   (``threshold``); so is a zero when the policy holds zeros disclosive (``zeros``). Under
   ``margins = "true"`` the totals are cells too and are checked the same way.
2. **Rounding** of every remaining count (and true total) to the policy's base.
3. **Secondary suppression.** When totals are true totals, or the project has already released
   tables of the same population, redacted cells might be worked out by subtraction. The audit
   (``audit.py``) computes each redacted cell's feasible interval from everything published;
   while one excludes a count the rule redacts (so the attacker learns more than "it was
   redacted"), one more released cell is suppressed: for the most tightly pinned cell, the
   smallest cell sharing a row, column or total with it, else the smallest anywhere.
   A table whose redacted cells cannot be protected by suppressing more fails.
4. **Totals.** Under ``margins = "recompute"`` each total is the sum of the released (rounded)
   cells it covers, computed last, so it never says anything about a redacted cell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from carelight.sde.disclosure.audit import (
    AuditTooLarge,
    System,
    build_system,
    protected,
)
from carelight.sde.disclosure.evidence import Evidence
from carelight.sde.disclosure.policy import Policy
from carelight.sde.disclosure.published import PublishedCell, PublishedTable, Status
from carelight.sde.disclosure.rounding import round_count, rounded_interval
from carelight.sde.disclosure.tables import REDACTED, Key, Table, TableError


def describe(table: Table, key: Key) -> dict[str, str]:
    """A cell or total named by its labels, ``Total`` where summed over."""
    return {d: ("Total" if lab is None else lab) for d, lab in zip(table.dims, key, strict=True)}


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
        )

    secondary = evidence.rule(
        "secondary-suppression",
        "further cells are suppressed until no redacted cell can be narrowed down from the "
        "published totals or the project's released tables (linear-programming audit)",
    )
    ok = True
    usable_released = list(released) if table.unit == "patients" else []
    needs_audit = any(s == "primary" for s in status.values()) and (true_margins or usable_released)
    if needs_audit:
        try:
            ok = _suppress_until_protected(
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
            evidence.escalate("needs-review", f"secondary suppression could not be audited: {exc}")
            ok = False
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


#: the clean-up pass (publishing needless secondary cells again) is skipped above this many
#: (secondary cell, primary cell) pairs, to bound the number of linear programs
MAX_RELEASE_TRIALS = 400


def _system(table: PublishedTable, joint, linked: Sequence[PublishedTable]):
    system = System(joint)
    system.add_table(table)
    for t in linked:
        system.add_table(t)
    return system, table


def _distance(a: Key, b: Key) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


def _suppress_until_protected(
    table: Table,
    policy: Policy,
    evidence: Evidence,
    status: dict[Key, Status],
    shown_value: dict[Key, int],
    counts: dict[Key, int],
    published,
    released: Sequence[PublishedTable],
) -> bool:
    first = build_system(published(), released)
    linked = [t for t in released if t.name in first.linked]
    audit: dict = {
        "method": "linear programming (HiGHS via scipy.optimize.linprog) over the joint table",
        "criterion": "given everything published, every count a rule redacts "
        f"({policy.primary_range[0]} to {policy.primary_range[1]}) must stay possible for a "
        "cell redacted by a rule; a cell suppressed as secondary whose value the published "
        "facts fix exactly is published again (hiding it protects nothing)",
        "linked_tables": first.linked,
        "excluded_tables": first.excluded,
        "cells": [],
    }
    evidence.audit = audit
    for excluded in first.excluded:
        evidence.reasons.append(
            f"released table {excluded!r} was not joined in the audit: a different population "
            "or figures that contradict this table's"
        )
    done: set[Key] = set()
    intervals: dict[Key, tuple[float, float]] = {}
    ok = True
    for _ in range(len(status) + 1):
        system, current = _system(published(), first.system.joint, linked)
        unprotected: list[tuple[float, int, int, Key]] = []
        for i, cell in enumerate(current.cells):
            if cell.status == "released" or cell.key in done:
                continue
            interval = system.interval(current, cell.key)
            intervals[cell.key] = interval
            if protected(cell, interval, policy.primary_range):
                done.add(cell.key)
            else:
                nones = sum(label is None for label in cell.key)
                unprotected.append((interval[1] - interval[0], -nones, i, cell.key))
        if not unprotected:
            break
        # Work on the most tightly pinned cell first, totals before the cells under them: a
        # total pinned by the other totals pins every cell it covers.
        failing = min(unprotected)[3]
        # a zero cannot be a secondary cell: its published range would not hold the truth.
        # Prefer a cell that shares a row, column or total with the failing one (differs in
        # one label), then the smallest count: least information lost.
        order = {k: i for i, k in enumerate(status)}
        candidates = [
            k for k, s in status.items() if s == "released" and counts[k] >= policy.min_count
        ]
        candidates.sort(key=lambda k: (_distance(k, failing) > 1, counts[k], order[k]))
        if not candidates:
            ok = False
            break
        chosen = candidates[0]
        status[chosen] = "secondary"
        shown_value.pop(chosen, None)
    else:  # pragma: no cover - each pass suppresses one more cell, so the loop ends first
        ok = False
    # Greedy choices can suppress more than needed: try publishing each secondary cell again,
    # largest first, and keep it published if every cell redacted by a rule stays protected.
    # A secondary cell the published facts already fix always passes (nobody learns more).
    secondaries = sorted(
        (k for k, s in status.items() if s == "secondary"), key=lambda k: -counts[k]
    )
    primaries = [k for k, s in status.items() if s == "primary"]
    if len(secondaries) * len(primaries) <= MAX_RELEASE_TRIALS:
        for key in secondaries:
            status[key] = "released"
            shown_value[key] = round_count(counts[key], policy.rounding_base)
            system, trial = _system(published(), first.system.joint, linked)
            if not all(
                protected(c, system.interval(trial, c.key), policy.primary_range)
                for c in trial.cells
                if c.status == "primary"
            ):
                status[key] = "secondary"
                shown_value.pop(key)
    # The final audit, on what will be published: every interval recorded is the final one.
    final = published()
    system, final = _system(final, first.system.joint, linked)
    for cell in final.cells:
        if cell.status != "released":
            intervals[cell.key] = system.interval(final, cell.key)
    unprotected = []
    for key, s in status.items():
        if s == "released":
            continue
        lo, hi = intervals[key]
        cell = next(c for c in final.cells if c.key == key)
        good = protected(cell, (lo, hi), policy.primary_range)
        audit["cells"].append(
            {
                "cell": describe(table, key),
                "status": s,
                "interval": [lo, None if math.isinf(hi) else hi],
                "protected": good,
            }
        )
        if not good:
            unprotected.append(key)
    if unprotected:
        ok = False
        evidence.escalate(
            "fail",
            f"{len(unprotected)} redacted cell(s) can be narrowed down from what is published "
            "and suppressing more cells cannot prevent it: redesign the table (coarser "
            "categories) or ask an output checker",
        )
    return ok
