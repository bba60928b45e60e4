"""Shaping resources for a response: ``_summary`` and ``_elements``.

A shaped resource is marked with the R4 ``SUBSETTED`` tag so nobody mistakes it for the
whole record.
"""

from __future__ import annotations

import importlib
from functools import cache

import orjson

from carelight.fhir.errors import bad_request

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "Resource encoded in summary mode",
}
_ALWAYS = ("resourceType", "id", "meta")


@cache
def summary_elements(res_type: str) -> frozenset[str]:
    """Top-level elements flagged isSummary in R4 (read from the fhir.resources models)."""
    module = importlib.import_module(f"fhir.resources.R4B.{res_type.lower()}")
    model = getattr(module, res_type)
    names = set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra or {}
        if isinstance(extra, dict) and extra.get("summary_element_property"):
            names.add(info.alias or name)
    return frozenset(names)


def _mark(resource: dict) -> dict:
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    resource["meta"] = meta
    return resource


def shape(content: str, summary: str | None, elements: list[str] | None) -> str | bytes:
    """Apply ``_summary``/``_elements`` to stored JSON text; unchanged text when neither applies."""
    if (summary in (None, "false")) and not elements:
        return content
    resource = orjson.loads(content)
    res_type = resource["resourceType"]
    if summary == "true":
        keep = summary_elements(res_type)
        out = {k: v for k, v in resource.items() if k in _ALWAYS or k in keep}
    elif summary == "text":
        out = {k: v for k, v in resource.items() if k in (*_ALWAYS, "text")}
    elif summary == "data":
        out = {k: v for k, v in resource.items() if k != "text"}
    elif elements:
        out = {k: v for k, v in resource.items() if k in _ALWAYS or k in elements}
    else:
        raise bad_request(f"_summary={summary} cannot be applied to a resource.")
    return orjson.dumps(_mark(out))
