"""What the search index holds for one resource: the contract between extraction and the store.

`carelight.fhir.extract.extract(resource)` returns an :class:`IndexEntries`; the store writes
each list to its table in the same transaction as the resource. Values are already normalised,
so the store and the search compiler never look inside resource JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Dates are held as a closed range of epoch seconds (UTC). Open ends use these sentinels,
# which every engine stores and compares as ordinary doubles.
DATE_MIN = -62135596800.0  # 0001-01-01T00:00:00Z
DATE_MAX = 253402300799.999  # 9999-12-31T23:59:59.999Z


@dataclass(frozen=True, slots=True)
class TokenEntry:
    param: str
    system: str | None  # None when the element has no system
    code: str | None  # None for a text-only CodeableConcept
    text: str | None = None  # normalised display/text, for :text


@dataclass(frozen=True, slots=True)
class StringEntry:
    param: str
    value: str  # normalised: lower-case, accents removed, whitespace collapsed
    exact: str  # as written, for :exact


@dataclass(frozen=True, slots=True)
class DateEntry:
    param: str
    low: float  # inclusive, epoch seconds
    high: float  # inclusive, epoch seconds (end of the precision, e.g. 23:59:59.999 for a day)


@dataclass(frozen=True, slots=True)
class NumberEntry:
    param: str
    value: float


@dataclass(frozen=True, slots=True)
class QuantityEntry:
    param: str
    value: float
    system: str | None
    code: str | None  # the coded unit (or the unit text when there is no code)


@dataclass(frozen=True, slots=True)
class ReferenceEntry:
    param: str
    target_type: str | None  # "Patient" for "Patient/123"; None for an external URL we can't type
    target_id: str | None  # "123"; None for an external URL
    url: str | None = None  # absolute or canonical URL when not a local reference


@dataclass(frozen=True, slots=True)
class UriEntry:
    param: str
    value: str


@dataclass(slots=True)
class IndexEntries:
    tokens: list[TokenEntry] = field(default_factory=list)
    strings: list[StringEntry] = field(default_factory=list)
    dates: list[DateEntry] = field(default_factory=list)
    numbers: list[NumberEntry] = field(default_factory=list)
    quantities: list[QuantityEntry] = field(default_factory=list)
    references: list[ReferenceEntry] = field(default_factory=list)
    uris: list[UriEntry] = field(default_factory=list)
    # Logical ids of the Patients whose compartment holds this resource (R4 CompartmentDefinition
    # "patient"); a Patient is in its own compartment.
    compartments: set[str] = field(default_factory=set)
