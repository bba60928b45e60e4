"""A small synthetic population loaded into a test store, with the cases the extract must
handle added: opt-outs of each kind, a security-labelled record, a linked person."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from carelight.access.optout import opt_out_consent, opted_out_patients
from carelight.access.principal import Purpose
from carelight.fhir import schema

PEOPLE = 80
SEED = 11
LABELLED_CODE = "1234567001"  # a made-up SNOMED CT code only the labelled Condition carries
NHS = "https://fhir.nhs.uk/Id/nhs-number"


def ndjson_items(folder):
    for path in sorted(folder.glob("*/*.ndjson")):
        source = f"urn:carelight:source:{path.parent.name}"
        for n, line in enumerate(path.read_bytes().splitlines(), start=1):
            if line.strip():
                yield f"{path.name}:{n}", line, source


@dataclass
class Loaded:
    persons: dict[str, list[str]]  # person -> their Patient ids
    research_out: str  # a person (with several records) who opted out of research here
    planning_out: str  # opted out of planning only: still in research
    permitted: str  # a "permit" Consent, not an opt-out
    labelled: str  # has one Condition labelled PSY
    identifiers: dict[str, set[str]] = field(default_factory=dict)


def load_population(store, folder) -> Loaded:
    report = store.bulk_load(ndjson_items(folder), workers=0)
    assert report.errors == []
    PL = schema.person_link
    with store.engine.connect() as conn:
        persons: dict[str, list[str]] = {}
        for pid, person in conn.execute(select(PL.c.patient_id, PL.c.person)):
            persons.setdefault(person, []).append(pid)
        already = opted_out_patients(conn, Purpose.HRESCH)  # the synthetic GP-recorded ones
    several = sorted(p for p, ids in persons.items() if len(ids) >= 2 and not set(ids) & already)
    research_out, planning_out, permitted, labelled = several[:4]
    extra = [
        _consent(persons[research_out][-1], [Purpose.HRESCH], "t-out"),
        _consent(persons[planning_out][0], [Purpose.HOPERAT], "t-planning"),
        {**_consent(persons[permitted][0], [Purpose.HRESCH], "t-permit"),
         "provision": {"type": "permit", "purpose": [
             {"system": Purpose.HRESCH.system, "code": "HRESCH"}]}},
        {
            "resourceType": "Condition", "id": "t-labelled",
            "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                   "code": "PSY"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": LABELLED_CODE}]},
            "subject": {"reference": f"Patient/{persons[labelled][0]}"},
            "onsetDateTime": "2020-05-05",
        },
    ]  # fmt: skip
    report = store.bulk_load(extra, workers=0, source="urn:carelight:source:test")
    assert report.errors == []
    return Loaded(persons, research_out, planning_out, permitted, labelled, _identifiers(store))


def _consent(patient_id: str, purposes, res_id: str) -> dict:
    return {**opt_out_consent(patient_id, purposes, "2026-01-01T00:00:00Z"), "id": res_id}


def _identifiers(store) -> dict[str, set[str]]:
    """Every direct identifier in the source: NHS numbers, names, postcodes, exact dates of
    birth, and every resource id."""
    import orjson

    R = schema.resource
    found: dict[str, set[str]] = {"nhs": set(), "names": set(), "postcodes": set(), "ids": set(),
                                  "births": set()}  # fmt: skip
    with store.engine.connect() as conn:
        for res_type, res_id, content in conn.execute(
            select(R.c.res_type, R.c.res_id, R.c.content)
        ):
            found["ids"].add(res_id)
            if res_type != "Patient":
                continue
            p = orjson.loads(content)
            for i in p.get("identifier", ()):
                if i.get("system") == NHS:
                    found["nhs"].add(i["value"])
            for n in p.get("name", ()):
                found["names"].update(x.lower() for x in [*n.get("given", ()), n.get("family", "")]
                                      if x)  # fmt: skip
            for a in p.get("address", ()):
                if a.get("postalCode"):
                    found["postcodes"].add(a["postalCode"].upper())
            if p.get("birthDate"):
                found["births"].add(p["birthDate"])
    return found
