"""A person's record, read through the gate: every Patient record of the person, from every
source, and everything in their compartments.

The person's Patient records are found by NHS number (Patients are open to professionals for
tracing); each record's ``$everything`` is then read with the caller's access context, so the
row condition inside the SQL decides what is returned. When the master patient index groups
records without an NHS number, ``Store.everything`` returns them too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from carelight.access.directory import NHS_NUMBER_SYSTEM, nhs_number_of
from carelight.access.gate import AccessContext
from carelight.fhir.search.execute import run_search
from carelight.fhir.search.query import parse_search
from carelight.fhir.store import Store, StoredResource

MAX_RECORDS = 5000  # per Patient record; a person with more is shown in part, and says so
MAX_PATIENT_RECORDS = 20


@dataclass
class PersonRecord:
    patient: dict  # the Patient record the page was opened on
    patients: list[dict] = field(default_factory=list)  # every Patient record of the person
    resources: list[dict] = field(default_factory=list)  # everything else, once each
    stored: list[StoredResource] = field(default_factory=list)  # for the log
    last_updated: dict[str, float] = field(default_factory=dict)  # "Type/id" -> epoch seconds
    truncated: bool = False

    def of_type(self, *types: str) -> list[dict]:
        return [r for r in self.resources if r["resourceType"] in types]

    def by_reference(self) -> dict[str, dict]:
        return {f"{r['resourceType']}/{r['id']}": r for r in (*self.patients, *self.resources)}


def linked_patient_ids(store: Store, ctx: AccessContext, patient: dict) -> list[str]:
    """The ids of the person's Patient records the caller may see: this one first."""
    ids = [patient["id"]]
    nhs = nhs_number_of(patient)
    if nhs:
        query = parse_search(
            "Patient",
            [("identifier", f"{NHS_NUMBER_SYSTEM}|{nhs}"), ("_count", str(MAX_PATIENT_RECORDS))],
        )
        ids += [s.res_id for s in run_search(store, query, access=ctx).matches]
    return list(dict.fromkeys(ids))


def load_record(store: Store, ctx: AccessContext, patient_id: str) -> PersonRecord:
    """The whole record; the caller has checked the relationship (or break-glass) first."""
    first = store.read("Patient", patient_id, access=ctx)
    record = PersonRecord(patient=first.json())
    seen: set[tuple[str, str]] = set()
    for pid in linked_patient_ids(store, ctx, record.patient):
        found, more = store.everything(pid, count=MAX_RECORDS, access=ctx)
        record.truncated |= more
        for stored in found:
            key = (stored.res_type, stored.res_id)
            if key in seen:
                continue
            seen.add(key)
            record.stored.append(stored)
            resource = orjson.loads(stored.content)
            record.last_updated[f"{stored.res_type}/{stored.res_id}"] = stored.last_updated
            if stored.res_type == "Patient":
                record.patients.append(resource)
            else:
                record.resources.append(resource)
    if not record.patients:
        record.patients.append(record.patient)
    return record
