"""Look-ups in the FHIR store that accounts need: organisations by ODS code, patients by NHS
number. They go through the store's search, like any other reader of the data layer."""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from carelight.access.accounts import Organization
from carelight.fhir.search.execute import run_search
from carelight.fhir.search.query import MAX_COUNT, parse_search
from carelight.fhir.store import Store

ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"


def search(
    store: Store, res_type: str, pairs: list[tuple[str, str]], pages: int = 1
) -> Iterator[dict]:
    """Matching resources, parsed, in the store's order; at most ``pages`` pages of 1,000."""
    for page in range(pages):
        query = [*pairs, ("_count", str(MAX_COUNT)), ("_offset", str(page * MAX_COUNT))]
        result = run_search(store, parse_search(res_type, query))
        for stored in result.matches:
            yield orjson.loads(stored.content)
        if not result.has_next:
            return


def organization(store: Store, ods_code: str) -> Organization | None:
    """The Organization with this ODS code (its own system's copy when there are several)."""
    found = list(search(store, "Organization", [("identifier", f"{ODS_SYSTEM}|{ods_code}")]))
    if not found:
        return None
    # The organisation's own record is conventionally "<code>-org"; otherwise the first.
    best = next((o for o in found if o["id"] == f"{ods_code}-org"), found[0])
    return Organization(
        id=best["id"],
        code=ods_code,
        name=best.get("name") or ods_code,
        source=(best.get("meta") or {}).get("source"),
    )


def nhs_number_of(patient: dict) -> str | None:
    for ident in patient.get("identifier") or ():
        if ident.get("system") == NHS_NUMBER_SYSTEM and ident.get("value"):
            return ident["value"]
    return None


def display_name(patient: dict) -> str:
    names = patient.get("name") or [{}]
    name = next((n for n in names if n.get("use") == "official"), names[0])
    return " ".join([*name.get("given", ()), name.get("family", "")]).strip()


def registered_record(store: Store, nhs_number: str) -> dict | None:
    """The Patient record a person's own GP practice keeps (the one a patient account links
    to): among the Patients with this NHS number, the one managed by the organisation it
    names as the general practitioner; failing that, the first."""
    found = list(search(store, "Patient", [("identifier", f"{NHS_NUMBER_SYSTEM}|{nhs_number}")]))
    for patient in found:
        managing = (patient.get("managingOrganization") or {}).get("reference")
        gps = {g.get("reference") for g in patient.get("generalPractitioner") or ()}
        if managing and managing in gps:
            return patient
    return found[0] if found else None
