"""Secondary suppression: suppress more cells until the audit finds every redacted cell
protected (docs/disclosure-control.md, decision 0008).

The cells to protect are the new table's cells redacted by a rule and the linked released
tables' ones. Each is judged against what was known before the new table (its interval with
every cell of the new table hidden): the new table must leave all of the rule's redacted counts
possible that were still possible then. While one is pinned, one more released cell is
suppressed (totals are audited first; the candidate shares a row, column or total with the
pinned cell, or covers the same people for a released table's cell; then the smallest count).
A clean-up pass publishes again every secondary cell that is not needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from carelight.sde.disclosure.audit import System, build_system
from carelight.sde.disclosure.evidence import Evidence
from carelight.sde.disclosure.policy import Policy
from carelight.sde.disclosure.published import PublishedCell, PublishedTable, Status
from carelight.sde.disclosure.rounding import round_count
from carelight.sde.disclosure.tables import Key, Table, describe

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


def suppress_until_protected(
    table: Table,
    policy: Policy,
    evidence: Evidence,
    status: dict[Key, Status],
    shown_value: dict[Key, int],
    counts: dict[Key, int],
    published: Callable[[], PublishedTable],
    released: Sequence[PublishedTable],
) -> bool:
    """Suppress cells of ``table`` (changing ``status`` and ``shown_value`` in place) until
    every protected cell is protected; record the audit in the evidence. ``published`` gives
    the table's facts for the current ``status``. True when everything is protected."""
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
            else describe(by_name[target.table], target.key),
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
            else describe(by_name[target.table], target.key)
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
