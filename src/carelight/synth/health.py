"""What happens to a person's health and care: conditions, hospital visits, social care.

``plan_health`` adds a ``Health`` to a Person, drawn from its own seeded stream. This is the
truth the sources record (each in its own way, see gp.py, hospital.py, socialcare.py).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from statistics import NormalDist

from carelight.synth import names, rates
from carelight.synth.population import WINDOW_END, YEAR, Person, person_rng
from carelight.synth.sources import CARE_HOMES, TRUSTS, serving

_NORMAL = NormalDist()


@dataclass(slots=True)
class HospitalEvent:
    kind: str  # "ae" (A&E attendance), "emergency" (admitted via A&E), "elective"
    trust: int
    start: int  # day
    start_minute: int  # minutes after midnight
    end: int
    diagnosis: str  # key into the icd10 code list
    procedure: str | None = None  # key into the procedures code list
    bloods: bool = False
    died: bool = False


@dataclass(slots=True)
class SocialCare:
    referral: int
    referral_source: str  # "hospital", "gp", "family" or "self"
    assessment: int
    package_start: int
    package_end: int | None  # home care ends on moving into a care home, death or leaving
    care_home: int | None  # index into sources.CARE_HOMES
    care_home_start: int | None
    care_home_end: int | None
    carer: tuple[str, str, str, str] | None  # (relationship code, given, family, gender)
    needs: tuple[int, ...]  # per Care Act outcome: 0 independent, 1 some help, 2 unable


@dataclass(slots=True)
class Health:
    conditions: dict[str, int]  # condition key -> onset day
    cancer_site: str | None  # "breast", "prostate", "colon" or "lung"
    smoking: str  # "never_smoked", "ex_smoker" or "smoker"
    bmi: float  # baseline body mass index
    allergies: tuple[str, ...]
    opt_out: int | None  # day a national data opt-out was registered
    hospital: list[HospitalEvent] = field(default_factory=list)
    social_care: SocialCare | None = None


# -- long-term conditions -----------------------------------------------------------------------


def expected_prevalence(condition: str, age: float, factor: float = 1.0) -> float:
    """The chance a person of ``age`` has ``condition`` recorded (the model the tests check)."""
    if age < rates.ONSET[condition][0]:
        return 0.0
    return min(0.95, rates.PREVALENCE[condition][rates.prevalence_band(age)] * factor)


@cache
def _threshold(probability: float) -> float:
    if probability <= 0:
        return -math.inf
    return _NORMAL.inv_cdf(probability)


def _conditions(rng: random.Random, person: Person) -> dict[str, int]:
    """Conditions present at the person's status date, with onset days.

    A Gaussian copula: every condition's latent variable shares a common factor, so
    conditions cluster in the same people while each keeps its stated prevalence.
    """
    age = person.age_at(person.status_date)
    factor = rates.DECEDENT_PREVALENCE_FACTOR if person.fate == "died" else 1.0
    rho = rates.MULTIMORBIDITY_CORRELATION
    shared = rng.gauss(0, 1)
    found: dict[str, int] = {}
    for condition in rates.CONDITIONS:
        latent = rho * shared + math.sqrt(1 - rho * rho) * rng.gauss(0, 1)
        if latent < _threshold(expected_prevalence(condition, age, factor)):
            earliest, longest = rates.ONSET[condition]
            years_back = rng.random() * min(age - earliest, longest)
            found[condition] = person.status_date - int(years_back * YEAR)
    return found


# -- hospital ---------------------------------------------------------------------------------

# (diagnosis, weight, who: "child", "adult", "older" or a condition the person must have)
_AE_DIAGNOSES = {
    "child": (
        ("urti", 5), ("gastroenteritis", 3), ("abdominal_pain", 2), ("wrist_fracture", 2),
        ("ankle_sprain", 3), ("concussion", 2), ("appendicitis", 0.5),
    ),
    "adult": (
        ("chest_pain", 4), ("abdominal_pain", 4), ("ankle_sprain", 3), ("wrist_fracture", 1),
        ("cellulitis", 2), ("uti", 1), ("syncope", 1), ("appendicitis", 0.6),
        ("gallstones", 0.6), ("pneumonia", 1), ("mi", 0.5), ("stroke", 0.3),
    ),
    "older": (
        ("hip_fracture", 1.5), ("wrist_fracture", 1.5), ("pneumonia", 4), ("uti", 3),
        ("chest_pain", 3), ("syncope", 2), ("stroke", 1.2), ("mi", 1), ("aki", 1),
        ("hyponatraemia", 0.8), ("cellulitis", 2), ("abdominal_pain", 2),
    ),
}  # fmt: skip
_CONDITION_DIAGNOSES = (
    ("asthma", "asthma_attack", 3), ("copd", "copd_exacerbation", 5),
    ("heart_failure", "heart_failure_acute", 5), ("atrial_fibrillation", "af_fast", 2.5),
    ("type2_diabetes", "hypoglycaemia", 0.7), ("dementia", "delirium", 3),
)  # fmt: skip
# The chance an A&E attendance with this diagnosis ends in admission (others: 8 %).
_ADMIT = {
    "hip_fracture": 1.0, "stroke": 1.0, "mi": 1.0, "appendicitis": 1.0, "pneumonia": 0.75,
    "heart_failure_acute": 0.8, "copd_exacerbation": 0.55, "aki": 0.8, "delirium": 0.7,
    "hyponatraemia": 0.7, "uti": 0.3, "cellulitis": 0.25, "syncope": 0.3, "chest_pain": 0.2,
    "af_fast": 0.45, "asthma_attack": 0.25, "hypoglycaemia": 0.3, "gallstones": 0.4,
    "abdominal_pain": 0.15,
}  # fmt: skip
_PROCEDURE = {
    "hip_fracture": "hip_replacement", "appendicitis": "appendicectomy", "mi": "coronary_stent",
    "chest_pain": "ecg", "pneumonia": "chest_xray", "af_fast": "ecg",
}  # fmt: skip
_ELECTIVE = (
    ("hip_osteoarthritis", "hip_replacement", 35), ("knee_osteoarthritis", "knee_replacement", 35),
    ("gallstones", "cholecystectomy", 15), ("abdominal_pain", "colonoscopy", 15),
)  # fmt: skip
_DEATH_DIAGNOSES = (("pneumonia", 4), ("stroke", 2), ("heart_failure_acute", 2), ("aki", 1))


def _weighted(rng: random.Random, options) -> str:
    total = sum(w for _, w in options)
    u = rng.random() * total
    for value, w in options:
        u -= w
        if u < 0:
            return value
    return options[-1][0]


def _ae_diagnosis(rng: random.Random, age: float, conditions: dict[str, int], day: int) -> str:
    group = "child" if age < 18 else ("adult" if age < 65 else "older")
    options = list(_AE_DIAGNOSES[group])
    options += [(d, w) for c, d, w in _CONDITION_DIAGNOSES if conditions.get(c, 10**9) <= day]
    if age >= 80:
        options = [(d, w * 2 if d == "hip_fracture" else w) for d, w in options]
    return _weighted(rng, options)


def _trust(rng: random.Random, person: Person, day: int) -> int:
    home = person.trust_on(day)
    return home if rng.random() < 0.92 else (home + 1) % len(TRUSTS)


def _length_of_stay(rng: random.Random, age: float, diagnosis: str) -> int:
    mean = 14 if diagnosis == "hip_fracture" else (3 if age < 65 else 7 if age < 80 else 10)
    return max(1, int(rng.expovariate(1 / mean)) + 1)


def _hospital(rng: random.Random, person: Person, conditions: dict[str, int]) -> list:
    events: list[HospitalEvent] = []
    day = person.data_start
    while True:
        age = person.age_at(day)
        active = sum(1 for onset in conditions.values() if onset <= day)
        rate = rates.by_age(rates.AE_RATE, age) + rates.AE_RATE_PER_CONDITION * active
        day += int(rng.expovariate(rate) * YEAR) + 1
        if day >= person.data_end:
            break
        age = person.age_at(day)
        diagnosis = _ae_diagnosis(rng, age, conditions, day)
        minute = rng.randrange(0, 24 * 60)
        trust = _trust(rng, person, day)
        if rng.random() < _ADMIT.get(diagnosis, 0.08):
            end = min(day + _length_of_stay(rng, age, diagnosis), person.data_end)
            events.append(
                HospitalEvent("emergency", trust, day, minute, end, diagnosis,
                              _PROCEDURE.get(diagnosis), bloods=True)
            )  # fmt: skip
            day = end
        else:
            procedure = (
                _PROCEDURE.get(diagnosis) if diagnosis in ("chest_pain", "af_fast") else None
            )
            events.append(
                HospitalEvent("ae", trust, day, minute, day, diagnosis, procedure,
                              bloods=age >= 18 and rng.random() < 0.45)
            )  # fmt: skip
    # Planned operations for people aged 50 and over.
    day = person.data_start
    while True:
        day += int(rng.expovariate(rates.ELECTIVE_RATE_50_PLUS) * YEAR) + 1
        if day >= person.data_end:
            break
        if person.age_at(day) < 50:
            continue
        diagnosis = _weighted(rng, [(i, w) for i, (_, _, w) in enumerate(_ELECTIVE)])
        reason, procedure, _ = _ELECTIVE[diagnosis]
        stay = 0 if procedure == "colonoscopy" else rng.randrange(1, 5)
        end = min(day + stay, person.data_end)
        events.append(
            HospitalEvent("elective", _trust(rng, person, day), day, 8 * 60, end, reason,
                          procedure, bloods=True)
        )  # fmt: skip
    # About 45 % of deaths happen in hospital, after an emergency admission.
    if person.death is not None and person.death <= WINDOW_END and rng.random() < 0.45:
        age = person.age_at(person.death)
        start = max(person.data_start, person.death - _length_of_stay(rng, age, "pneumonia"))
        events = [e for e in events if e.end < start]
        diagnosis = _weighted(rng, _DEATH_DIAGNOSES)
        events.append(
            HospitalEvent("emergency", _trust(rng, person, start), start, rng.randrange(1440),
                          person.death, diagnosis, None, bloods=True, died=True)
        )  # fmt: skip
    events.sort(key=lambda e: (e.start, e.start_minute))
    return events


# -- social care --------------------------------------------------------------------------------

CARE_ACT_OUTCOMES = 10  # the eligibility outcomes of the Care Act 2014 regulations


def _social_care(
    rng: random.Random, person: Person, conditions: dict[str, int], hospital: list
) -> SocialCare | None:
    adult = person.birth + int(18 * YEAR) + 1
    earliest = max(person.data_start, adult)
    latest = person.data_end - 45  # leave time for the assessment and the package to start
    if latest <= earliest:
        return None
    age = person.age_at(person.status_date)
    chance = rates.by_age(rates.SOCIAL_CARE, age) if age >= 18 else 0.0
    if "dementia" in conditions:
        chance = min(0.9, chance * rates.SOCIAL_CARE_DEMENTIA_FACTOR)
    trigger = next(
        (
            e.end
            for e in hospital
            if e.diagnosis == "hip_fracture"
            and not e.died
            and earliest <= e.end <= latest
            and rng.random() < 0.5
        ),
        None,
    )
    if trigger is None and rng.random() >= chance:
        return None
    if trigger is not None:
        referral, source = trigger, "hospital"
    else:
        # Need grows with age: referrals come late in a person's time in the data.
        referral = latest - int((latest - earliest) * rng.random() ** 2)
        source = _weighted(rng, (("gp", 40), ("family", 35), ("self", 25)))
    assessment = min(referral + rng.randrange(5, 29), person.data_end)
    package_start = min(assessment + rng.randrange(7, 22), person.data_end)
    end_of_data = person.data_end if person.data_end < WINDOW_END else None
    dementia = "dementia" in conditions
    care_home = care_home_start = None
    share = rates.CARE_HOME_SHARE_DEMENTIA if dementia else rates.CARE_HOME_SHARE
    if age >= 65 and person.data_end - package_start > 90 and rng.random() < share:
        care_home_start = (
            package_start + 60 + int(rng.random() * (person.data_end - package_start - 60))
        )
        town = person.address_on(care_home_start).town
        care_home = rng.choice(serving(CARE_HOMES, town))
    package_end = care_home_start if care_home_start is not None else end_of_data
    carer = None
    if rng.random() < rates.UNPAID_CARER:
        carer = _carer(rng, person, referral)
    severity = 1.0 + (0.8 if dementia else 0.0) + max(0.0, (age - 75) / 20)
    needs = tuple(
        min(2, int(rng.random() * severity + (0.5 if i < 6 else 0.0)))
        for i in range(CARE_ACT_OUTCOMES)
    )
    return SocialCare(
        referral, source, assessment, package_start, package_end, care_home,
        care_home_start, end_of_data if care_home is not None else None, carer, needs,
    )  # fmt: skip


def _carer(rng: random.Random, person: Person, day: int) -> tuple[str, str, str, str]:
    age = person.age_at(day)
    family = person.family_on(day)
    if age < 88 and rng.random() < 0.45:
        gender = "male" if person.sex == "female" else "female"
        spouse_birth_year = date.fromordinal(person.birth).year + rng.randrange(-4, 5)
        return ("SPS", rng.choice(names.GIVEN[(gender, names.era(spouse_birth_year))]), family,
                gender)  # fmt: skip
    relationship = _weighted(rng, (("DAU", 55), ("SON", 30), ("FRND", 10), ("NBOR", 5)))
    gender = (
        "female"
        if relationship == "DAU"
        else "male"
        if relationship == "SON"
        else (rng.choice(("female", "male")))
    )
    child_birth_year = 2025 - max(20, int(age) - 28)
    if relationship in ("FRND", "NBOR"):
        family = rng.choice(names.FAMILY)
    elif gender == "female" and rng.random() < 0.5:
        family = rng.choice(names.FAMILY)  # a married daughter
    return (relationship, rng.choice(names.GIVEN[(gender, names.era(child_birth_year))]),
            family, gender)  # fmt: skip


# -- putting it together -------------------------------------------------------------------------


def plan_health(seed: int, person: Person) -> Health:
    rng = person_rng(seed, person.index, "health")
    conditions = _conditions(rng, person)
    cancer_site = None
    if "cancer" in conditions:
        options = (
            (("breast", 60), ("colon", 20), ("lung", 20))
            if person.sex == "female"
            else (("prostate", 55), ("colon", 25), ("lung", 20))
        )
        cancer_site = _weighted(rng, options)
    age = person.age_at(person.status_date)
    if age < 16:
        smoking = "never_smoked"
    else:
        smoking = _weighted(rng, (("never_smoked", 58), ("ex_smoker", 29), ("smoker", 13)))
    bmi = max(15.0, rng.gauss(27.5 if age >= 18 else 18 + age * 0.3, 4.5))
    if "type2_diabetes" in conditions:
        bmi += 4.0
    allergies = tuple(name for name, p in rates.ALLERGY if rng.random() < p)
    opt_out = None
    if rng.random() < rates.NATIONAL_DATA_OPT_OUT:
        opened = max(person.data_start, date(2018, 5, 25).toordinal())
        if opened < person.data_end:
            opt_out = opened + int(rng.random() * (person.data_end - opened))
    hospital = _hospital(rng, person, conditions)
    health = Health(conditions, cancer_site, smoking, round(bmi, 1), allergies, opt_out, hospital)
    health.social_care = _social_care(rng, person, conditions, hospital)
    person.health = health
    return health
