"""``check_output``: run every disclosure-control rule on one output file.

The steps, each recorded in the evidence (``evidence.py``):

1. file rules: metadata files never leave; size limit; allowed types (CSV is checked,
   documents and images go to an output checker, anything else fails);
2. the sidecar metadata of the outputs API, if any, and that it matches the file's hash;
3. identifier columns (``identifiers.py``);
4. what the file is: a table or regression described by its metadata, or by shape
   (``classify.py``); row-level files fail;
5. the table's rules: counts (``counts.py``) or statistics (``statistics.py``); regressions'
   residual degrees of freedom;
6. the safe version (redacted, rounded, totals recomputed) and the evidence record are written
   to the output folder. The safe version is what the human output checkers review.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carelight.sde.disclosure.classify import classify_frame
from carelight.sde.disclosure.counts import check_count_table
from carelight.sde.disclosure.evidence import Evidence, read_evidence
from carelight.sde.disclosure.identifiers import find_identifier_columns
from carelight.sde.disclosure.metadata import (
    MetadataError,
    RegressionMetadata,
    TableMetadata,
    file_sha256,
    is_sidecar,
    read_sidecar,
)
from carelight.sde.disclosure.policy import Policy, load_policy
from carelight.sde.disclosure.published import PublishedTable
from carelight.sde.disclosure.statistics import check_statistic_table
from carelight.sde.disclosure.tables import (
    Table,
    TableError,
    read_csv_strings,
    render,
    table_from_frame,
    table_from_metadata,
)

EVIDENCE_SUFFIX = ".evidence.json"


@dataclass
class CheckResult:
    """The evidence record, and the safe version for the output checkers (None if the file
    has no releasable version)."""

    evidence: Evidence
    evidence_path: Path
    safe_path: Path | None
    published: PublishedTable | None = None

    @property
    def outcome(self) -> str:
        return self.evidence.outcome


Released = CheckResult | PublishedTable | dict[str, Any] | str | Path


def released_tables(items: Iterable[Released]) -> list[PublishedTable]:
    """The project's released tables, from check results, evidence records or their files."""
    out: list[PublishedTable] = []
    for item in items:
        if isinstance(item, PublishedTable):
            out.append(item)
            continue
        if isinstance(item, CheckResult):
            if item.published is not None:
                out.append(item.published)
            continue
        body = item if isinstance(item, dict) else read_evidence(Path(item))
        if "released_table" in body or body.get("schema"):
            table = body.get("released_table")
        else:
            table = body
        if table:
            out.append(PublishedTable.from_dict(table))
    return out


def _file_info(path: Path) -> dict[str, Any]:
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def check_output(
    path: str | Path,
    policy: str | Path | Policy | None = None,
    *,
    released: Iterable[Released] = (),
    out_dir: str | Path | None = None,
) -> CheckResult:
    """Check one output file; write its safe version and evidence record into ``out_dir``
    (default: a ``checked`` folder beside the file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no output file at {path}")
    pol = load_policy(policy)
    out = Path(out_dir) if out_dir is not None else path.parent / "checked"
    out.mkdir(parents=True, exist_ok=True)
    evidence = Evidence(
        file=_file_info(path),
        policy={"name": pol.name, "version": pol.version, "parameters": pol.parameters()},
    )
    evidence_path = out / (path.name + EVIDENCE_SUFFIX)
    known = list(released_tables(released))
    try:
        safe_text, published = _check(path, pol, evidence, known)
    except Exception as exc:  # fail closed: an unexpected error never lets a file through
        evidence.escalate(
            "fail",
            f"the checker could not check this file ({type(exc).__name__}); an administrator "
            "must look (the message is left out: it may quote the file)",
        )
        safe_text, published = None, None
    safe_path = None
    if safe_text is not None and evidence.outcome != "fail":
        safe_path = out / path.name
        safe_path.write_text(safe_text, encoding="utf-8")
        evidence.safe_file = _file_info(safe_path)
        if published is not None:
            evidence.released_table = published.to_dict()
    evidence.write(evidence_path)
    return CheckResult(
        evidence=evidence,
        evidence_path=evidence_path,
        safe_path=safe_path,
        published=published if safe_path is not None else None,
    )


def check_outputs(
    folder: str | Path,
    policy: str | Path | Policy | None = None,
    *,
    released: Iterable[Released] = (),
    out_dir: str | Path | None = None,
) -> list[CheckResult]:
    """Check every output a job wrote (sidecar metadata files are read, not checked).

    Files are checked in name order and each checked table joins the released ones for the
    files after it: outputs of one job are released together, so a table must be safe beside
    its siblings as well as beside the project's earlier releases."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"no output folder at {folder}")
    out = Path(out_dir) if out_dir is not None else folder / "checked"
    pol = load_policy(policy)
    known: list[Released] = list(released)
    results = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not is_sidecar(p)):
        result = check_output(path, pol, released=known, out_dir=out)
        if result.published is not None:
            known.append(result.published)
        results.append(result)
    return results


