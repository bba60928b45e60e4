"""The sidecar metadata file written next to every output of the outputs API.

Checking a count table needs only the table, but checking a sum or a mean (dominance, p-ratio),
a median (how many people it describes) or a regression (residual degrees of freedom) needs
facts only the microdata has. The outputs API writes them here, per cell: the number of
contributors, the largest and second-largest absolute contributions and the total. The file
also records the SHA-256 of the output it describes, so an output changed after it was written
is noticed.

The sidecar is itself disclosive (a cell's largest contribution is one person's value): it
never leaves the environment and the checker refuses to release it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

SCHEMA = "carelight.sdc.metadata/1"
SUFFIX = ".sdc.json"

Statistic = Literal["count", "sum", "mean", "median", "std"]
STATISTICS: tuple[str, ...] = ("count", "sum", "mean", "median", "std")


class MetadataError(ValueError):
    """A sidecar file that cannot be read or does not describe its output."""


def sidecar_path(output: Path) -> Path:
    return output.with_name(output.name + SUFFIX)


def is_sidecar(path: Path) -> bool:
    return path.name.endswith(SUFFIX)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class CellFacts:
    """What the microdata says about one cell: contributors, the two largest absolute
    contributions, the total of the values, whether any contribution was negative, and whether
    every contributor has the same value (then the statistic is each one's value)."""

    key: tuple[str, ...]
    n: int
    top1: float | None = None
    top2: float | None = None
    total: float | None = None
    negative: bool = False
    all_same: bool = False


@dataclass(frozen=True)
class TableMetadata:
    statistic: str
    index: tuple[str, ...]
    columns: tuple[str, ...]
    value_column: str
    cells: tuple[CellFacts, ...]
    margins: bool = False
    population: str | None = None
    unit: Literal["patients", "rows"] = "patients"
    kind: Literal["table"] = "table"

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise MetadataError(f"statistic must be one of {STATISTICS}, not {self.statistic!r}")
        if len(self.columns) > 1:
            raise MetadataError("a table has at most one column dimension")
        if not self.index:
            raise MetadataError("a table needs at least one index (row) dimension")
        width = len(self.index) + len(self.columns)
        for cell in self.cells:
            if len(cell.key) != width:
                raise MetadataError(f"cell key {list(cell.key)} does not have {width} labels")


@dataclass(frozen=True)
class RegressionMetadata:
    model: str
    n_obs: int
    residual_df: float
    kind: Literal["regression"] = "regression"


Metadata = TableMetadata | RegressionMetadata


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_sidecar(output: Path, meta: Metadata) -> Path:
    """Write the sidecar for an output already on disk (its hash is taken now)."""
    body: dict[str, Any] = {"schema": SCHEMA, "file_sha256": file_sha256(output)}
    if isinstance(meta, TableMetadata):
        body.update(
            kind="table",
            statistic=meta.statistic,
            index=list(meta.index),
            columns=list(meta.columns),
            value_column=meta.value_column,
            margins=meta.margins,
            population=meta.population,
            unit=meta.unit,
            cells=[
                {k: _clean(v) for k, v in asdict(c).items()} | {"key": list(c.key)}
                for c in meta.cells
            ],
        )
    else:
        body.update(
            kind="regression",
            model=meta.model,
            n_obs=meta.n_obs,
            residual_df=_clean(meta.residual_df),
        )
    path = sidecar_path(output)
    path.write_text(json.dumps(body, indent=1, sort_keys=True), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Sidecar:
    meta: Metadata
    file_sha256: str
    path: Path = field(compare=False)


def read_sidecar(output: Path) -> Sidecar | None:
    """The sidecar of ``output``, or None if there is none. Raises MetadataError if broken."""
    path = sidecar_path(output)
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise MetadataError(f"{path.name} is not valid JSON: {exc}") from exc
    if not isinstance(body, dict) or body.get("schema") != SCHEMA:
        raise MetadataError(f"{path.name} is not a {SCHEMA} file")
    try:
        if body["kind"] == "table":
            meta: Metadata = TableMetadata(
                statistic=body["statistic"],
                index=tuple(body["index"]),
                columns=tuple(body["columns"]),
                value_column=body["value_column"],
                margins=bool(body.get("margins", False)),
                population=body.get("population"),
                unit=body.get("unit", "patients"),
                cells=tuple(
                    CellFacts(
                        key=tuple(str(k) for k in c["key"]),
                        n=int(c["n"]),
                        top1=c.get("top1"),
                        top2=c.get("top2"),
                        total=c.get("total"),
                        negative=bool(c.get("negative", False)),
                        all_same=bool(c.get("all_same", False)),
                    )
                    for c in body["cells"]
                ),
            )
        elif body["kind"] == "regression":
            df = body.get("residual_df")
            meta = RegressionMetadata(
                model=str(body["model"]),
                n_obs=int(body["n_obs"]),
                residual_df=float("nan") if df is None else float(df),
            )
        else:
            raise MetadataError(f"{path.name}: unknown kind {body['kind']!r}")
        return Sidecar(meta=meta, file_sha256=str(body["file_sha256"]), path=path)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, MetadataError):
            raise
        raise MetadataError(f"{path.name} is missing or has a bad field: {exc}") from exc
