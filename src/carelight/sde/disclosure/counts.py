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
            evidence.escalate(
                "needs-review",
                f"the audit against the project's released tables is too large ({exc}): "
                "an output checker must compare them by hand",
            )
            ok = False
            if has_primary and true_margins:  # still protect the table's own totals
                try:
                    ok = _suppress_until_protected(
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


@dataclass(frozen=True)
class _Target:
    """A cell redacted by a rule that the audit must keep protected: one of the new table's,
    or one of a linked released table's (publishing the new table must not expose it)."""

    table: str | None  # None: the new table; else the released table's name
    key: Key
    redacted: tuple[int, int]


def _targets(
    status: dict[Key, Status], policy: Policy, linked: Sequence[PublishedTable]
) -> list[_Target]:
    own = [_Target(None, k, policy.primary_range) for k, s in status.items() if s == "primary"]
    theirs = [
        _Target(t.name, c.key, t.redacted or policy.primary_range)
        for t in linked
        for c in t.cells
        if c.status == "primary"
    ]
    # Totals first: a total pinned by the other totals pins every cell it covers.
    return sorted(own, key=lambda t: -sum(x is None for x in t.key)) + theirs


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
    by_name = {t.name: t for t in linked}
    audit: dict = {
        "method": "linear programming (HiGHS via scipy.optimize.linprog) over the joint table",
        "criterion": "given everything published, every count a rule redacts "
        f"({policy.primary_range[0]} to {policy.primary_range[1]}) must stay possible for a "
        "cell redacted by a rule, in this table and in the linked released tables; a cell "
        "suppressed as secondary is published again if it is not needed",
        "linked_tables": first.linked,
        "excluded_tables": first.excluded,
        "cells": [],
        "released_cells": [],
    }
    evidence.audit = audit
    for excluded in first.excluded:
        evidence.reasons.append(
            f"released table {excluded!r} was not joined in the audit: a different population "
            "or figures that contradict this table's"
        )
    joint = first.system.joint

    targets = _targets(status, policy, linked)

    # What is known of each protected cell before this table publishes anything: the
    # released tables, and this table with every cell hidden (a published zero stays, as it
    # is never suppressed). This table must not narrow a cell beyond it; what earlier
    # releases or the table's structure already reveal is reported, not held against it.
    hidden = published()
    hidden.cells = [
        c
        if (c.status == "released" and c.hi == 0)
        else PublishedCell(c.key, float(policy.primary_range[0]), math.inf, "secondary")
        for c in hidden.cells
    ]
    base_system, _ = _system(hidden, joint, linked)
    need: dict[_Target, tuple[float, float]] = {}
    already: list[tuple[_Target, tuple[float, float]]] = []
    for target in targets:
        where = hidden if target.table is None else by_name[target.table]
        b_lo, b_hi = base_system.interval(where, target.key)
        lo, hi = max(b_lo, target.redacted[0]), min(b_hi, target.redacted[1])
        need[target] = (lo, max(lo, hi))
        if (lo, hi) != (float(target.redacted[0]), float(target.redacted[1])):
            already.append((target, (b_lo, b_hi)))

    def check(system: System, current: PublishedTable, target: _Target):
        where = current if target.table is None else by_name[target.table]
        interval = system.interval(where, target.key)
        lo, hi = interval
        good = lo <= need[target][0] + 1e-6 and hi >= need[target][1] - 1e-6
        return good, interval

    done: set[_Target] = set()
    order = {k: i for i, k in enumerate(status)}
    ok = True
    for _ in range(len(status) + 1):
        system, current = _system(published(), joint, linked)
        failing: _Target | None = None
        for target in targets:
            if target in done:
                continue
            good, _ = check(system, current, target)
            if good:
                done.add(target)
            else:
                failing = target
                break
        if failing is None:
            break
        # A zero cannot be a secondary cell: its published range would not hold the truth.
        # For a cell of this table, prefer a cell sharing a row, column or total with it
        # (differs in one label); for a released table's cell, one that covers some of the
        # same people; then the smallest count: least information lost.
        candidates = [
            k for k, s in status.items() if s == "released" and counts[k] >= policy.min_count
        ]
        if failing.table is None:

            def near(k: Key, f: Key = failing.key) -> bool:
                return _distance(k, f) <= 1
        else:
            theirs = joint.row(by_name[failing.table], failing.key)

            def near(k: Key, mine=theirs, table=current) -> bool:
                return bool((joint.row(table, k) & mine).any())

        candidates.sort(key=lambda k: (not near(k), counts[k], order[k]))
        if not candidates:
            ok = False
            break
        chosen = candidates[0]
        status[chosen] = "secondary"
        shown_value.pop(chosen, None)
    # Greedy choices can suppress more than needed: try publishing each secondary cell again,
    # largest first, and keep it published if every protected cell stays protected.
    secondaries = sorted(
        (k for k, s in status.items() if s == "secondary"), key=lambda k: -counts[k]
    )
    if len(secondaries) * len(targets) <= MAX_RELEASE_TRIALS:
        for key in secondaries:
            status[key] = "released"
            shown_value[key] = round_count(counts[key], policy.rounding_base)
            system, trial = _system(published(), joint, linked)
            if not all(check(system, trial, t)[0] for t in targets):
                status[key] = "secondary"
                shown_value.pop(key)
    # The final audit, on what will be published: every interval recorded is the final one.
    system, final = _system(published(), joint, linked)
    unprotected = 0
    for target in targets:
        good, (lo, hi) = check(system, final, target)
        unprotected += not good
        record = {
            "cell": describe(table, target.key)
            if target.table is None
            else _describe_released(by_name[target.table], target.key),
            "status": "primary",
            "interval": [lo, None if math.isinf(hi) else hi],
            "protected": good,
        }
        if target.table is None:
            audit["cells"].append(record)
        else:
            audit["released_cells"].append({"table": target.table, **record})
    for cell in final.cells:
        if cell.status == "secondary":
            lo, hi = system.interval(final, cell.key)
            audit["cells"].append(
                {
                    "cell": describe(table, cell.key),
                    "status": "secondary",
                    "interval": [lo, None if math.isinf(hi) else hi],
                    "protected": True,
                }
            )
    for target, (b_lo, b_hi) in already:
        where = "this table" if target.table is None else f"released table {target.table!r}"
        labels = (
            describe(table, target.key)
            if target.table is None
            else _describe_released(by_name[target.table], target.key)
        )
        if b_hi - b_lo < 1e-6:
            evidence.escalate(
                "needs-review",
                f"a redacted cell of {where} ({labels}) is already determined by the project's "
                "released tables: an output checker should look at the earlier releases",
            )
        else:
            evidence.reasons.append(
                f"a redacted cell of {where} ({labels}) was already narrowed to "
                f"{b_lo:g}..{'∞' if math.isinf(b_hi) else format(b_hi, 'g')} by the released "
                "tables or the table's structure; this table narrows it no further"
            )
    if unprotected:
        ok = False
        evidence.escalate(
            "fail",
            f"{unprotected} redacted cell(s), here or in the project's released tables, can be "
            "narrowed down from what would be published and suppressing more cells cannot "
            "prevent it: redesign the table (coarser categories) or ask an output checker",
        )
    return ok


def _describe_released(t: PublishedTable, key: Key) -> dict[str, str]:
    return {d: ("Total" if lab is None else lab) for d, lab in zip(t.dims, key, strict=True)}
