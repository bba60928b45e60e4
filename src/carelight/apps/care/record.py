"""A person's record, read through the gate: every Patient record of the person, from every
source, and everything in their compartments.

``Store.everything`` follows the master patient index (``person_link``), so one call returns
all of the person's records, including those that arrived without an NHS number and were
linked; it runs with the caller's access context, so the row condition inside the SQL decides
what is returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from carelight.access.gate import AccessContext
from carelight.fhir.store import Store, StoredResource

MAX_RECORDS = 5000  # a person with more is shown in part, and the page says so


@dataclass
class PersonRecord:
    patient: dict  # the Patient record the page was opened on
    patients: list[dict] = field(default_factory=list)  # every Patient record of the person
    resources: list[dict] = field(default_factory=list)  # everything else, once each
    stored: list[StoredResource] = field(default_factory=list)  # for the log
    truncated: bool = False

    def of_type(self, *types: str) -> list[dict]:
        return [r for r in self.resources if r["resourceType"] in types]


def load_record(store: Store, ctx: AccessContext, patient_id: str) -> PersonRecord:
    """The whole record; the caller has checked the relationship (or break-glass) first."""
    found, more = store.everything(patient_id, count=MAX_RECORDS, access=ctx)
    record = PersonRecord(patient={}, truncated=more)
    seen: set[tuple[str, str]] = set()
    for stored in found:
        key = (stored.res_type, stored.res_id)
        if key in seen:
            continue
        seen.add(key)
        record.stored.append(stored)
        resource = orjson.loads(stored.content)
        if stored.res_type == "Patient":
            record.patients.append(resource)
            if stored.res_id == patient_id:
                record.patient = resource
        else:
            record.resources.append(resource)
    if not record.patient:
        record.patient = store.read("Patient", patient_id, access=ctx).json()
        record.patients.insert(0, record.patient)
    return record
