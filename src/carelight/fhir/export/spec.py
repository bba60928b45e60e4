"""What an export asks for: the kick-off parameters, checked up front, as an :class:`ExportSpec`.

Every problem is a 400 at kick-off, never a silent omission: ignoring ``patient`` or
``_elements`` would hand over more data than was asked for. Parameters the Bulk Data IG
defines but Carelight does not implement are refused by name (the IG's ``handling=strict``
behaviour, which is the only one offered).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import orjson

from carelight.fhir.bindings import R4_RESOURCE_TYPES
from carelight.fhir.compartment import PATIENT_COMPARTMENT
from carelight.fhir.errors import bad_request
from carelight.fhir.resource_types import SUPPORTED, SUPPORTED_TYPES
from carelight.fhir.search.execute import parse_query_string
from carelight.fhir.search.query import parse_search
from carelight.fhir.search.values import parse_date_range

KINDS = ("system", "patient", "group")
OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
# Patient- and Group-level exports hold the Patients and their compartments' resources.
COMPARTMENT_TYPES: tuple[str, ...] = tuple(
    t for t in SUPPORTED_TYPES if t == "Patient" or PATIENT_COMPARTMENT.get(t)
)
# Search result parameters make no sense inside a _typeFilter: it selects, it does not shape.
_RESULT_PARAMS = (
    "_count", "_offset", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total",
    "_format", "_pretty",
)  # fmt: skip


@dataclass(frozen=True)
class ExportSpec:
    kind: str  # system | patient | group
    types: tuple[str, ...]  # exported in this order, one file each
    since: float | None = None  # epoch seconds: only resources last updated at or after
    group_id: str | None = None
    type_filters: tuple[tuple[str, str], ...] = ()  # (type, search query), as the client sent
    source: str | None = None  # only resources this system wrote (meta.source); the gate's say
    owner: str | None = None  # the account that started it: only it may poll and download

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    def filters_for(self, res_type: str) -> list[list[tuple[str, str]]]:
        """The parsed queries of the _typeFilters for one type (ORed; none means no filter)."""
        return [parse_query_string(q) for t, q in self.type_filters if t == res_type]


def parse_kickoff(
    kind: str, pairs: list[tuple[str, str]], group_id: str | None = None
) -> ExportSpec:
    """The spec of a kick-off request, from its (name, value) parameters; 400 on any problem."""
    requested: list[str] = []
    since = None
    filters: list[str] = []
    unsupported: list[str] = []
    for key, value in pairs:
        if key == "_outputFormat":
            if value not in OUTPUT_FORMATS:
                raise bad_request(
                    f"_outputFormat '{value}' is not supported; use {', '.join(OUTPUT_FORMATS)}.",
                    "_outputFormat",
                )
        elif key == "_since":
            # A space is never valid in an instant: it is an unencoded '+' of a UTC offset.
            since = parse_date_range(value.replace(" ", "+"), "_since").low
        elif key == "_type":
            requested += [t.strip() for t in value.split(",") if t.strip()]
        elif key == "_typeFilter":
            filters.append(value)
        elif key not in unsupported:
            unsupported.append(key)
    if unsupported:
        names = ", ".join(f"'{k}'" for k in unsupported)
        raise bad_request(
            f"$export does not support the parameter(s) {names}; it takes _outputFormat, "
            "_since, _type and _typeFilter."
        )
    allowed = SUPPORTED_TYPES if kind == "system" else COMPARTMENT_TYPES
    for t in requested:
        _check_type(t, kind, allowed)
    types = tuple(t for t in allowed if t in requested) if requested else allowed
    type_filters = tuple(_parse_type_filter(f, types) for f in filters)
    return ExportSpec(kind, types, since, group_id, type_filters)


def _check_type(res_type: str, kind: str, allowed: tuple[str, ...]) -> None:
    if res_type not in R4_RESOURCE_TYPES:
        raise bad_request(f"_type: '{res_type}' is not a FHIR R4 resource type.", "_type")
    if res_type not in SUPPORTED:
        raise bad_request(f"_type: this server does not store {res_type} resources.", "_type")
    if res_type not in allowed:
        raise bad_request(
            f"_type: {res_type} resources are in no Patient compartment, so a {kind}-level "
            f"export never holds them; use a system-level export (/$export?_type={res_type}).",
            "_type",
        )


def _parse_type_filter(value: str, types: tuple[str, ...]) -> tuple[str, str]:
    res_type, sep, query = value.partition("?")
    if not sep or not query:
        raise bad_request(
            f"_typeFilter '{value}' must be a type and a search query: Type?param=value.",
            "_typeFilter",
        )
    if res_type not in types:
        raise bad_request(
            f"_typeFilter: {res_type} is not among the types this export holds.", "_typeFilter"
        )
    pairs = parse_query_string(query)
    shaping = sorted({k for k, _ in pairs if k.split(":", 1)[0] in _RESULT_PARAMS})
    if shaping:
        raise bad_request(
            f"_typeFilter takes search criteria only, not {', '.join(shaping)}.", "_typeFilter"
        )
    parse_search(res_type, pairs)  # unknown parameters or bad values: 400 now, not in the job
    return (res_type, query)


def parameters_to_pairs(body: object) -> list[tuple[str, str]]:
    """A POST kick-off's Parameters resource as (name, value) pairs, like a GET's query."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise bad_request("A POST $export takes a Parameters resource.")
    pairs = []
    for i, param in enumerate(body.get("parameter") or []):
        if not isinstance(param, dict) or not isinstance(param.get("name"), str):
            raise bad_request("Every parameter needs a name.", f"Parameters.parameter[{i}]")
        values = [v for k, v in param.items() if k.startswith("value") and isinstance(v, str)]
        # A non-string value (patient's valueReference) is refused by name in parse_kickoff.
        pairs.append((param["name"], values[0] if values else ""))
    return pairs
