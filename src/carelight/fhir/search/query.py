"""A FHIR search query, parsed and checked against the search-parameter registry.

``parse_search(resource_type, pairs)`` turns the query's (name, value) pairs into a
:class:`SearchQuery`. Anything unknown or unsupported is a 400 that names the parameter:
silently ignoring a criterion would return more data than the caller asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from carelight.fhir import searchparams
from carelight.fhir.errors import bad_request
from carelight.fhir.resource_types import SUPPORTED
from carelight.fhir.search.values import bounded_int, split_escaped
from carelight.fhir.searchparams import SearchParam

DEFAULT_COUNT = 50
MAX_COUNT = 1000

MODIFIERS = {
    "token": {"not", "text", "missing"},
    "string": {"exact", "contains", "missing"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "reference": {"missing"},  # plus ":<Type>"
    "uri": {"below", "above", "missing"},
}
SUMMARY_VALUES = ("true", "false", "count", "data", "text")
TOTAL_VALUES = ("none", "estimate", "accurate")
# Result parameters we accept; everything else starting with "_" must be a search parameter.
IGNORED = {"_format", "_pretty"}


@dataclass
class Criterion:
    """One search parameter occurrence: values are ORed; criteria are ANDed."""

    param: SearchParam
    modifier: str | None
    values: list[str]
    target_type: str | None = None  # reference ":Type" modifier or chain type
    chain: Criterion | None = None  # subject:Patient.name=... → chain on the target
    has: HasCriterion | None = None


@dataclass
class HasCriterion:
    """``_has:Observation:patient:code=…`` — resources referenced by matching Observations."""

    source_type: str
    reference_param: SearchParam
    criterion: Criterion


@dataclass(frozen=True)
class Include:
    source_type: str
    param: SearchParam | None  # None for "*"
    target_type: str | None
    iterate: bool


@dataclass
class SearchQuery:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    offset: int = 0
    sort: list[tuple[SearchParam, bool]] = field(default_factory=list)  # (param, descending)
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] | None = None
    total: str | None = None


def _param(resource_type: str, name: str) -> SearchParam:
    param = searchparams.get(resource_type, name)
    if param is None:
        known = ", ".join(sorted(searchparams.params_for(resource_type)))
        raise bad_request(
            f"Unknown search parameter '{name}' for resource type {resource_type}. "
            f"Supported parameters: {known}."
        )
    if param.type in ("composite", "special"):
        raise bad_request(
            f"Search parameter '{name}' ({param.type}) is not supported by this server."
        )
    return param


def _reference_target(param: SearchParam, target_type: str | None, chained_name: str) -> str:
    if target_type:
        if param.targets and target_type not in param.targets:
            raise bad_request(
                f"Search parameter '{param.name}' cannot refer to {target_type}; "
                f"it refers to {', '.join(param.targets)}."
            )
        return target_type
    candidates = [t for t in param.targets if t in SUPPORTED]
    if len(candidates) == 1:
        return candidates[0]
    raise bad_request(
        f"Chained search '{param.name}.{chained_name}' is ambiguous: name the target type, "
        f"e.g. '{param.name}:{(candidates or ['Patient'])[0]}.{chained_name}'."
    )


def parse_criterion(
    resource_type: str, key: str, value: str, *, allow_chain: bool = True
) -> Criterion:
    if key.startswith("_has:"):
        return _parse_has(resource_type, key, value)
    name, _, chained = key.partition(".")
    name, _, modifier = name.partition(":")
    param = _param(resource_type, name)
    values = split_escaped(value, ",")
    if chained:
        if param.type != "reference":
            raise bad_request(
                f"Only reference parameters can be chained; '{name}' is a {param.type}."
            )
        if not allow_chain or "." in chained:
            raise bad_request(f"'{key}': only one level of chaining is supported.")
        target = _reference_target(param, modifier or None, chained)
        if target not in SUPPORTED:
            raise bad_request(f"'{key}': resource type {target} is not supported.")
        inner = parse_criterion(target, chained, value, allow_chain=False)
        return Criterion(param, None, [], target_type=target, chain=inner)
    target_type = None
    if modifier:
        if param.type == "reference" and modifier[0].isupper():
            target_type = _reference_target(param, modifier, "")
            modifier = ""
        elif modifier not in MODIFIERS.get(param.type, set()):
            allowed = ", ".join(f":{m}" for m in sorted(MODIFIERS.get(param.type, set())))
            raise bad_request(
                f"Modifier ':{modifier}' is not supported for '{name}' ({param.type}); "
                f"supported: {allowed}."
            )
    if modifier == "missing" and value not in ("true", "false"):
        raise bad_request(f"'{key}' takes true or false, not '{value}'.")
    if any(v == "" for v in values) and modifier != "missing":
        raise bad_request(f"Search parameter '{key}' has an empty value.")
    return Criterion(param, modifier or None, values, target_type=target_type)


def _parse_has(resource_type: str, key: str, value: str) -> Criterion:
    parts = key.split(":", 3)
    if len(parts) != 4 or not all(parts[1:]):
        raise bad_request(f"'{key}': use _has:Type:reference-parameter:search-parameter=value.")
    _, source_type, ref_name, rest = parts
    if source_type not in SUPPORTED:
        raise bad_request(f"'{key}': resource type {source_type} is not supported.")
    ref = _param(source_type, ref_name)
    if ref.type != "reference":
        raise bad_request(f"'{key}': {ref_name} is not a reference parameter of {source_type}.")
    if ref.targets and resource_type not in ref.targets:
        raise bad_request(f"'{key}': {source_type}.{ref_name} does not refer to {resource_type}.")
    inner = parse_criterion(source_type, rest, value)
    has = HasCriterion(source_type, ref, inner)
    return Criterion(ref, None, [], has=has)


def _parse_include(resource_type: str, key: str, value: str, reverse: bool) -> Include:
    iterate = key.endswith(":iterate") or key.endswith(":recurse")
    if value == "*":
        return Include(resource_type, None, None, iterate)
    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise bad_request(f"{key}={value}: use {key}=Type:search-parameter[:TargetType].")
    source_type, name = parts[0], parts[1]
    if source_type not in SUPPORTED:
        raise bad_request(f"{key}={value}: resource type {source_type} is not supported.")
    if not reverse and source_type != resource_type and not iterate:
        raise bad_request(
            f"{key}={value}: _include must start from {resource_type} (or use {key}:iterate)."
        )
    param = _param(source_type, name)
    if param.type != "reference":
        raise bad_request(f"{key}={value}: {name} is not a reference parameter.")
    target = parts[2] if len(parts) == 3 else None
    if target and param.targets and target not in param.targets:
        raise bad_request(f"{key}={value}: {name} cannot refer to {target}.")
    return Include(source_type, param, target, iterate)


def parse_search(resource_type: str, pairs: list[tuple[str, str]]) -> SearchQuery:
    q = SearchQuery(resource_type)
    for key, value in pairs:
        base = key.split(":", 1)[0]
        if base in IGNORED:
            if base == "_format" and "json" not in value:
                raise bad_request("Only JSON is supported (_format=json).")
            continue
        if base == "_count":
            q.count = bounded_int(key, value, 0, MAX_COUNT)
        elif base == "_offset":
            q.offset = bounded_int(key, value, 0)
        elif base == "_sort":
            for item in value.split(","):
                desc = item.startswith("-")
                name = item[1:] if desc else item
                param = _param(resource_type, name)
                q.sort.append((param, desc))
        elif base == "_include":
            q.includes.append(_parse_include(resource_type, key, value, reverse=False))
        elif base == "_revinclude":
            q.revincludes.append(_parse_include(resource_type, key, value, reverse=True))
        elif base == "_summary":
            if value not in SUMMARY_VALUES:
                raise bad_request(f"_summary must be one of {', '.join(SUMMARY_VALUES)}.")
            q.summary = value
        elif base == "_elements":
            q.elements = [e.strip() for e in value.split(",") if e.strip()]
        elif base == "_total":
            if value not in TOTAL_VALUES:
                raise bad_request(f"_total must be one of {', '.join(TOTAL_VALUES)}.")
            q.total = value
        elif base in (
            "_contained",
            "_containedType",
            "_text",
            "_content",
            "_filter",
            "_query",
            "_list",
        ):
            raise bad_request(f"Search parameter '{base}' is not supported by this server.")
        else:
            q.criteria.append(parse_criterion(resource_type, key, value))
    return q
