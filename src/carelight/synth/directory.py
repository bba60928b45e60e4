"""Each source system's own directory resources: Organization, staff, Locations, forms.

These are the same for every seed and every population size; each source folder gets its own
copy, so a folder loads on its own.
"""

from __future__ import annotations

from collections.abc import Iterator

from carelight.synth import questionnaire
from carelight.synth.codes import ODS, SDS_USER, codelist, hl7
from carelight.synth.fhir import meta, org_ref, ref
from carelight.synth.sources import ALL_SOURCES, Source, staff

CARE = codelist("care")
PROVIDER = hl7("organization-type", "prov", "Healthcare Provider").coding
GOVERNMENT = hl7("organization-type", "govt", "Government").coding
KIND_TEXT = {
    "gp": "GP practice",
    "trust": "NHS trust",
    "council": "Local authority adult social care",
    "carehome": "Care home",
}
# Locations: (id suffix, name, physical type)
LOCATIONS = {
    "trust": (
        ("ae", "Emergency department", "wa", "Ward"),
        ("ward", "Inpatient wards", "wa", "Ward"),
    ),
    "carehome": (("home", "Care home", "bu", "Building"),),
}


def organization(source: Source) -> dict:
    return {
        "resourceType": "Organization",
        "id": source.org_id,
        "meta": meta(source, "Organization"),
        "identifier": [{"system": ODS, "value": source.code}],
        "active": True,
        "type": [
            {
                "coding": [GOVERNMENT if source.kind == "council" else PROVIDER],
                "text": KIND_TEXT[source.kind],
            }
        ],
        "name": source.name,
        "telecom": [{"system": "phone", "value": source.phone, "use": "work"}],
        "address": [
            {
                "use": "work",
                "line": [source.street],
                "city": source.town,
                "country": "GB",
            }
        ],
    }


def directory_resources(source: Source) -> Iterator[dict]:
    yield organization(source)
    for suffix, name, code, display in LOCATIONS.get(source.kind, ()):
        yield {
            "resourceType": "Location",
            "id": f"{source.code}-loc-{suffix}",
            "meta": meta(source, "Location"),
            "status": "active",
            "name": f"{source.name}: {name}" if source.kind == "trust" else source.name,
            "mode": "instance",
            "physicalType": hl7("location-physical-type", code, display).concept,
            "managingOrganization": org_ref(source),
        }
    for member in staff(source):
        name = {"use": "official", "family": member.family, "given": [member.given]}
        if member.prefix:
            name["prefix"] = [member.prefix]
        yield {
            "resourceType": "Practitioner",
            "id": member.id,
            "meta": meta(source, "Practitioner"),
            "identifier": [{"system": SDS_USER, "value": member.sds_id}],
            "active": True,
            "name": [name],
            "gender": member.gender,
        }
        role = CARE[member.role].concept if member.role in CARE else {"text": member.role}
        yield {
            "resourceType": "PractitionerRole",
            "id": member.role_id,
            "meta": meta(source, "PractitionerRole"),
            "active": True,
            "practitioner": ref("Practitioner", member.id, member.display),
            "organization": org_ref(source),
            "code": [role],
        }
    if source.kind == "council":
        yield questionnaire.questionnaire()


def all_directory_resources() -> Iterator[tuple[Source, dict]]:
    for source in ALL_SOURCES:
        for resource in directory_resources(source):
            yield source, resource
