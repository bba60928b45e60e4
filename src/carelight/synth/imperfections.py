"""How each source system records a person's demographics, warts and all.

GP records are traced against the national spine (PDS), so they are clean and current. Other
sources write down what they were told when they last saw the person, so their Patient records
carry the imperfections record linkage has to cope with, at the rates in ``rates``:

- no NHS number (about 30 % in social care and care homes);
- a nickname instead of the registered given name (Margaret -> Peggy);
- a typo in a name (a letter dropped, doubled, swapped or mistyped);
- day and month of birth swapped (only possible when both are 12 or less and differ);
- an out-of-date address (and, naturally, the surname before a marriage if the record
  predates it).

Every imperfection applied is returned as a tag, and the writer puts the tags in the ground
truth file, so linkage evaluations can break results down by kind of error.
"""

from __future__ import annotations

import random
from datetime import date
from functools import cache

from carelight.synth import names, rates
from carelight.synth.codes import NHS_NUMBER, NHS_VERIFICATION, NHS_VERIFICATION_EXT
from carelight.synth.fhir import day, meta, ods_ref, org_ref
from carelight.synth.population import Person, person_rng
from carelight.synth.sources import GP_PRACTICES, Source

_VERIFIED = [
    {
        "url": NHS_VERIFICATION_EXT,
        "valueCodeableConcept": {
            "coding": [
                {"system": NHS_VERIFICATION, "code": "01", "display": "Number present and verified"}
            ]
        },
    }
]
_KEYBOARD_NEIGHBOURS = {
    "a": "s", "e": "r", "i": "o", "o": "i", "n": "m", "m": "n", "r": "t", "t": "r", "l": "k",
    "s": "a", "h": "j", "c": "v", "d": "f", "u": "y", "y": "u", "b": "v", "g": "h", "k": "l",
}  # fmt: skip


@cache
def _local_permutation(seed: int, code: str) -> tuple[int, int]:
    rng = random.Random(f"carelight-synth/{seed}/local/{code}")
    multiplier = rng.randrange(1, 10**7) * 10 + rng.choice((1, 3, 7, 9))  # coprime with 10**8
    return multiplier, rng.randrange(10**8)


def local_number(seed: int, source: Source, index: int) -> str:
    """The source's own patient number for a person: a seeded permutation of the index.

    Different sources number the same person unrelatedly, so ids never give linkage away.
    """
    multiplier, offset = _local_permutation(seed, source.code)
    value = (index * multiplier + offset) % 10**8
    if source.kind == "gp":
        return f"{value:08d}"
    if source.kind == "trust":
        return f"{'KLMNPRST'[value % 8]}{value // 8:07d}"  # hospital numbers: letter + digits
    if source.kind == "council":
        return f"{value:08d}"
    return f"R{value % 10**6:06d}"


def typo(rng: random.Random, text: str) -> str:
    if len(text) < 4:
        return text
    i = rng.randrange(1, len(text) - 1)
    kind = rng.randrange(4)
    if kind == 0:  # dropped letter
        return text[:i] + text[i + 1 :]
    if kind == 1:  # doubled letter
        return text[:i] + text[i] + text[i:]
    if kind == 2:  # swapped neighbours
        return text[: i - 1] + text[i] + text[i - 1] + text[i + 1 :]
    wrong = _KEYBOARD_NEIGHBOURS.get(text[i].lower())
    return text[:i] + wrong + text[i + 1 :] if wrong else text[:i] + text[i + 1 :]


def _phone(person: Person) -> str:
    return f"07700 900{person.index % 1000:03d}"


def patient(
    seed: int,
    person: Person,
    source: Source,
    patient_id: str,
    as_of: int,
    *,
    active: bool = True,
    practice: Source | None = None,
) -> tuple[dict, list[str]]:
    """The source's Patient for ``person``, as last updated on day ``as_of``, and its tags."""
    rng = person_rng(seed, person.index, f"demographics/{source.code}")
    kind = source.kind
    tags: list[str] = []

    given = person.given
    if rng.random() < rates.NICKNAME[kind] and given in names.NICKNAMES:
        given = names.NICKNAMES[given]
        tags.append("nickname")
    family = person.family_on(as_of)
    if family != person.family:
        tags.append("previous-surname")
    if rng.random() < rates.TYPO[kind]:
        if rng.random() < 0.5:
            family = typo(rng, family)
        else:
            given = typo(rng, given)
        tags.append("name-typo")

    birth = date.fromordinal(person.birth)
    birth_date = birth.isoformat()
    if (
        rng.random() < rates.DOB_DAY_MONTH_SWAPPED[kind]
        and birth.day <= 12
        and birth.day != birth.month
    ):
        birth_date = date(birth.year, birth.day, birth.month).isoformat()
        tags.append("dob-day-month-swapped")

    address = person.address_on(as_of)
    if rng.random() < rates.STALE_ADDRESS[kind]:
        older = [a for since, a in person.addresses if since < as_of and a != address]
        if older:
            address = older[-1]
    if address != person.address_on(person.data_end):
        tags.append("old-address")

    identifiers = []
    if rng.random() < rates.MISSING_NHS_NUMBER[kind]:
        tags.append("no-nhs-number")
    else:
        identifiers.append(
            {"extension": _VERIFIED, "system": NHS_NUMBER, "value": person.nhs_number}
        )
    identifiers.append({"system": source.patient_id_system, "value": patient_id.split("-", 1)[1]})

    name = {"use": "official", "family": family, "given": [given]}
    if person.middle and (kind == "gp" or rng.random() < 0.5):
        name["given"].append(person.middle)
    names_ = [name]
    if kind == "gp" and person.family_changed is not None and as_of >= person.family_changed:
        names_.append(
            {
                "use": "old",
                "family": person.previous_family,
                "given": [person.given],
                "period": {"end": day(person.family_changed)},
            }
        )
    resource = {
        "resourceType": "Patient",
        "id": patient_id,
        "meta": meta(source, "Patient"),
        "identifier": identifiers,
        "active": active,
        "name": names_,
        "telecom": [{"system": "phone", "value": _phone(person), "use": "mobile"}],
        "gender": person.sex,
        "birthDate": birth_date,
    }
    if person.death is not None and person.death <= as_of:
        resource["deceasedDateTime"] = day(person.death)
    resource["address"] = [
        {
            "use": "home",
            "type": "both",
            "line": [address.line],
            "city": address.town_name,
            "postalCode": address.postcode,
            "country": "GB",
        }
    ]
    if kind == "gp":
        resource["generalPractitioner"] = [org_ref(source)]
    elif practice is not None:
        resource["generalPractitioner"] = [ods_ref(practice)]
    resource["managingOrganization"] = org_ref(source)
    return resource, tags


def practice_on(person: Person, as_of: int) -> Source | None:
    registration = person.registration_on(as_of) or person.registrations[-1]
    return GP_PRACTICES[registration.practice]
