"""Finding a person: by NHS number, or by name, date of birth and postcode with tolerant
matching (typos, nicknames, a postcode written with or without its space, a recent move).

Searches run through the gate (Patients are open to professionals for tracing). A person's
several Patient records (one per source system) are shown once, as the record their GP practice
keeps when it is among them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import orjson

from carelight.access.directory import NHS_NUMBER_SYSTEM, display_name, nhs_number_of
from carelight.access.gate import AccessContext
from carelight.fhir.search.execute import run_search
from carelight.fhir.search.query import parse_search
from carelight.fhir.store import Store, StoredResource
from carelight.identity.linkage.features import features
from carelight.identity.linkage.jaro import jaro_winkler
from carelight.identity.nhs_number import is_valid_nhs_number

MAX_CANDIDATES = 200
NAME_MATCH = 0.88  # Jaro-Winkler similarity that counts as the same name despite a typo


class FindError(ValueError):
    """What the person typed cannot be searched for; the message says how to fix it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class Match:
    patient: dict  # the record to open
    records: int  # how many Patient records of the person matched
    score: float
    reasons: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return display_name(self.patient)

    @property
    def nhs_number(self) -> str:
        return nhs_number_of(self.patient) or ""

    @property
    def postcode(self) -> str:
        return next((a.get("postalCode", "") for a in self.patient.get("address") or ()), "")


def clean_nhs_number(value: str) -> str:
    digits = "".join(c for c in value if not c.isspace() and c != "-")
    if not digits.isdigit() or len(digits) != 10:
        raise FindError("nhs", "Enter a 10-digit NHS number, like 943 476 5919")
    if not is_valid_nhs_number(digits):
        raise FindError("nhs", "This is not a valid NHS number: check the digits")
    return digits


def parse_birth_date(day: str, month: str, year: str) -> str:
    try:
        when = dt.date(int(year), int(month), int(day))
    except (TypeError, ValueError):
        raise FindError("dob", "Enter a real date of birth, for example 27 3 1950") from None
    if when > dt.date.today() or when.year < 1880:
        raise FindError("dob", "The date of birth must be in the past")
    return when.isoformat()


def _search(store: Store, ctx: AccessContext, pairs: list[tuple[str, str]]) -> list[StoredResource]:
    query = parse_search("Patient", [*pairs, ("_count", str(MAX_CANDIDATES))])
    return run_search(store, query, access=ctx).matches


def by_nhs_number(
    store: Store, ctx: AccessContext, nhs: str
) -> tuple[list[Match], list[StoredResource]]:
    found = _search(store, ctx, [("identifier", f"{NHS_NUMBER_SYSTEM}|{nhs}")])
    patients = [orjson.loads(s.content) for s in found]
    return _people([(p, 1.0, ["NHS number"]) for p in patients]), found


def by_demographics(
    store: Store, ctx: AccessContext, name: str, birth_date: str, postcode: str
) -> tuple[list[Match], list[StoredResource]]:
    """People born on ``birth_date`` whose name is close to ``name``; the postcode ranks them."""
    wanted = features(
        {
            "resourceType": "Patient",
            "id": "wanted",
            "name": [_name(name)],
            "birthDate": birth_date,
            "address": [{"postalCode": postcode}],
        }
    )
    found = _search(store, ctx, [("birthdate", birth_date)])
    scored = []
    for stored in found:
        patient = orjson.loads(stored.content)
        score, reasons = _score(wanted, features(patient))
        if score > 0:
            scored.append((patient, score, reasons))
    return _people(scored), found


def _name(text: str) -> dict:
    words = text.split()
    if len(words) == 1:
        return {"family": words[0]}
    return {"given": words[:-1], "family": words[-1]}


def _close(a: str | None, b: str | None) -> bool:
    return bool(a and b and (a == b or jaro_winkler(a, b) >= NAME_MATCH))


def _score(wanted, candidate) -> tuple[float, list[str]]:
    reasons = ["date of birth"]
    family = _close(wanted.family_name, candidate.family_name) or _close(
        wanted.family_name, candidate.previous_family_name
    )
    given = (
        not wanted.first_name
        or _close(wanted.first_name, candidate.first_name)
        or (
            wanted.first_name_group is not None
            and wanted.first_name_group == candidate.first_name_group
        )
    )
    if not family and not (given and wanted.first_name):
        return 0.0, []
    score = 1.0
    if family:
        reasons.append("surname")
        score += 1
    if given and wanted.first_name:
        reasons.append("first name")
        score += 1
    if wanted.postcode and wanted.postcode == candidate.postcode:
        reasons.append("postcode")
        score += 1
    elif wanted.postcode_district and wanted.postcode_district == candidate.postcode_district:
        reasons.append("postcode district")
        score += 0.5
    return score, reasons


def _people(scored: list[tuple[dict, float, list[str]]]) -> list[Match]:
    """One match per person (by NHS number), best first; the GP practice's record preferred."""
    people: dict[str, Match] = {}
    for patient, score, reasons in scored:
        key = nhs_number_of(patient) or f"Patient/{patient['id']}"
        current = people.get(key)
        if current is None:
            people[key] = Match(patient, 1, score, reasons)
            continue
        current.records += 1
        if score > current.score:
            current.score, current.reasons = score, reasons
        if _is_gp_record(patient) and not _is_gp_record(current.patient):
            current.patient = patient
    return sorted(people.values(), key=lambda m: (-m.score, m.name))


def _is_gp_record(patient: dict) -> bool:
    managing = (patient.get("managingOrganization") or {}).get("reference")
    return bool(managing) and managing in {
        g.get("reference") for g in patient.get("generalPractitioner") or ()
    }
