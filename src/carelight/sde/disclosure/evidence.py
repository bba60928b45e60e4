"""The evidence record: what the checker did to one file and why, as JSON.

One record per checked file: the file's hash, the policy (name, version, every parameter),
how the file was classified, each rule applied with the cells it hit and what was done
(redacted, rounded, suppressed as secondary, flagged), the audit of the redacted cells, and
the outcome. The record holds no unpublished value: a redacted cell is named by its labels,
never by its count, and no contribution is copied from the metadata. It is for the output
checkers and the project's audit trail, not for publication with the release: it tells cells
redacted by a rule from cells suppressed to protect them, and the audit assumes the public
cannot (docs/disclosure-control.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from carelight import __version__

SCHEMA = "carelight.sdc.evidence/1"

Outcome = Literal["pass", "pass-with-changes", "needs-review", "fail"]
_RANK: dict[str, int] = {"pass": 0, "pass-with-changes": 1, "needs-review": 2, "fail": 3}
Action = Literal["redacted", "rounded", "suppressed-secondary", "recomputed", "flagged", "checked"]


@dataclass
class Hit:
    """One cell (or the whole file, ``cell`` None) a rule hit, and what was done."""

    action: str
    detail: str
    cell: dict[str, str] | None = None


@dataclass
class RuleRecord:
    rule: str
    description: str
    hits: list[Hit] = field(default_factory=list)

    def hit(self, action: str, detail: str, cell: dict[str, str] | None = None) -> None:
        self.hits.append(Hit(action=action, detail=detail, cell=cell))


@dataclass
class Evidence:
    file: dict[str, Any]
    policy: dict[str, Any]
    classification: dict[str, Any] = field(default_factory=dict)
    rules: list[RuleRecord] = field(default_factory=list)
    outcome: Outcome = "pass"
    reasons: list[str] = field(default_factory=list)
    safe_file: dict[str, Any] | None = None
    audit: dict[str, Any] | None = None
    released_table: dict[str, Any] | None = None
    checked_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    checker: dict[str, str] = field(
        default_factory=lambda: {"name": "carelight.sde.disclosure", "version": __version__}
    )

    def rule(self, name: str, description: str) -> RuleRecord:
        record = RuleRecord(rule=name, description=description)
        self.rules.append(record)
        return record

    def escalate(self, outcome: Outcome, reason: str) -> None:
        """Record a reason; the outcome only ever moves towards ``fail``."""
        self.reasons.append(reason)
        if _RANK[outcome] > _RANK[self.outcome]:
            self.outcome = outcome

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        return {"schema": SCHEMA, **body}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False)

    def write(self, path: Path) -> Path:
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path


def read_evidence(path: Path) -> dict[str, Any]:
    body = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(body, dict) or body.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a {SCHEMA} record")
    return body
