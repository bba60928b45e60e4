"""The CapabilityStatement: exactly what this server supports, built from the registry."""

from __future__ import annotations

from functools import cache

from carelight import __version__
from carelight.fhir import searchparams
from carelight.fhir.resource_types import SUPPORTED_TYPES

SPEC = "http://hl7.org/fhir/SearchParameter"
INTERACTIONS = (
    "read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create",
    "search-type",
)  # fmt: skip

BULK = "http://hl7.org/fhir/uv/bulkdata"
OPERATIONS = {
    "Patient": [
        {
            "name": "everything",
            "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
        },
        {"name": "export", "definition": f"{BULK}/OperationDefinition/patient-export"},
    ],
    "Group": [{"name": "export", "definition": f"{BULK}/OperationDefinition/group-export"}],
}


@cache
def _resources() -> list[dict]:
    out = []
    for res_type in SUPPORTED_TYPES:
        params = searchparams.params_for(res_type)
        usable = [p for p in params.values() if p.type not in ("composite", "special")]
        references = sorted(p.name for p in usable if p.type == "reference")
        out.append(
            {
                "type": res_type,
                "profile": f"http://hl7.org/fhir/StructureDefinition/{res_type}",
                "interaction": [{"code": code} for code in INTERACTIONS],
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": True,
                "conditionalCreate": True,
                "conditionalRead": "not-supported",
                "conditionalUpdate": True,
                "conditionalDelete": "single",
                "searchInclude": ["*"] + [f"{res_type}:{n}" for n in references],
                "searchRevInclude": sorted(
                    f"{other}:{p.name}"
                    for other in SUPPORTED_TYPES
                    for p in searchparams.params_for(other).values()
                    if p.type == "reference"
                    and (not p.targets or res_type in p.targets)
                    and not p.name.startswith("_")
                ),
                "searchParam": [
                    {
                        "name": p.name,
                        "definition": f"{SPEC}/{p.base}-{p.name.lstrip('_')}",
                        "type": p.type,
                        **({"documentation": p.description} if p.description else {}),
                    }
                    for p in sorted(usable, key=lambda p: p.name)
                ],
                **({"operation": OPERATIONS[res_type]} if res_type in OPERATIONS else {}),
            }
        )
    return out


def capability_statement(base_url: str) -> dict:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-24",
        "publisher": "Carelight",
        "kind": "instance",
        "software": {"name": "Carelight", "version": __version__},
        "implementation": {"description": "Carelight FHIR R4 data layer", "url": base_url},
        "instantiates": [f"{BULK}/CapabilityStatement/bulk-data"],
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Search modifiers: token :not :text :missing; string :exact :contains :missing; "
                    "uri :below :above :missing; reference :[type] :missing; prefixes eq ne lt gt le ge "
                    "sa eb ap on date, number and quantity. Chaining one level; _has; _include and "
                    "_revinclude with :iterate; _sort; _count; _summary; _elements; _total. Unknown "
                    "search parameters are an error (400)."
                ),
                "resource": _resources(),
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                ],
                "operation": [
                    {"name": "export", "definition": f"{BULK}/OperationDefinition/export"}
                ],
                "searchParam": [
                    {"name": "_id", "definition": f"{SPEC}/Resource-id", "type": "token"},
                    {
                        "name": "_lastUpdated",
                        "definition": f"{SPEC}/Resource-lastUpdated",
                        "type": "date",
                    },
                ],
            }
        ],
    }
