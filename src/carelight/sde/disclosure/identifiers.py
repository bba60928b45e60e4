"""Finding columns that look like a patient identifier or pseudonym.

An aggregate output has no business holding one: a pseudonym column means the file is about
individual people, whatever else it holds. Three kinds of evidence, any one enough:

- the column's *name* (patient_id, person, pseudonym, nhs_number, mrn, …);
- its *values*: most are NHS numbers (ten digits, optionally 3-3-4, with a valid modulus-11
  check digit, so that ten-digit clinical codes are not mistaken for them), UUIDs, long
  hexadecimal strings (a hash), or long base64 tokens (a keyed hash or an encrypted id);
- *one distinct value per row* of opaque tokens (no spaces, mixing letters and digits, ten
  characters or more), over enough rows that it cannot be a handful of category labels.
  Clinical codes (all digits) and ONS area codes (E02000001) are labels, not tokens.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from carelight.identity.nhs_number import is_valid_nhs_number

_NAME = re.compile(
    r"""^(?:
        (?:patient|person)
            [\s_\-]*(?:id|ids|key|number|no|num|identifier|ref|reference|pseudonym|hash)?
      | (?:subject|participant|individual|client|resident|service[\s_\-]?user|pupil)
            [\s_\-]*(?:id|ids|key|number|no|num|identifier|ref|reference|pseudonym|hash)
      | (?:pseudo|pseudonym|pseudonymised[\s_\-]*id|pseudo[\s_\-]*id|hashed?[\s_\-]*id|token)
      | nhs[\s_\-]*(?:number|no|num|id)?
      | chi(?:[\s_\-]*number)?
      | mrn | hospital[\s_\-]*(?:number|no|id) | local[\s_\-]*patient[\s_\-]*id
      | id | uid | uuid | guid | pid | eid | row[\s_\-]*id
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_NHS = re.compile(r"^\d{3}[ \-]?\d{3}[ \-]?\d{4}$")
_HEX = re.compile(r"^(?=.*[a-fA-F])(?=.*\d)[0-9a-fA-F]{16,}$")
_B64 = re.compile(r"^[A-Za-z0-9+/_\-]{20,}={0,2}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_OPAQUE = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])\S{10,}$")
_AREA_CODE = re.compile(r"^[EWSN]\d{8}$")

#: share of non-empty values that must match a value pattern to flag the column
VALUE_SHARE = 0.5
#: rows needed before "one distinct value per row" means anything
UNIQUE_MIN_ROWS = 20


@dataclass(frozen=True)
class IdentifierFinding:
    column: str
    reason: str


def _looks_like_token(value: str) -> str | None:
    if _NHS.match(value) and is_valid_nhs_number(re.sub(r"[ \-]", "", value)):
        return "NHS-number-like values"
    if _UUID.match(value):
        return "UUID values"
    if _HEX.match(value):
        return "long hexadecimal values (a hash)"
    if _B64.match(value) and re.search(r"\d", value) and re.search(r"[A-Za-z]", value):
        return "long base64-like tokens"
    return None


def name_looks_like_identifier(name: str) -> bool:
    return bool(_NAME.match(name.strip()))


def find_identifier_columns(
    columns: dict[str, Sequence[str]], *, headers: Sequence[str] = ()
) -> list[IdentifierFinding]:
    """Columns (name → values as strings) that look like identifiers; ``headers`` are extra
    labels to check by value only (the column labels of a wide crosstab)."""
    found: list[IdentifierFinding] = []
    for name, values in columns.items():
        if name_looks_like_identifier(str(name)):
            found.append(IdentifierFinding(str(name), "the column name looks like an identifier"))
            continue
        present = [v.strip() for v in values if v is not None and v.strip() != ""]
        if not present:
            continue
        kinds = [_looks_like_token(v) for v in present]
        hits = [k for k in kinds if k]
        if len(hits) >= VALUE_SHARE * len(present):
            found.append(IdentifierFinding(str(name), f"most values are {hits[0]}"))
            continue
        if (
            len(present) >= UNIQUE_MIN_ROWS
            and len(set(present)) == len(present)
            and sum(bool(_OPAQUE.match(v)) and not _AREA_CODE.match(v) for v in present)
            >= VALUE_SHARE * len(present)
        ):
            found.append(
                IdentifierFinding(str(name), "one distinct opaque value per row (a pseudonym?)")
            )
    labels = [h.strip() for h in headers if h and h.strip()]
    if labels:
        hits = [k for k in (_looks_like_token(h) for h in labels) if k]
        if len(hits) >= VALUE_SHARE * len(labels):
            found.append(IdentifierFinding("(column labels)", f"most column labels are {hits[0]}"))
    return found
