"""The deterministic step: records sharing a usable NHS number are the same person.

A number is usable when it is modulus-11 valid (``features`` drops invalid ones) and its UK
Core verification status, if the record states one, is "01" (number present and verified).
A record without the extension is taken at its word: many systems do not send it, and the
check digit already catches most keying errors.

One guard: two records with the same number whose dates of birth *and* names disagree
strongly are not linked but reported as a **conflict** for review. That is the pattern of a
number written on the wrong record (a baby given its mother's number), which linking blindly
would merge into one person. "Strongly" means the date of birth differs by more than a
transposition or one wrong part, and the first name or the surname is entirely different
(not a typo, nickname, swapped given name or previous surname).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from carelight.identity.linkage.comparisons import DATE_OF_BIRTH, FAMILY_NAME, FIRST_NAME
from carelight.identity.linkage.features import LinkageRecord

VERIFIED = "01"


def usable_nhs_number(record: LinkageRecord) -> str | None:
    if record.nhs_verification not in (None, VERIFIED):
        return None
    return record.nhs_number


def _is_else(comparison, left: LinkageRecord, right: LinkageRecord) -> bool:
    return comparison.level_of(left, right) == len(comparison.levels) - 1


def conflicting(left: LinkageRecord, right: LinkageRecord) -> bool:
    """True when two records' dates of birth and names disagree too much to be one person."""
    return _is_else(DATE_OF_BIRTH, left, right) and (
        _is_else(FIRST_NAME, left, right) or _is_else(FAMILY_NAME, left, right)
    )


@dataclass(frozen=True)
class DeterministicResult:
    links: list[tuple[str, str]]  # pairs linked by NHS number
    conflicts: list[tuple[str, str]]  # pairs sharing a number but not linked


def deterministic_links(records: Iterable[LinkageRecord]) -> DeterministicResult:
    by_number: dict[str, list[LinkageRecord]] = defaultdict(list)
    for record in records:
        number = usable_nhs_number(record)
        if number is not None:
            by_number[number].append(record)
    links: list[tuple[str, str]] = []
    conflicts: list[tuple[str, str]] = []
    for group in by_number.values():
        for i, left in enumerate(group):
            for right in group[i + 1 :]:
                pair = (left.unique_id, right.unique_id)
                (conflicts if conflicting(left, right) else links).append(pair)
    return DeterministicResult(links, conflicts)
