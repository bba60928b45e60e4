"""Who lives in the synthetic area, and what happens to them between 2016 and 2025.

Everything about person ``index`` is drawn from one random stream seeded by (seed, index), so any
person can be regenerated alone, in any process, and the output is the same byte for byte.

A person is one of three kinds, drawn so that the people alive and living here at mid-2025 (the
``REFERENCE_DATE``) follow the England age and sex structure exactly in expectation:

- residents at mid-2025: age at that date drawn from the pyramid in ``rates``; some were born in
  the window (births), some moved here during it (arrivals), a few die in the second half of 2025;
- people who died before mid-2025: age at death from the distribution of deaths;
- people who moved away before mid-2025.

Dates are ``date.toordinal()`` integers throughout: they are cheap to compare and add to.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from functools import cache

from carelight.identity.nhs_number import nhs_number_check_digit
from carelight.synth import names, rates
from carelight.synth.sources import GP_PRACTICES, TRUSTS, serving

WINDOW_START = date(2016, 1, 1).toordinal()
WINDOW_END = date(2025, 12, 31).toordinal()
REFERENCE_DATE = date(2025, 6, 30).toordinal()  # ONS mid-year estimates are for 30 June
YEAR = 365.2425
MAX_PEOPLE = 900_000  # the NHS number scheme below gives each person a distinct number

# How many people live in each town (shares), roughly the practices' list sizes.
TOWN_WEIGHTS = (0.30, 0.18, 0.12, 0.08, 0.18, 0.08, 0.06)


@dataclass(frozen=True, slots=True)
class Address:
    line: str
    town: int  # index into names.TOWNS
    postcode: str

    @property
    def town_name(self) -> str:
        return names.TOWNS[self.town][0]


@dataclass(slots=True)
class Registration:
    """A registration with a GP practice (an index into sources.GP_PRACTICES)."""

    practice: int
    start: int
    end: int | None  # the day the registration ended, or None if still registered


@dataclass(slots=True)
class Person:
    index: int
    sex: str  # "female" or "male" (FHIR administrative gender)
    birth: int
    fate: str  # "resident", "died" or "moved-away"
    death: int | None
    left: int | None  # the day they moved away
    arrived: int | None  # the day they moved here, when that was during the window
    given: str
    middle: str | None
    family: str  # surname at the end of their time in the data
    previous_family: str | None  # surname before a change during the window
    family_changed: int | None
    nhs_number: str
    addresses: list[tuple[int, Address]]  # (from day, address), oldest first
    registrations: list[Registration]
    data_start: int
    data_end: int
    status_date: int  # the date conditions are assessed at: mid-2025, or death / moving away
    # Filled in by health.plan_health:
    health: object = field(default=None)

    @property
    def key(self) -> str:
        """The ground-truth person key (never written to a FHIR resource)."""
        return f"P{self.index:07d}"

    def age_at(self, day: int) -> float:
        return (day - self.birth) / YEAR

    def address_on(self, day: int) -> Address:
        current = self.addresses[0][1]
        for since, address in self.addresses:
            if since <= day:
                current = address
            else:
                break
        return current

    def family_on(self, day: int) -> str:
        if self.family_changed is not None and day < self.family_changed:
            return self.previous_family or self.family
        return self.family

    def trust_on(self, day: int) -> int:
        return serving(TRUSTS, self.address_on(day).town)[0]

    def registration_on(self, day: int) -> Registration | None:
        for registration in self.registrations:
            if registration.start <= day and (registration.end is None or day < registration.end):
                return registration
        return None


def person_rng(seed: int, index: int, stream: str = "person") -> random.Random:
    # String seeds are hashed with SHA-512 by random.seed, so this is stable across runs,
    # platforms and Python versions.
    return random.Random(f"carelight-synth/{seed}/{stream}/{index}")


def nhs_number_for(seed: int, index: int) -> str:
    """A distinct valid NHS number in the 999 test range for each index below MAX_PEOPLE.

    Digits 4-8 are a seeded permutation of ``index % 100000``; the ninth digit is the k-th of the
    nine or ten digits that give a valid modulus 11 check digit, k = ``index // 100000``. Drawing
    numbers at random instead would give duplicates: the test range holds only ~909,000.
    """
    if not 0 <= index < MAX_PEOPLE:
        raise ValueError(f"the generator supports at most {MAX_PEOPLE:,} people")
    multiplier, offset = _nhs_number_permutation(seed)
    middle = (index % 100_000 * multiplier + offset) % 100_000
    stem = f"999{middle:05d}"
    valid = [d for d in range(10) if nhs_number_check_digit(f"{stem}{d}") is not None]
    ninth = valid[index // 100_000]
    return f"{stem}{ninth}{nhs_number_check_digit(f'{stem}{ninth}')}"


@cache
def _nhs_number_permutation(seed: int) -> tuple[int, int]:
    rng = random.Random(f"carelight-synth/{seed}/nhs-number")
    multiplier = rng.randrange(1, 100_000) * 10 + rng.choice((1, 3, 7, 9))  # coprime with 10
    return multiplier, rng.randrange(100_000)


# -- drawing ages ---------------------------------------------------------------------------


def _cumulative(weights) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


_PYRAMID = _cumulative(rates.BAND_SHARE)
_MOVERS = _cumulative(
    s * (2.0 if 18 <= lo <= 39 else 1.0)
    for (lo, _), s in zip(rates.FIVE_YEAR_BANDS, rates.BAND_SHARE, strict=True)
)
_DEATHS = _cumulative(share for _, _, share in rates.DEATH_AGE)
_TOWNS = _cumulative(TOWN_WEIGHTS)


def _pick(rng: random.Random, cumulative: list[float]) -> int:
    u = rng.random() * cumulative[-1]
    for i, c in enumerate(cumulative):
        if u < c:
            return i
    return len(cumulative) - 1


def _age_in_band(rng: random.Random, lo: int, hi: int) -> float:
    if lo >= 90:  # 90+: ages thin out quickly
        return min(lo + rng.expovariate(1 / 4.0), 104.5)
    return lo + rng.random() * (hi - lo + 1)


def _pyramid_age_and_sex(rng: random.Random, cumulative: list[float]) -> tuple[float, str]:
    band = _pick(rng, cumulative)
    lo, hi = rates.FIVE_YEAR_BANDS[band]
    sex = "male" if rng.random() < rates.BAND_MALE_SHARE[band] else "female"
    return _age_in_band(rng, lo, hi), sex


def _uniform_day(rng: random.Random, start: int, end: int) -> int:
    """A day in [start, end); ``start`` if the range is empty."""
    return start + int(rng.random() * (end - start)) if end > start else start


# -- addresses and names ---------------------------------------------------------------------


def _address(rng: random.Random, town: int) -> Address:
    _, outward = names.TOWNS[town]
    letters = names.POSTCODE_LETTERS
    postcode = (
        f"{rng.choice(outward)} {rng.randrange(1, 10)}{rng.choice(letters)}{rng.choice(letters)}"
    )
    return Address(f"{rng.randrange(1, 180)} {rng.choice(names.STREETS)}", town, postcode)


def _given(rng: random.Random, sex: str, birth_year: int) -> str:
    return rng.choice(names.GIVEN[(sex, names.era(birth_year))])


# -- the person ------------------------------------------------------------------------------


def make_person(seed: int, index: int) -> Person:
    rng = person_rng(seed, index)
    u = rng.random()
    death = left = None
    if u < rates.SHARE_DIED:
        fate = "died"
        death = _uniform_day(rng, WINDOW_START, REFERENCE_DATE)
        band = _pick(rng, _DEATHS)
        lo, hi, _ = rates.DEATH_AGE[band]
        age = _age_in_band(rng, lo, hi) if lo < 95 else min(95 + rng.expovariate(1 / 3), 104.5)
        sex = "male" if rng.random() < 0.49 else "female"
        event = death
    elif u < rates.SHARE_DIED + rates.SHARE_MOVED_AWAY:
        fate = "moved-away"
        left = _uniform_day(rng, WINDOW_START, REFERENCE_DATE)
        age, sex = _pyramid_age_and_sex(rng, _MOVERS)
        event = left
    else:
        fate = "resident"
        age, sex = _pyramid_age_and_sex(rng, _PYRAMID)
        event = REFERENCE_DATE
    birth = event - int(age * YEAR)
    if fate == "resident":
        # A few residents die in the second half of 2025.
        half_year_risk = rates.by_age(rates.ANNUAL_MORTALITY, age) / 2
        if rng.random() < half_year_risk:
            death = _uniform_day(rng, REFERENCE_DATE + 1, WINDOW_END)

    arrived = None
    if birth >= WINDOW_START:
        if rng.random() < 0.15:  # moved here as a child rather than born here
            arrived = _uniform_day(rng, birth + 30, event)
    elif rng.random() < rates.SHARE_ARRIVED:
        arrived = _uniform_day(rng, WINDOW_START, event - 30)
    if arrived is not None and arrived >= event:
        arrived = None
    data_start = max(WINDOW_START, birth, arrived or 0)
    data_end = min(WINDOW_END, death or WINDOW_END, left or WINDOW_END)

    birth_year = date.fromordinal(birth).year
    given = _given(rng, sex, birth_year)
    middle = _given(rng, sex, birth_year) if rng.random() < 0.6 else None
    if middle == given:
        middle = None
    family = rng.choice(names.FAMILY)
    previous_family = family_changed = None
    if sex == "female":
        for year in range(2016, 2026):
            day = date(year, 1, 1).toordinal()
            if 20 <= (day - birth) / YEAR <= 45 and rng.random() < rates.MARRIAGE_NAME_CHANGE:
                change = _uniform_day(rng, max(day, data_start), min(day + 365, data_end))
                if data_start < change < data_end:
                    previous_family, family_changed = family, change
                    family = rng.choice([f for f in names.FAMILY if f != family])
                break

    addresses, registrations = _residence(rng, birth, data_start, data_end, death, left, arrived)
    return Person(
        index=index,
        sex=sex,
        birth=birth,
        fate=fate,
        death=death,
        left=left,
        arrived=arrived,
        given=given,
        middle=middle,
        family=family,
        previous_family=previous_family,
        family_changed=family_changed,
        nhs_number=nhs_number_for(seed, index),
        addresses=addresses,
        registrations=registrations,
        data_start=data_start,
        data_end=data_end,
        status_date=min(event, REFERENCE_DATE),
    )


def _residence(
    rng: random.Random,
    birth: int,
    data_start: int,
    data_end: int,
    death: int | None,
    left: int | None,
    arrived: int | None,
) -> tuple[list[tuple[int, Address]], list[Registration]]:
    """Addresses and GP registrations over the person's time in the area."""
    town = _pick(rng, _TOWNS)
    addresses: list[tuple[int, Address]] = []
    born_or_arrived_here = arrived is not None or birth >= WINDOW_START
    if not born_or_arrived_here and rng.random() < 0.3:
        # An address from before the window: what an out-of-date record may still hold.
        since = max(birth, WINDOW_START - int(rng.uniform(1, 8) * YEAR))
        addresses.append((since - int(5 * YEAR), _address(rng, town)))
        town = town if rng.random() < 0.7 else _pick(rng, _TOWNS)
    addresses.append((data_start, _address(rng, town)))

    practice = rng.choice(serving(GP_PRACTICES, town))
    if born_or_arrived_here:
        start = data_start + rng.randrange(7, 45)  # registering a birth or a move takes weeks
        start = min(start, data_end)
    else:
        start = max(birth + rng.randrange(7, 45), WINDOW_START - int(rng.uniform(0, 25) * YEAR))
    registrations = [Registration(practice, start, None)]

    day = data_start
    while True:
        rate = rates.by_age(rates.MOVE_RATE, (day - birth) / YEAR)
        day += int(rng.expovariate(rate) * YEAR) + 1
        if day >= data_end:
            break
        new_town = town if rng.random() < 0.8 else _pick(rng, _TOWNS)
        addresses.append((day, _address(rng, new_town)))
        current = registrations[-1]
        served = serving(GP_PRACTICES, new_town)
        must_change = current.practice not in served
        if must_change or rng.random() < rates.MOVE_CHANGES_PRACTICE / 2:
            # Never back to a practice they were with before: one record per practice.
            used = {r.practice for r in registrations}
            choices = [p for p in served if p not in used] or [
                p for p in range(len(GP_PRACTICES)) if p not in used
            ]
            change = day + rng.randrange(7, 60)
            if choices and current.start < change < data_end:
                current.end = change
                registrations.append(Registration(rng.choice(choices), change, None))
        town = new_town
    last = registrations[-1]
    if death is not None and death <= WINDOW_END:
        last.end = max(death, last.start + 1)
    elif left is not None:
        last.end = max(left, last.start + 1)
    return addresses, registrations
