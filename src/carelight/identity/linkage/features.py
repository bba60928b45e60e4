"""Linkage features: one flat, normalised row per Patient record.

Linkage compares records field by field, so each FHIR Patient is reduced to the columns the
comparisons and blocking rules use (``LinkageRecord``). Everything is a string or None: the
same values go to Splink (as a table) and to the pure-Python scorer, so both see exactly the
same input. Missing or unusable values are None, never "" (SQL treats None as NULL, which the
comparisons' null levels rely on).

Readers: ``records_from_store`` (every current Patient in a ``carelight.fhir.store.Store``,
in batches) and ``records_from_folder`` (a ``carelight synth`` output, for tests and
benchmarks).
"""

from __future__ import annotations

import gc
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import orjson
from sqlalchemy import select

from carelight.fhir import schema
from carelight.fhir.resource_types import NHS_NUMBER_SYSTEM
from carelight.identity.linkage.nicknames import name_group
from carelight.identity.nhs_number import is_valid_nhs_number

NHS_VERIFICATION_EXTENSION = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
)
_NOT_LETTERS = re.compile(r"[^a-z0-9 ]+")
_HYPHENS = re.compile(r"[-\u2010\u2011\u2013\u2014_/]+")  # hyphens and dashes
_SPACES = re.compile(r"\s+")
_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$")
_ISO_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_SEXES = {"male": "male", "female": "female", "other": "other"}


@dataclass(frozen=True, slots=True)
class LinkageRecord:
    """The normalised identifying details of one Patient record (all strings or None)."""

    unique_id: str
    source: str | None = None
    nhs_number: str | None = None  # only a modulus-11 valid number
    nhs_verification: str | None = None  # UK Core verification status code, e.g. "01"
    given_names: str | None = None  # every given name, space separated
    first_name: str | None = None
    middle_name: str | None = None  # the second given name
    first_name_group: str | None = None  # the nickname group (Peggy and Margaret share one)
    family_name: str | None = None
    previous_family_name: str | None = None  # the latest name with use "old" or "maiden"
    dob: str | None = None  # a full ISO date; None when missing or partial
    dob_year: str | None = None
    dob_month: str | None = None
    dob_day: str | None = None
    sex: str | None = None
    postcode: str | None = None  # upper case, no spaces
    postcode_district: str | None = None  # the outward code, e.g. "YX10"
    address_line: str | None = None

    def as_row(self) -> dict[str, str | None]:
        return asdict(self)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(LinkageRecord))


def normalise_text(value: object) -> str | None:
    """Lower case, accents stripped, punctuation removed, spaces collapsed; None if empty.

    Hyphens and slashes separate words ("Smith-Jones" -> "smith jones"); apostrophes and
    full stops join them ("O'Brien" -> "obrien").
    """
    if not isinstance(value, str):
        return None
    decomposed = unicodedata.normalize("NFKD", value)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    plain = _NOT_LETTERS.sub("", _HYPHENS.sub(" ", plain))
    plain = _SPACES.sub(" ", plain).strip()
    return plain or None


def normalise_postcode(value: object) -> tuple[str | None, str | None]:
    """(postcode, district): upper case without spaces, and the outward code.

    The district is given only when the value has the shape of a UK postcode (the inward code
    is always a digit and two letters, so the outward code is everything before it).
    """
    if not isinstance(value, str):
        return None, None
    code = "".join(c for c in value.upper() if c.isascii() and c.isalnum())
    if not code:
        return None, None
    return code, code[:-3] if _POSTCODE.match(code) else None


def _nhs_number(patient: dict) -> tuple[str | None, str | None]:
    for ident in patient.get("identifier") or ():
        if not isinstance(ident, dict) or ident.get("system") != NHS_NUMBER_SYSTEM:
            continue
        value = ident.get("value")
        if not is_valid_nhs_number(value):
            continue
        status = None
        for ext in ident.get("extension") or ():
            if isinstance(ext, dict) and ext.get("url") == NHS_VERIFICATION_EXTENSION:
                codings = (ext.get("valueCodeableConcept") or {}).get("coding") or ()
                status = next((c.get("code") for c in codings if isinstance(c, dict)), None)
        return value, status
    return None, None