def _check(
    path: Path, policy: Policy, evidence: Evidence, released: list[PublishedTable]
) -> tuple[str | None, PublishedTable | None]:
    files = evidence.rule("file", "file type, size and kind")
    suffix = path.suffix.lower()
    if is_sidecar(path) or path.name.endswith(EVIDENCE_SUFFIX):
        files.hit("flagged", "a metadata or evidence file, which is never released")
        evidence.classification = {"kind": "metadata", "how": "name"}
        evidence.escalate("fail", "metadata files are for the checker and never leave")
        return None, None
    size = path.stat().st_size
    if size > policy.max_file_bytes:
        files.hit("flagged", f"{size} bytes, over the limit of {policy.max_file_bytes}")
        evidence.classification = {"kind": "too-big", "how": "size"}
        evidence.escalate("fail", f"the file is larger than {policy.max_file_bytes} bytes")
        return None, None
    if suffix in policy.review_only_types:
        files.hit("flagged", f"{suffix} files cannot be checked automatically")
        evidence.classification = {"kind": "review-only", "how": "file type"}
        evidence.escalate("needs-review", f"a {suffix} file: an output checker must review it")
        return None, None
    if suffix not in policy.checkable_types:
        allowed = [*policy.checkable_types, *policy.review_only_types]
        files.hit("flagged", f"{suffix or 'no extension'} is not an allowed output type")
        evidence.classification = {"kind": "disallowed-type", "how": "file type"}
        evidence.escalate(
            "fail",
            f"{suffix or 'files without an extension'} may not be "
            f"released; allowed: {', '.join(allowed)}",
        )
        return None, None

    try:
        sidecar = read_sidecar(path)
    except MetadataError as exc:
        evidence.escalate(
            "needs-review", f"the metadata file is unusable ({exc}); checked by shape instead"
        )
        sidecar = None
    if sidecar is not None:
        evidence.file["metadata"] = {"name": sidecar.path.name, "sha256": file_sha256(sidecar.path)}
        if sidecar.file_sha256 != evidence.file["sha256"]:
            evidence.escalate(
                "needs-review",
                "the file changed after the outputs API wrote it; its metadata was ignored",
            )
            sidecar = None

    try:
        frame = read_csv_strings(path)
    except TableError as exc:
        evidence.classification = {"kind": "unreadable", "how": "parse"}
        evidence.escalate("fail", str(exc))
        return None, None
    if len(frame) > policy.max_table_rows:
        files.hit("flagged", f"{len(frame)} rows, over the limit of {policy.max_table_rows}")
        evidence.classification = {"kind": "too-big", "how": "rows"}
        evidence.escalate(
            "fail",
            f"{len(frame)} rows is too many for an aggregate table "
            f"(at most {policy.max_table_rows})",
        )
        return None, None

    meta = sidecar.meta if sidecar is not None else None
    value_cols: set[str] = set()
    headers: list[str] = []
    if isinstance(meta, TableMetadata):
        if meta.columns:
            value_cols = {c for c in frame.columns if c not in meta.index}
            headers = sorted(value_cols)
        else:
            value_cols = {meta.value_column}
    elif isinstance(meta, RegressionMetadata):
        value_cols = {c for c in frame.columns if c != frame.columns[0]}
    ids = evidence.rule("identifiers", "no column may look like a patient identifier or pseudonym")
    found = find_identifier_columns(
        {str(c): frame[c].tolist() for c in frame.columns if c not in value_cols},
        headers=headers,
    )
    for f in found:
        ids.hit("flagged", f.reason, {"column": f.column})
    if found:
        evidence.classification = {"kind": "row-level", "how": "identifier columns"}
        evidence.escalate(
            "fail", "the file has identifier-like column(s): " + ", ".join(f.column for f in found)
        )
        return None, None

    try:
        if isinstance(meta, RegressionMetadata):
            evidence.classification = {"kind": "regression", "how": "metadata", "model": meta.model}
            return _check_regression(path, meta, policy, evidence), None
        if isinstance(meta, TableMetadata):
            table = table_from_metadata(path, meta)
            how = "metadata"
        else:
            shape = classify_frame(frame)
            evidence.classification = {"kind": shape.shape, "how": "shape", "reason": shape.reason}
            if shape.shape == "row-level":
                evidence.escalate("fail", f"row-level output: {shape.reason}")
                return None, None
            if shape.shape != "count-table":
                evidence.escalate("needs-review", shape.reason)
                return None, None
            table = table_from_frame(
                frame,
                statistic="count",
                index=shape.index,
                columns=(),
                value_column=shape.value_column,
                margins=False,
            )
            table.margins = table.had_totals
            how = "shape"
        evidence.classification = evidence.classification or {}
        evidence.classification.update(
            kind=f"{table.statistic}-table",
            how=how,
            dims=list(table.dims),
            layout="wide" if table.wide else "long",
        )
        return _check_table(table, path, policy, evidence, released)
    except TableError as exc:
        evidence.escalate("fail", f"the table cannot be checked: {exc}")
        return None, None


