"""The fictional integrated care system: its source systems and their directory resources.

Calderbrook ICS (made up) has ten GP practices, two hospital trusts, one council's adult social
care department and four care homes. Each is a separate source system: its own folder, its own
``meta.source`` URI, its own local patient identifiers and its own Organization and staff.

ODS-style codes are fictional and follow a documented scheme (docs/synth.md): GP practices
``Y991nn``, trusts ``X9A``/``X9B``, the council ``X99LB`` and care homes ``X9Cnn``. They look like
ODS codes but use blocks we treat as reserved for fiction, like the example set's ``Y90001``;
the ``.example`` domains (RFC 2606) make every URI unmistakably fictional.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from carelight.synth import names

BASE_URI = "https://fhir.carelight.example"


# eq=False: sources are singletons, so identity hashing (fast, for the caches) is right.
@dataclass(frozen=True, slots=True, eq=False)
class Source:
    code: str  # the ODS-style code; also the output folder's name
    kind: str  # "gp", "trust", "council" or "carehome"
    name: str
    towns: tuple[int, ...]  # indexes into names.TOWNS that the source serves
    phone: str
    street: str

    @property
    def base(self) -> str:
        return f"{BASE_URI}/{self.code}"

    @property
    def uri(self) -> str:
        """``meta.source`` of every resource this system wrote."""
        return f"{self.base}/fhir"

    @property
    def patient_id_system(self) -> str:
        return f"{self.base}/patient-id"

    @property
    def org_id(self) -> str:
        return f"{self.code}-org"

    @property
    def town(self) -> str:
        return names.TOWNS[self.towns[0]][0]


# fmt: off
GP_PRACTICES = (
    Source("Y99101", "gp", "Brackenfold Medical Centre", (0,), "0113 496 0101", "1 Market Place"),
    Source("Y99102", "gp", "Canal Street Surgery", (0,), "0113 496 0102", "22 Canal Street"),
    Source("Y99103", "gp", "The Weavers Practice", (0,), "0113 496 0103", "5 Weavers Row"),
    Source("Y99104", "gp", "Harrowgill Health Centre", (1,), "0113 496 0104", "Gill Lane"),
    Source("Y99105", "gp", "Moorside Surgery", (1, 6), "0113 496 0105", "40 Moor Lane"),
    Source("Y99106", "gp", "Kelderby Family Practice", (2,), "0113 496 0106", "3 Kirkgate"),
    Source("Y99107", "gp", "Millbeck Medical Practice", (3,), "0113 496 0107", "Beck Side"),
    Source("Y99108", "gp", "Thornleigh Group Practice", (4,), "0113 496 0108", "12 Station Road"),
    Source("Y99109", "gp", "Beckside Surgery", (4,), "0113 496 0109", "7 Bridge Street"),
    Source("Y99110", "gp", "Ashworth Bridge and Rydale Practice", (5, 6), "0113 496 0110",
           "The Old Mill, Mill Lane"),
)
TRUSTS = (
    Source("X9A", "trust", "Brackenfold and Harrowgill Teaching Hospitals NHS Trust", (0, 1, 2),
           "0113 496 0200", "Brackenfold General Hospital, Infirmary Road"),
    Source("X9B", "trust", "Thornleigh and Millbeck Hospitals NHS Foundation Trust", (4, 3, 5, 6),
           "0113 496 0300", "Thornleigh Royal Hospital, Hospital Lane"),
)
COUNCIL = Source("X99LB", "council", "Calderbrook Council Adult Social Care", (0, 1, 2, 3, 4, 5, 6),
                 "0113 496 0400", "Civic Centre, Town Hall Square")
CARE_HOMES = (
    Source("X9C01", "carehome", "Heather Lodge Care Home", (0, 2), "0113 496 0501", "14 Heath View"),
    Source("X9C02", "carehome", "The Laurels Residential Home", (1, 6), "0113 496 0502",
           "The Laurels, Laburnum Grove"),
    Source("X9C03", "carehome", "Beck View Nursing Home", (4, 3), "0113 496 0503", "2 Beck Side"),
    Source("X9C04", "carehome", "Rydale House", (5,), "0113 496 0504", "Rydale House, Town End"),
)
# fmt: on
ALL_SOURCES: tuple[Source, ...] = (*GP_PRACTICES, *TRUSTS, COUNCIL, *CARE_HOMES)
BY_CODE = {s.code: s for s in ALL_SOURCES}


def serving(sources: tuple[Source, ...], town: int) -> tuple[int, ...]:
    """Indexes of the sources that serve a town (the first one listed first)."""
    found = tuple(i for i, s in enumerate(sources) if town in s.towns)
    return found or tuple(range(len(sources)))


@dataclass(frozen=True, slots=True)
class Staff:
    """A Practitioner and their PractitionerRole at one source."""

    id: str
    role_id: str
    given: str
    family: str
    prefix: str | None
    gender: str
    role: str  # key into the care code list, or free text for roles without a code
    sds_id: str

    @property
    def display(self) -> str:
        return f"{self.prefix + ' ' if self.prefix else ''}{self.given} {self.family}"


# How many of each role a source employs (the people who appear as authors and performers).
STAFFING = {
    "gp": (("general_practitioner", 4), ("registered_nurse", 2)),
    "trust": (("ed_physician", 6), ("Consultant physician", 6), ("Consultant surgeon", 3)),
    "council": (("social_worker", 8), ("Occupational therapist", 2)),
    "carehome": (("registered_nurse", 2), ("Care home manager", 1)),
}
_STAFF_GIVEN = (
    ("female", "Amara"), ("male", "Liam"), ("female", "Sian"), ("male", "Tariq"),
    ("female", "Helen"), ("male", "Owen"), ("female", "Nisha"), ("male", "Gareth"),
    ("female", "Ruth"), ("male", "Kofi"), ("female", "Joanna"), ("male", "Piotr"),
    ("female", "Farah"), ("male", "Ewan"), ("female", "Megan"), ("male", "Rajesh"),
)  # fmt: skip
_STAFF_FAMILY = (
    "Okafor", "Brennan", "Hughes", "Rahman", "Lister", "Pryce", "Patel", "Evans", "Goldberg",
    "Asante", "Whitaker", "Zielinski", "Qureshi", "Mackay", "Dyson", "Iyer", "Marsden", "Oyelaran",
)  # fmt: skip


@cache
def staff(source: Source) -> tuple[Staff, ...]:
    """The source's staff; fixed (not seeded) so directory files are the same for every seed."""
    members = []
    offset = sum(ord(c) for c in source.code)
    n = 0
    for role, count in STAFFING[source.kind]:
        for _ in range(count):
            gender, given = _STAFF_GIVEN[(offset + n * 5) % len(_STAFF_GIVEN)]
            family = _STAFF_FAMILY[(offset * 3 + n * 7) % len(_STAFF_FAMILY)]
            doctor = role in ("general_practitioner", "ed_physician") or role.startswith(
                "Consultant"
            )
            members.append(
                Staff(
                    id=f"{source.code}-prac-{n + 1}",
                    role_id=f"{source.code}-role-{n + 1}",
                    given=given,
                    family=family,
                    prefix="Dr" if doctor else None,
                    gender=gender,
                    role=role,
                    sds_id=f"5559{offset % 100:02d}{n + 1:06d}",
                )
            )
            n += 1
    return tuple(members)


def staff_in_role(source: Source, *roles: str) -> tuple[Staff, ...]:
    return tuple(s for s in staff(source) if s.role in roles)
