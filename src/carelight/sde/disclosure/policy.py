"""Disclosure-control policies: a name, a version and the parameters every rule reads.

Two are built in. ``nhs-england`` (the default) follows the rules OpenSAFELY applies to NHS
data in England: counts of 7 or fewer are redacted, every other count is rounded to the nearest
5, and totals are recomputed from the rounded cells. ``acro`` follows the defaults of ACRO, the
SACRO project's automatic checker: fewer than 10 contributors is disclosive, zeros are
disclosive, dominance (n=2, k=0.9) and p-ratio (p=0.1) for sums and means, and at least 10
residual degrees of freedom for a regression. A deployment picks one by name, or loads a named
policy with changed parameters from a TOML or JSON file (``CARELIGHT_SDC_POLICY`` names either).
See docs/disclosure-control.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Margins = Literal["recompute", "true"]

ENV_VAR = "CARELIGHT_SDC_POLICY"


class PolicyError(ValueError):
    """A policy name, file or parameter that cannot be used."""


@dataclass(frozen=True)
class Policy:
    """The parameters of one disclosure-control policy.

    ``min_count`` is the smallest number of contributors a released cell may describe (so
    "7 or fewer redacted" is ``min_count = 8``). ``rounding_base`` 0 means counts are not
    rounded. ``margins`` says what a published total is: ``recompute`` (the sum of the released,
    rounded cells, so it says nothing about redacted ones) or ``true`` (the total of the data,
    itself checked like a cell, with secondary suppression protecting the redacted cells).
    """

    name: str
    version: str
    min_count: int
    zeros_disclosive: bool
    rounding_base: int = 0
    margins: Margins = "recompute"
    dominance_n: int = 0
    dominance_k: float = 0.9
    p_ratio: float = 0.0
    same_values_disclosive: bool = False
    min_residual_df: int = 10
    max_file_bytes: int = 5_000_000
    max_table_rows: int = 5_000
    checkable_types: tuple[str, ...] = (".csv",)
    review_only_types: tuple[str, ...] = (".txt", ".md", ".png", ".svg", ".pdf", ".html")
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.min_count < 1:
            raise PolicyError(f"min_count must be at least 1, not {self.min_count}")
        if self.rounding_base < 0:
            raise PolicyError(
                f"rounding_base must be 0 (no rounding) or more, not {self.rounding_base}"
            )
        if self.margins not in ("recompute", "true"):
            raise PolicyError(f"margins must be 'recompute' or 'true', not {self.margins!r}")
        if self.dominance_n < 0 or not 0 < self.dominance_k <= 1:
            raise PolicyError("dominance_n must be 0 (off) or more and dominance_k in (0, 1]")
        if not 0 <= self.p_ratio < 1:
            raise PolicyError(f"p_ratio must be in [0, 1), not {self.p_ratio}")

    @property
    def primary_range(self) -> tuple[int, int]:
        """The counts that primary suppression redacts, as an interval an attacker knows."""
        return (0 if self.zeros_disclosive else 1, self.min_count - 1)

    def parameters(self) -> dict[str, Any]:
        """Every parameter, for the evidence record."""
        out = dataclasses.asdict(self)
        for key in ("name", "version", "description"):
            out.pop(key)
        out["checkable_types"] = list(self.checkable_types)
        out["review_only_types"] = list(self.review_only_types)
        return out


NHS_ENGLAND = Policy(
    name="nhs-england",
    version="1",
    min_count=8,
    zeros_disclosive=False,
    rounding_base=5,
    margins="recompute",
    dominance_n=0,
    p_ratio=0.0,
    min_residual_df=10,
    description=(
        "NHS England / OpenSAFELY: counts of 1 to 7 redacted, then every count rounded to the "
        "nearest 5; totals recomputed from the rounded cells."
    ),
)

ACRO = Policy(
    name="acro",
    version="1",
    min_count=10,
    zeros_disclosive=True,
    rounding_base=0,
    margins="true",
    dominance_n=2,
    dominance_k=0.9,
    p_ratio=0.1,
    same_values_disclosive=True,
    min_residual_df=10,
    description=(
        "ACRO (SACRO) defaults: threshold 10, zeros disclosive, dominance n=2 k=0.9, "
        "p-ratio 0.1, residual degrees of freedom at least 10; true totals with secondary "
        "suppression."
    ),
)

BUILT_IN: dict[str, Policy] = {p.name: p for p in (NHS_ENGLAND, ACRO)}
DEFAULT = NHS_ENGLAND


def get_policy(name: str, **overrides: Any) -> Policy:
    """A built-in policy by name, with any parameters changed (the version gets a ``+local``)."""
    try:
        base = BUILT_IN[name]
    except KeyError:
        raise PolicyError(
            f"unknown disclosure-control policy {name!r}; built in: {', '.join(BUILT_IN)}"
        ) from None
    if not overrides:
        return base
    known = {f.name for f in dataclasses.fields(Policy)} - {"name", "version", "description"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise PolicyError(f"unknown policy parameter(s) {unknown}; known: {sorted(known)}")
    for key in ("checkable_types", "review_only_types"):
        if key in overrides:
            overrides[key] = tuple(overrides[key])
    return dataclasses.replace(base, version=f"{base.version}+local", **overrides)


def load_policy(source: str | Path | Policy | None = None) -> Policy:
    """Resolve a policy from a Policy, a built-in name, a TOML/JSON file, or the environment.

    A file holds ``policy = "acro"`` (or ``"name"``) and an optional ``[parameters]`` table;
    JSON the same keys. With no source, ``CARELIGHT_SDC_POLICY`` is read; unset, the default
    (``nhs-england``).
    """
    if isinstance(source, Policy):
        return source
    if source is None:
        source = os.environ.get(ENV_VAR, "").strip() or DEFAULT.name
    text = str(source)
    if text in BUILT_IN:
        return BUILT_IN[text]
    path = Path(text)
    if not path.is_file():
        raise PolicyError(
            f"{text!r} is neither a built-in policy ({', '.join(BUILT_IN)}) nor a policy file"
        )
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"policy file {path} must hold a table / object")
    name = data.get("policy") or data.get("name")
    if not isinstance(name, str):
        raise PolicyError(f'policy file {path} must say which policy it adjusts: policy = "acro"')
    params = data.get("parameters", {})
    if not isinstance(params, dict):
        raise PolicyError(f"'parameters' in {path} must be a table / object")
    return get_policy(name, **params)