def _check_table(
    table: Table, path: Path, policy: Policy, evidence: Evidence, released: list[PublishedTable]
) -> tuple[str, PublishedTable | None]:
    if table.is_count:
        result = check_count_table(table, policy, evidence, name=path.name, released=released)
        shown, published = result.shown, result.published
        if not result.protected and evidence.outcome != "fail":
            evidence.escalate("needs-review", "secondary suppression could not be confirmed")
        if evidence.outcome != "fail" and published is None:
            evidence.reasons.append(
                "a table of event counts is not joined with the project's other tables"
            )
    else:
        shown = check_statistic_table(table, policy, evidence)
        published = None
    changed = any(r.hits and r.rule not in ("file",) for r in evidence.rules)
    if changed:
        evidence.escalate("pass-with-changes", "cells were redacted, rounded or recomputed")
    return render(table, shown), published


def _check_regression(
    path: Path, meta: RegressionMetadata, policy: Policy, evidence: Evidence
) -> str | None:
    rule = evidence.rule(
        "residual-df",
        f"a regression needs at least {policy.min_residual_df} residual degrees of freedom",
    )
    df = meta.residual_df
    if math.isnan(df) or df < policy.min_residual_df:
        shown = "unknown" if math.isnan(df) else f"{df:g}"
        rule.hit("flagged", f"{shown} residual degrees of freedom")
        evidence.escalate(
            "fail",
            f"the regression has {shown} residual degrees of freedom, fewer than "
            f"{policy.min_residual_df}: it comes too close to the individual records",
        )
        return None
    return path.read_text(encoding="utf-8")
