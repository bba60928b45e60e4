"""Small builders for FHIR R4 JSON, tuned for speed: shared read-only fragments, cached dates.

The generator writes millions of resources, so anything constant (meta, codings, categories) is
built once and shared between resources. Nothing here may mutate a dict it did not create.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from functools import cache

import orjson

from carelight.synth.codes import ODS, UCUM, UKCORE, Code
from carelight.synth.sources import Source


@cache
def day(ordinal: int) -> str:
    """ISO date of a day number."""
    return date.fromordinal(ordinal).isoformat()


def instant(ordinal: int, minute: int = 0) -> str:
    """A dateTime on a day, ``minute`` minutes after midnight (UK times, written as UTC)."""
    minute = max(0, min(minute, 24 * 60 - 1))
    return f"{day(ordinal)}T{minute // 60:02d}:{minute % 60:02d}:00+00:00"


@cache
def meta(source: Source, resource_type: str) -> dict:
    return {"source": source.uri, "profile": [f"{UKCORE}{resource_type}"]}


def ref(resource_type: str, resource_id: str, display: str | None = None) -> dict:
    if display is None:
        return {"reference": f"{resource_type}/{resource_id}"}
    return {"reference": f"{resource_type}/{resource_id}", "display": display}


@cache
def org_ref(source: Source) -> dict:
    """A reference to the source's own Organization (it is in the same folder)."""
    return {"reference": f"Organization/{source.org_id}", "display": source.name}


@cache
def ods_ref(source: Source) -> dict:
    """A logical reference to another source's Organization, by ODS code.

    Each output folder is self-contained, so a resource never holds a literal reference into
    another folder; it names the other organisation by its identifier instead.
    """
    return {"identifier": {"system": ODS, "value": source.code}, "display": source.name}


def quantity(value: float, unit: str, ucum: str) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": ucum}


@cache
def category(code: Code) -> list:
    return [code.concept]


@dataclass
class Output:
    """The NDJSON lines and ground-truth rows made for a chunk of people."""

    lines: dict[tuple[str, str], list[bytes]] = field(default_factory=lambda: defaultdict(list))
    truth: list[tuple[str, str, str, str]] = field(default_factory=list)
    count: int = 0

    def add(self, source: Source, resource: dict) -> dict:
        self.lines[(source.code, resource["resourceType"])].append(orjson.dumps(resource))
        self.count += 1
        return resource


class Record:
    """One person's record at one source: hands out ids and holds the subject reference."""

    __slots__ = ("_n", "out", "patient_id", "source", "subject")

    def __init__(self, out: Output, source: Source, patient_id: str) -> None:
        self.out = out
        self.source = source
        self.patient_id = patient_id
        # The display is filled in by add_patient, from the name this source recorded.
        self.subject = {"reference": f"Patient/{patient_id}", "display": ""}
        self._n = 0

    def add_patient(self, patient: dict) -> dict:
        """Add the record's Patient; references to it show the name as this source holds it."""
        name = patient["name"][0]
        self.subject["display"] = f"{name['given'][0]} {name['family']}"
        return self.add(patient)

    def new_id(self, kind: str) -> str:
        self._n += 1
        return f"{self.patient_id}-{kind}{self._n}"

    def add(self, resource: dict) -> dict:
        return self.out.add(self.source, resource)
