"""The outputs API for researchers' scripts: write aggregate outputs that can be checked.

A script running inside the environment builds its tables and models here, then writes them::

    from carelight.sde.disclosure import outputs

    outputs.write("by_sex_and_age.csv", outputs.crosstab(df, index="sex", columns="age_band"))
    outputs.write("mean_bmi.csv", outputs.table(df, by=["sex"], values="bmi", agg="mean"))
    outputs.write("model.csv", outputs.regression(smf.ols("y ~ x", df).fit()))

Each ``write`` puts the aggregate file (CSV) in the job's output folder plus a sidecar
``<name>.sdc.json`` with what the checks need and only the microdata has: per cell the number
of contributors, the two largest absolute contributions and their total; for a regression its
residual degrees of freedom. The checker (``check_output``) reads both. A file written any
other way is checked by its shape only, and most shapes go to an output checker.

Contributors are people: when the frame has a patient column (``patient_id`` by default) a
cell's contributors are the distinct patients in it and a person's contribution to a sum is
the sum of their rows. Without one, each row is taken to be a person.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from carelight.sde.disclosure.metadata import (
    CellFacts,
    Metadata,
    RegressionMetadata,
    TableMetadata,
    write_sidecar,
)
from carelight.sde.disclosure.tables import TOTAL_LABELS

OUTPUT_DIR_ENV = "CARELIGHT_OUTPUT_DIR"
MISSING = "(missing)"
AGGREGATES = ("count", "sum", "mean", "median", "std")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class OutputError(ValueError):
    """An output that cannot be written as asked."""


@dataclass(frozen=True)
class Output:
    """An aggregate ready to write: the frame as it will appear in the CSV, and its metadata."""

    frame: pd.DataFrame
    meta: Metadata


def output_dir() -> Path:
    """The job's output folder: ``CARELIGHT_OUTPUT_DIR`` (set by the job runner) or ./outputs."""
    return Path(os.environ.get(OUTPUT_DIR_ENV, "outputs"))


def _names(value: str | Sequence[str], what: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value)
    if not names:
        raise OutputError(f"{what} needs at least one column")
    return names


