"""Working out what a CSV without metadata is, from its shape alone.

A file the outputs API did not write can still be checked if it is plainly a count table in
long form: label columns plus one column of whole, non-negative numbers whose name says it is
a count (``count``, ``n``, ``frequency``, ``patients``, …), each combination of labels once.
Anything else is not trusted:

- **row-level**: the label columns repeat (an aggregate table lists each group once; a file of
  people repeats values), or a column names a personal attribute such as date of birth or
  postcode. Never releasable.
- **regression without metadata**: a coefficients table; its residual degrees of freedom are
  unknown, so an output checker must look.
- **unknown**: anything else. Flagged for review, never passed automatically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from carelight.sde.disclosure.tables import TOTAL_LABELS

Shape = Literal["count-table", "row-level", "regression-without-metadata", "unknown"]

_COUNT_NAME = re.compile(
    r"^(?:count|counts|n|num|number|freq|frequency|patients|people|persons|"
    r"(?:n|num|number|count)[_\s](?:of[_\s])?(?:patients|people|persons)|"
    r"(?:patient|person)[_\s]count|count_\w+|n_\w+)$",
    re.IGNORECASE,
)
_PERSONAL = re.compile(
    r"(?:date[_\s]?of[_\s]?birth|^dob$|birth[_\s]?date|postcode|post[_\s]code|address|"
    r"first[_\s]?name|surname|last[_\s]?name|forename|email|phone|telephone)",
    re.IGNORECASE,
)
_REGRESSION = {
    "coef",
    "coefficient",
    "estimate",
    "std err",
    "std_err",
    "std. error",
    "se",
    "p>|t|",
    "p>|z|",
    "p_value",
    "pvalue",
    "t",
    "z",
    "odds_ratio",
    "hazard_ratio",
}


@dataclass(frozen=True)
class Classified:
    shape: Shape
    reason: str
    index: tuple[str, ...] = ()
    value_column: str = ""


def _whole_numbers(values: pd.Series) -> bool:
    nums = pd.to_numeric(values.str.replace(",", "", regex=False), errors="coerce")
    return bool(nums.notna().all() and (nums >= 0).all() and (nums == nums.round()).all())


def _numbers(values: pd.Series) -> bool:
    nums = pd.to_numeric(values.str.replace(",", "", regex=False), errors="coerce")
    return bool(nums.notna().all())


def classify_frame(frame: pd.DataFrame) -> Classified:
    """Classify a frame read as strings (``tables.read_csv_strings``)."""
    cols = [str(c) for c in frame.columns]
    personal = [c for c in cols if _PERSONAL.search(c)]
    if personal:
        return Classified("row-level", f"column(s) {personal} hold personal attributes")
    lowered = {c.strip().lower() for c in cols}
    if len(lowered & _REGRESSION) >= 2:
        return Classified(
            "regression-without-metadata",
            "a table of model coefficients; its residual degrees of freedom are unknown "
            "without the outputs API's metadata",
        )
    count_cols = [c for c in cols if _COUNT_NAME.match(c.strip())]
    if len(count_cols) == 1 and len(cols) >= 2:
        value = count_cols[0]
        labels = tuple(c for c in cols if c != value)
        if _whole_numbers(frame[value]):
            numeric_labels = [
                c for c in labels if _whole_numbers(frame[c]) and frame[c].nunique() > 50
            ]
            if numeric_labels:
                return Classified(
                    "unknown", f"column(s) {numeric_labels} look like measurements, not labels"
                )
            body = (
                frame[
                    ~frame[list(labels)].apply(
                        lambda r: any(str(x).strip().lower() in TOTAL_LABELS for x in r), axis=1
                    )
                ]
                if len(frame)
                else frame
            )
            if body.duplicated(subset=list(labels)).any():
                return Classified(
                    "row-level",
                    "the same combination of labels appears on more than one row: "
                    "an aggregate table lists each group once",
                )
            return Classified(
                "count-table",
                f"long table: label column(s) {list(labels)} and count column {value!r}",
                index=labels,
                value_column=value,
            )
    label_cols = [c for c in cols if not _numbers(frame[c])]
    if label_cols and len(frame) > 1 and frame.duplicated(subset=label_cols).any():
        return Classified(
            "row-level",
            "rows repeat the same labels and there is no count column: one row per person "
            "or event, not an aggregate",
        )
    return Classified(
        "unknown",
        "not recognisable as a count table (label columns and one count column); write it "
        "with the outputs API so it can be checked",
    )
