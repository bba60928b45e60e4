"""The disclosure-control page documents every policy parameter and every rule name the
evidence records can hold."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from carelight.sde.disclosure import check, counts, secondary, statistics
from carelight.sde.disclosure.policy import Policy

DOC = Path(__file__).resolve().parents[3] / "docs" / "disclosure-control.md"


def test_every_policy_parameter_is_documented():
    text = DOC.read_text()
    for f in dataclasses.fields(Policy):
        if f.name in ("name", "version", "description"):
            continue
        assert f"`{f.name}`" in text, f"{f.name} is not in {DOC.name}"


def test_every_rule_name_is_documented():
    text = DOC.read_text()
    names = set()
    for module in (check, counts, secondary, statistics):
        source = Path(module.__file__).read_text()
        names |= set(re.findall(r'\.rule\(\s*"([a-z\-]+)"', source))
    assert {"threshold", "dominance", "residual-df"} <= names
    for name in names:
        assert f"`{name}`" in text, f"rule {name!r} is not in {DOC.name}"