def _names(patient: dict) -> tuple[list[str], str | None, str | None]:
    """(given names, family name, previous family name) from the current and old names."""
    names = [n for n in patient.get("name") or () if isinstance(n, dict)]
    current = [n for n in names if n.get("use") not in ("old", "maiden", "nickname", "anonymous")]
    # The official name wins, then a usual one, then whatever else is current.
    current.sort(key=lambda n: {"official": 0, "usual": 1}.get(n.get("use"), 2))
    given: list[str] = []
    family = None
    if current:
        name = current[0]
        given = [g for g in map(normalise_text, name.get("given") or ()) if g]
        # A given name with a space in it ("mary jane") counts as its words.
        given = [word for g in given for word in g.split(" ")]
        family = normalise_text(name.get("family"))
    previous = None
    old = [n for n in names if n.get("use") in ("old", "maiden")]
    old.sort(key=lambda n: (n.get("period") or {}).get("end") or "", reverse=True)
    for name in old:
        candidate = normalise_text(name.get("family"))
        if candidate and candidate != family:
            previous = candidate
            break
    return given, family, previous


def _birth_date(value: object) -> tuple[str | None, str | None, str | None, str | None]:
    if not isinstance(value, str):
        return None, None, None, None
    match = _ISO_DATE.match(value.strip())
    if match is None:
        return None, None, None, None
    year, month, day = match.groups()
    full = value.strip() if day is not None else None
    return full, year, month, day


def _home_address(patient: dict) -> dict | None:
    addresses = [a for a in patient.get("address") or () if isinstance(a, dict)]
    current = [a for a in addresses if a.get("use") not in ("old", "temp", "billing")]
    current.sort(key=lambda a: 0 if a.get("use") == "home" else 1)
    return current[0] if current else None


def source_of(patient: dict) -> str | None:
    """The writing system: ``meta.source``, else the id's prefix before the first '-'."""
    meta = patient.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("source"), str) and meta["source"]:
        return meta["source"]
    pid = patient.get("id")
    if isinstance(pid, str) and "-" in pid:
        return pid.split("-", 1)[0]
    return None


def features(patient: dict) -> LinkageRecord:
    """The linkage row for one FHIR Patient resource (a dict as stored).

    Raises ValueError if the resource is not a Patient with a logical id.
    """
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        raise ValueError("expected a FHIR Patient resource (resourceType 'Patient')")
    pid = patient.get("id")
    if not isinstance(pid, str) or not pid:
        raise ValueError("a Patient needs its logical id to be linked")
    nhs, verification = _nhs_number(patient)
    given, family, previous = _names(patient)
    dob, year, month, day = _birth_date(patient.get("birthDate"))
    address = _home_address(patient) or {}
    postcode, district = normalise_postcode(address.get("postalCode"))
    lines = address.get("line") or ()
    first = given[0] if given else None
    return LinkageRecord(
        unique_id=pid,
        source=source_of(patient),
        nhs_number=nhs,
        nhs_verification=verification,
        given_names=" ".join(given) or None,
        first_name=first,
        middle_name=given[1] if len(given) > 1 else None,
        first_name_group=name_group(first) if first else None,
        family_name=family,
        previous_family_name=previous,
        dob=dob,
        dob_year=year,
        dob_month=month,
        dob_day=day,
        sex=_SEXES.get(patient.get("gender")),
        postcode=postcode,
        postcode_district=district,
        address_line=normalise_text(lines[0]) if lines and isinstance(lines, list) else None,
    )


def records_from_patients(patients: Iterable[dict]) -> list[LinkageRecord]:
    return [features(p) for p in patients]


def records_from_store(store, *, batch_size: int = 5000) -> Iterator[LinkageRecord]:
    """Every current (not deleted) Patient in ``store``, read in primary-key order in batches.

    Only Patient rows are read; each batch is its own short read so a long linkage run does not
    hold a transaction open on the store.
    """
    resource = schema.resource
    last = 0
    while True:
        query = (
            select(resource.c.pk, resource.c.content)
            .where(
                resource.c.res_type == "Patient",
                resource.c.deleted.is_(False),
                resource.c.pk > last,
            )
            .order_by(resource.c.pk)
            .limit(batch_size)
        )
        with store.read_conn() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return
        for _pk, content in rows:
            if content is not None:
                yield features(orjson.loads(content))
        last = rows[-1][0]


def records_from_folder(folder: str | Path) -> list[LinkageRecord]:
    """Every Patient in a synthetic population folder (``*/Patient.ndjson``), in path order."""
    root = Path(folder)
    paths = sorted(root.glob("*/Patient.ndjson"))
    if not paths:
        raise FileNotFoundError(
            f"no */Patient.ndjson under {root}: is it a carelight synth output?"
        )
    out: list[LinkageRecord] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a million small acyclic objects: the collector's passes would dominate
    try:
        for path in paths:
            with path.open("rb") as f:
                out.extend(features(orjson.loads(line)) for line in f if line.strip())
    finally:
        if gc_was_enabled:
            gc.enable()
    return out