def _require(df: pd.DataFrame, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise OutputError(f"the data frame has no column(s) {missing}; it has {list(df.columns)}")


def _labels(series: pd.Series) -> pd.Series:
    labels = series.astype(object).where(series.notna(), MISSING).map(str)
    clash = sorted({lab for lab in labels.unique() if lab.strip().lower() in TOTAL_LABELS})
    if clash:
        raise OutputError(
            f"column {series.name!r} has the label(s) {clash}, which the checker uses for totals; "
            "rename the category"
        )
    return labels


def _population(df: pd.DataFrame, patient_column: str, given: str | None) -> str | None:
    """Which people a table is about, so the checker joins it only with tables of the same
    people: the researcher's name for it, else a hash of the set of patients."""
    if given is not None:
        return given
    if patient_column not in df.columns:
        return None
    ids = sorted(map(str, df[patient_column].dropna().unique()))
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
    return f"patients:{digest}"


def _grid(labelled: pd.DataFrame, dims: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every combination of the labels seen per dimension, so empty cells appear as zeros."""
    levels = [list(dict.fromkeys(sorted(labelled[d].unique()))) for d in dims]
    return list(product(*levels))


def _facts(
    labelled: pd.DataFrame, dims: tuple[str, ...], values: str | None, patient_column: str
) -> dict[tuple[str, ...], CellFacts]:
    has_patients = patient_column in labelled.columns
    unit = (
        labelled[patient_column]
        if has_patients
        else pd.Series(np.arange(len(labelled)), index=labelled.index)
    )
    work = labelled[list(dims)].assign(_unit=unit.values)
    if values is not None:
        work = work.assign(_v=pd.to_numeric(labelled[values], errors="coerce").values)
        work = work[work["_v"].notna()]
        per = work.groupby([*dims, "_unit"], sort=False)["_v"].sum().reset_index()
    else:
        per = work.drop_duplicates([*dims, "_unit"])
    out: dict[tuple[str, ...], CellFacts] = {}
    for key, grp in per.groupby(list(dims), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        key = tuple(str(k) for k in key)
        if values is None:
            out[key] = CellFacts(key=key, n=len(grp))
            continue
        contrib = grp["_v"].to_numpy(dtype=float)
        mags = np.sort(np.abs(contrib))[::-1]
        out[key] = CellFacts(
            key=key,
            n=len(contrib),
            top1=float(mags[0]) if len(mags) else None,
            top2=float(mags[1]) if len(mags) > 1 else 0.0,
            total=float(mags.sum()),
            negative=bool((contrib < 0).any()),
            all_same=bool(len(contrib) > 1 and np.all(contrib == contrib[0])),
        )
    return out


def crosstab(
    df: pd.DataFrame,
    index: str | Sequence[str],
    columns: str,
    *,
    margins: bool = True,
    population: str | None = None,
    patient_column: str = "patient_id",
) -> Output:
    """Counts of people by ``index`` (rows) and ``columns`` (one column dimension).

    The checker adds row, column and grand totals when ``margins`` (computed after
    disclosure control as the policy says)."""
    idx = _names(index, "index")
    if not isinstance(columns, str):
        raise OutputError("columns must be one column name (a crosstab has one column dimension)")
    dims = (*idx, columns)
    _require(df, dims)
    if len(set(dims)) != len(dims):
        raise OutputError("a column cannot be both a row and a column dimension")
    labelled = df.assign(**{d: _labels(df[d]) for d in dims})
    facts = _facts(labelled, dims, None, patient_column)
    rows_per = labelled.groupby(list(dims), sort=False).size()
    event_level = patient_column in df.columns and df[patient_column].duplicated().any()
    cells: list[CellFacts] = []
    table: dict[tuple[str, ...], dict[str, int]] = {}
    col_labels = sorted(labelled[columns].unique())
    if set(col_labels) & set(idx):
        raise OutputError("a column label is also the name of a row dimension; rename one")
    for key in _grid(labelled, dims):
        n_rows = int(rows_per.get(key, 0))
        cells.append(facts.get(key, CellFacts(key=key, n=0)))
        table.setdefault(key[:-1], {})[key[-1]] = n_rows
    frame = pd.DataFrame(
        [[*k, *(v.get(c, 0) for c in col_labels)] for k, v in table.items()],
        columns=[*idx, *col_labels],
    )
    meta = TableMetadata(
        statistic="count",
        index=idx,
        columns=(columns,),
        value_column="count",
        cells=tuple(cells),
        margins=margins,
        population=_population(df, patient_column, population),
        unit="rows" if event_level else "patients",
    )
    return Output(frame=frame, meta=meta)


def table(
    df: pd.DataFrame,
    by: str | Sequence[str],
    values: str | None = None,
    agg: str = "count",
    *,
    margins: bool = False,
    population: str | None = None,
    patient_column: str = "patient_id",
) -> Output:
    """A long table of ``agg`` of ``values`` (or counts) by the ``by`` columns.

    ``agg`` is one of count, sum, mean, median, std. Minimum and maximum are not offered:
    each is one person's value."""
    dims = _names(by, "by")
    if agg not in AGGREGATES:
        hint = " (a minimum or maximum is one person's value)" if agg in ("min", "max") else ""
        raise OutputError(f"agg must be one of {AGGREGATES}, not {agg!r}{hint}")
    if agg != "count" and values is None:
        raise OutputError(f"agg={agg!r} needs the values column to aggregate")
    _require(df, [*dims, *([values] if values else [])])
    labelled = df.assign(**{d: _labels(df[d]) for d in dims})
    facts = _facts(labelled, dims, values if agg != "count" else None, patient_column)
    grid = _grid(labelled, dims)
    if agg == "count":
        stat = labelled.groupby(list(dims), sort=False).size()
        value_column = "count"
    else:
        numeric = pd.to_numeric(labelled[values], errors="coerce")
        stat = numeric.groupby([labelled[d] for d in dims], sort=False).agg(agg)
        value_column = f"{agg}_{values}"
    if value_column in dims:
        raise OutputError(f"a dimension is named {value_column!r}, the value column's name")
    rows = []
    for key in grid:
        lookup = key if len(key) > 1 else key[0]
        v = stat.get(lookup, 0 if agg == "count" else np.nan)
        rows.append([*key, v])
    frame = pd.DataFrame(rows, columns=[*dims, value_column])
    event_level = patient_column in df.columns and df[patient_column].duplicated().any()
    meta = TableMetadata(
        statistic=agg,
        index=dims,
        columns=(),
        value_column=value_column,
        cells=tuple(facts.get(k, CellFacts(key=k, n=0)) for k in grid),
        margins=margins and agg == "count",
        population=_population(df, patient_column, population),
        unit="rows" if (event_level and agg == "count") else "patients",
    )
    return Output(frame=frame, meta=meta)


def regression(result: Any) -> Output:
    """The coefficients of a fitted statsmodels model, with its residual degrees of freedom."""
    try:
        params = result.params
        bse = result.bse
        pvalues = result.pvalues
        ci = result.conf_int()
        df_resid = float(result.df_resid)
        nobs = int(result.nobs)
    except AttributeError as exc:
        raise OutputError(
            f"regression() takes a fitted statsmodels result (from .fit()), not {type(result)}"
        ) from exc
    frame = pd.DataFrame(
        {
            "term": [str(t) for t in params.index],
            "coef": np.asarray(params, dtype=float),
            "std_err": np.asarray(bse, dtype=float),
            "p_value": np.asarray(pvalues, dtype=float),
            "ci_lower": np.asarray(ci.iloc[:, 0], dtype=float),
            "ci_upper": np.asarray(ci.iloc[:, 1], dtype=float),
        }
    )
    model = type(getattr(result, "model", result)).__name__
    meta = RegressionMetadata(model=model, n_obs=nobs, residual_df=df_resid)
    return Output(frame=frame, meta=meta)


def write(name: str, output: Output | pd.DataFrame, *, directory: str | Path | None = None) -> Path:
    """Write an output (CSV plus sidecar) into the job's output folder; return the CSV's path.

    A plain DataFrame is written without a sidecar and will be checked by its shape only."""
    if not _NAME.match(name) or "/" in name or ".." in name:
        raise OutputError(f"{name!r} is not a plain file name (letters, digits, _ . -)")
    if not name.endswith(".csv"):
        name += ".csv"
    folder = Path(directory) if directory is not None else output_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame = output.frame if isinstance(output, Output) else output
    if not isinstance(frame, pd.DataFrame):
        raise OutputError(f"write() takes an Output or a pandas DataFrame, not {type(output)}")
    frame.to_csv(path, index=False, lineterminator="\n")
    if isinstance(output, Output):
        write_sidecar(path, output.meta)
    return path
