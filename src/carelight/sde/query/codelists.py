"""Codelists: sets of codes from one code system, loaded from CSV and checked for shape.

    diabetes = codelist_from_csv("codelists/diabetes.csv", column="code", system="snomedct")
    events.where(events.snomedct_code.is_in(diabetes))

Each code is checked against its system's shape, so a codelist with a mangled code (a
spreadsheet's ``1.23E+15``, a dropped leading digit, an ICD-10 code in a SNOMED CT list) fails
when it is loaded, naming the line, instead of silently matching nothing:

- ``snomedct`` and ``dmd``: SCTID-format identifiers (6 to 18 digits, no leading zero, a valid
  Verhoeff check digit); dm+d codes are SNOMED CT identifiers.
- ``icd10``: a letter, two digits, then optionally a dot and up to four more characters
  (``E11``, ``E11.9``, ``E119``, ``I10X``).
- ``loinc``: digits, a hyphen and the mod-10 check digit (``4548-4``).
- ``any``: no check beyond being non-empty.
"""

from __future__ import annotations

import contextvars
import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

SYSTEMS = ("snomedct", "dmd", "icd10", "loinc", "any")

# Where relative codelist paths are read from while a definition file is being loaded.
BASE_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "codelist_base", default=None
)


class CodelistError(ValueError):
    """A codelist file or code that is wrong; the message names the file, line and code."""


@dataclass(frozen=True)
class Codelist:
    """Codes of one system; ``categories`` maps code → category when the CSV had one."""

    codes: frozenset[str]
    system: str
    categories: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __len__(self) -> int:
        return len(self.codes)

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def __iter__(self):
        return iter(sorted(self.codes))


# Verhoeff's dihedral-group tables (the check digit SNOMED CT identifiers end with).
_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]


def verhoeff_valid(digits: str) -> bool:
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[i % 8][int(ch)]]
    return c == 0


def verhoeff_check_digit(digits: str) -> str:
    """The digit to append to ``digits`` to make a valid SCTID-style identifier."""
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[(i + 1) % 8][int(ch)]]
    return str(_INVERSE[c])


_INVERSE = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]


def loinc_valid(code: str) -> bool:
    m = re.fullmatch(r"(\d{1,7})-(\d)", code)
    if not m:
        return False
    body, check = m.group(1), int(m.group(2))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return (10 - total % 10) % 10 == check


_ICD10 = re.compile(r"[A-Z][0-9]{2}(\.?[0-9A-Z]{1,4})?")


def check_code(code: str, system: str) -> str | None:
    """Why ``code`` is not a ``system`` code, or None if it looks right."""
    if system in ("snomedct", "dmd"):
        if not code.isdigit() or not code.isascii():
            return "is not all digits"
        if not 6 <= len(code) <= 18:
            return "should have 6 to 18 digits"
        if code[0] == "0":
            return "starts with 0"
        if not verhoeff_valid(code):
            return "fails the Verhoeff check digit (mistyped or truncated?)"
        return None
    if system == "icd10":
        return None if _ICD10.fullmatch(code) else "is not an ICD-10 code like E11 or E11.9"
    if system == "loinc":
        return (
            None
            if loinc_valid(code)
            else "is not a LOINC code like 4548-4 with a valid check digit"
        )
    if system == "any":
        return None
    raise CodelistError(f"unknown code system {system!r}; known: {', '.join(SYSTEMS)}")


def codelist(codes: Iterable[str], system: str) -> Codelist:
    """A codelist from codes in code, each checked."""
    checked = set()
    for code in codes:
        code = str(code).strip()
        problem = check_code(code, system)
        if problem:
            raise CodelistError(f"{code!r} {problem} ({system})")
        checked.add(code)
    return Codelist(frozenset(checked), system)


def codelist_from_csv(
    path: str | Path,
    *,
    column: str,
    system: str = "snomedct",
    category_column: str | None = None,
) -> Codelist:
    """Codes from ``column`` of a CSV file with a header row; blank codes are skipped.

    Relative paths are read from the definition file's folder when loaded by
    ``load_definition``, else from the current folder.
    """
    if system not in SYSTEMS:
        raise CodelistError(f"unknown code system {system!r}; known: {', '.join(SYSTEMS)}")
    path = Path(path)
    base = BASE_DIR.get()
    if base is not None and not path.is_absolute():
        path = base / path
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise CodelistError(f"no codelist file {str(path)!r}") from None
    codes: set[str] = set()
    categories: dict[str, str] = {}
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        for wanted in (column, category_column):
            if wanted is not None and wanted not in header:
                raise CodelistError(
                    f"{path.name} has no column {wanted!r}; its columns are: {', '.join(header)}"
                )
        for line, row in enumerate(reader, start=2):
            code = (row.get(column) or "").strip()
            if not code:
                continue
            problem = check_code(code, system)
            if problem:
                raise CodelistError(f"{path.name} line {line}: {code!r} {problem} ({system})")
            codes.add(code)
            if category_column is not None:
                categories[code] = (row.get(category_column) or "").strip()
    if not codes:
        raise CodelistError(f"{path.name} has no codes in column {column!r}")
    return Codelist(frozenset(codes), system, categories)
