"""A tiny path evaluator for search-index extraction: the subset of FHIRPath Carelight needs.

This is *not* a FHIRPath engine. Search parameters keep their R4 FHIRPath text in
``SearchParam.expression`` (for documentation and the CapabilityStatement); what extraction
walks is ``SearchParam.paths``, written in the small grammar below and compiled once, at
import time, into tuples of steps.

Path grammar
------------
A path starts with the resource type (or ``Resource``), which is dropped, then steps::

    Patient.name.given                      child elements (lists are flattened)
    Observation.effective[x]                choice element: the JSON keys effectiveDateTime,
                                            effectivePeriod, ... for the value types that make
                                            sense for the parameter type (see CHOICE_SUFFIXES)
    Observation.valueQuantity               one type of a choice: just name the JSON key
    Patient.telecom.where(system='phone')   keep only items whose field equals the literal
    Observation.subject.where(resolve() is Patient)
                                            keep only References whose target type is Patient
                                            (read from the reference string, never resolved)
    Patient.deceased[x].notFalse()          Carelight extension: the whole collection becomes
                                            one boolean, true when some value is not ``false``
                                            (R4: ``Patient.deceased.exists() and
                                            Patient.deceased != false``); a path ending in
                                            notFalse() is evaluated on every resource

:func:`paths_from_expression` turns the simple R4 expressions (dotted paths, ``|`` unions,
``(X as T)``, ``X.as(T)``, the two ``where`` forms) into this grammar, so most registry rows
only carry their R4 expression.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

# Step opcodes.
KEY = 0  # (KEY, name)
CHOICE = 1  # (CHOICE, (candidate keys, ...), element name)
WHERE = 2  # (WHERE, field, literal)
REFTYPE = 3  # (REFTYPE, resource type)
NOTFALSE = 4  # (NOTFALSE,)

Step = tuple

# The choice-type suffixes worth reading for each search-parameter type. A choice element is
# expanded into the JSON keys ``<name><Suffix>``; other value types (Age, Range, string onset
# ...) are not meaningful for the parameter type and are never looked at.
CHOICE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "date": ("DateTime", "Date", "Instant", "Period", "Timing"),
    "token": (
        "CodeableConcept",
        "Coding",
        "Code",
        "Boolean",
        "Identifier",
        "String",
        "Id",
        "Uri",
    ),
    "string": ("String", "Markdown", "HumanName", "Address"),
    "number": ("Decimal", "Integer", "PositiveInt", "UnsignedInt"),
    "quantity": ("Quantity", "Age", "Duration", "Money", "Distance", "Count", "SimpleQuantity"),
    "reference": ("Reference", "Canonical", "Uri"),
    "uri": ("Uri", "Url", "Canonical"),
}
# Every R4 data type a choice element can take (used by notFalse(), which looks at all of them).
ALL_SUFFIXES: tuple[str, ...] = tuple(
    dict.fromkeys(
        (
            "Base64Binary",
            "Boolean",
            "Canonical",
            "Code",
            "Date",
            "DateTime",
            "Decimal",
            "Id",
            "Instant",
            "Integer",
            "Markdown",
            "Oid",
            "PositiveInt",
            "String",
            "Time",
            "UnsignedInt",
            "Uri",
            "Url",
            "Uuid",
            "Address",
            "Age",
            "Annotation",
            "Attachment",
            "CodeableConcept",
            "Coding",
            "ContactPoint",
            "Count",
            "Distance",
            "Duration",
            "HumanName",
            "Identifier",
            "Money",
            "Period",
            "Quantity",
            "Range",
            "Ratio",
            "Reference",
            "SampledData",
            "Signature",
            "Timing",
            "Expression",
            "Dosage",
            "Meta",
        )
    )
)


class CompiledPath(NamedTuple):
    source: str  # the path as written
    steps: tuple[Step, ...]  # from the resource root

    @property
    def always(self) -> bool:
        """True when the path yields a value even for a resource without the element."""
        return any(step[0] == NOTFALSE for step in self.steps)

    @property
    def first_keys(self) -> tuple[str, ...]:
        """The top-level JSON keys that can start this path."""
        first = self.steps[0]
        if first[0] == KEY:
            return (first[1],)
        if first[0] == CHOICE:
            return first[1]
        return ()

    @property
    def last_key(self) -> str | None:
        for step in reversed(self.steps):
            if step[0] == KEY:
                return step[1]
            if step[0] == CHOICE:
                return None
        return None


_ROOT = re.compile(r"[A-Z][A-Za-z]*")
_STEP = re.compile(
    r"""\.(?:
        where\(\s*resolve\(\)\s+is\s+(?P<rtype>[A-Z][A-Za-z]*)\s*\)
      | where\(\s*(?P<wfield>[A-Za-z]\w*)\s*=\s*'(?P<wvalue>[^']*)'\s*\)
      | (?P<notfalse>notFalse)\(\)
      | (?P<name>[A-Za-z_]\w*)(?P<choice>\[x\])?
    )""",
    re.VERBOSE,
)


def compile_path(path: str, param_type: str) -> CompiledPath:
    """Compile one path of the grammar above; raises ValueError on anything else."""
    text = path.strip()
    root = _ROOT.match(text)
    if root is None:
        raise ValueError(f"path must start with a resource type: {path!r}")
    pos = root.end()
    steps: list[Step] = []
    suffixes = CHOICE_SUFFIXES.get(param_type, ())
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            raise ValueError(f"unsupported path syntax at {text[pos:]!r} in {path!r}")
        pos = m.end()
        if m.group("rtype"):
            steps.append((REFTYPE, m.group("rtype")))
        elif m.group("wfield"):
            steps.append((WHERE, m.group("wfield"), m.group("wvalue")))
        elif m.group("notfalse"):
            if steps and steps[-1][0] == CHOICE:
                # notFalse() looks at every type the choice can take.
                name = steps[-1][2]
                steps[-1] = (CHOICE, tuple(name + s for s in ALL_SUFFIXES), name)
            steps.append((NOTFALSE,))
        elif m.group("choice"):
            if not suffixes and not text.endswith(".notFalse()"):
                raise ValueError(f"no choice types for a {param_type} parameter: {path!r}")
            name = m.group("name")
            steps.append((CHOICE, tuple(name + s for s in suffixes), name))
        else:
            steps.append((KEY, m.group("name")))
    if not steps:
        raise ValueError(f"path has no element: {path!r}")
    if steps[0][0] not in (KEY, CHOICE):
        raise ValueError(f"path must start with an element: {path!r}")
    if any(s[0] == NOTFALSE for s in steps[:-1]):
        raise ValueError(f"notFalse() must end the path: {path!r}")
    return CompiledPath(path, tuple(steps))


def reference_type(reference: object) -> str | None:
    """The target type named by a Reference.reference string (relative or absolute URL)."""
    if type(reference) is not str or not reference or reference[0] == "#":
        return None
    parts = reference.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2:
        return None
    candidate = parts[-2]
    return candidate if _ROOT.fullmatch(candidate) else None


def walk(values: list[Any], steps: tuple[Step, ...]) -> list[Any]:
    """Apply ``steps`` to a collection; JSON arrays are flattened, nulls dropped."""
    for step in steps:
        op = step[0]
        out: list[Any] = []
        if op == KEY:
            key = step[1]
            for item in values:
                if type(item) is dict:
                    v = item.get(key)
                    if v is not None:
                        if type(v) is list:
                            out.extend(v)
                        else:
                            out.append(v)
        elif op == CHOICE:
            keys = step[1]
            for item in values:
                if type(item) is dict:
                    for key in keys:
                        v = item.get(key)
                        if v is not None:
                            if type(v) is list:
                                out.extend(v)
                            else:
                                out.append(v)
        elif op == WHERE:
            field, literal = step[1], step[2]
            out = [i for i in values if type(i) is dict and i.get(field) == literal]
        elif op == REFTYPE:
            rtype = step[1]
            out = [
                i for i in values if type(i) is dict and reference_type(i.get("reference")) == rtype
            ]
        else:  # NOTFALSE
            out = [any(v is not False for v in values)]
        values = out
    return values


def evaluate(resource: dict, path: CompiledPath) -> list[Any]:
    """Evaluate a compiled path against a resource (a parsed JSON dict)."""
    return walk([resource], path.steps)


_AS_PAREN = re.compile(r"\(\s*(?P<path>[^()]+?)\s+as\s+(?P<type>\w+)\s*\)")
_AS_BARE = re.compile(r"(?P<path>[^()|]+?)\s+as\s+(?P<type>\w+)")
_AS_CALL = re.compile(r"(?P<path>[A-Za-z_.\[\]]+)\.as\((?P<type>\w+)\)")


def _as_key(m: re.Match[str]) -> str:
    t = m.group("type")
    return m.group("path").strip() + t[0].upper() + t[1:]


def paths_from_expression(expression: str) -> tuple[str, ...]:
    """Translate a simple R4 search expression into paths; ValueError when it is not simple."""
    text = _AS_PAREN.sub(_as_key, expression)
    text = _AS_CALL.sub(_as_key, text)
    parts = []
    for raw in _split_union(text):
        part = _AS_BARE.sub(_as_key, raw.strip())
        if part.startswith("(") and part.endswith(")"):
            part = part[1:-1].strip()
        parts.append(part)
    for part in parts:
        compile_path(part, "token")  # syntax check only; choice steps are not used here
    return tuple(parts)


def _split_union(text: str) -> list[str]:
    """Split on top-level ``|`` (not inside parentheses or quotes)."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts
