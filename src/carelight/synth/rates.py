"""The epidemiology the synthetic population is drawn from, with its sources.

All figures are rounded approximations chosen to reproduce published English patterns; they
are not copied tables. docs/synth.md explains each one. Age bands are in completed years.
"""

from __future__ import annotations

# -- age and sex structure ------------------------------------------------------------------
# Share of the population in each five-year band (the last is 90+) and the share of each band
# that is male, approximating the ONS mid-year population estimates for England (mid-2022).
FIVE_YEAR_BANDS: tuple[tuple[int, int], ...] = (
    *tuple((lo, lo + 4) for lo in range(0, 90, 5)),
    (90, 104),
)
BAND_SHARE: tuple[float, ...] = (
    5.4, 5.9, 6.1, 5.8, 6.1, 6.6, 6.9, 6.7, 6.4, 6.1,  # 0-4 ... 45-49
    6.8, 6.8, 6.0, 5.1, 4.9, 4.0, 2.6, 1.6, 0.9,  # 50-54 ... 90+
)  # fmt: skip
BAND_MALE_SHARE: tuple[float, ...] = (
    0.512, 0.512, 0.512, 0.513, 0.508, 0.497, 0.494, 0.494, 0.494, 0.494,
    0.493, 0.493, 0.488, 0.482, 0.474, 0.462, 0.440, 0.405, 0.330,
)  # fmt: skip

# -- who leaves the population during the window --------------------------------------------
# Of everyone who ever lived in the area during 2016-2025: about 8 % died before mid-2025
# (England's crude death rate is about 9 per 1,000 a year) and about 6 % moved away.
SHARE_DIED = 0.08
SHARE_MOVED_AWAY = 0.06
# Residents at mid-2025 who arrived from elsewhere during the window (children born here are
# counted as births, not arrivals).
SHARE_ARRIVED = 0.12
# Age at death (ONS death registrations, rounded): band -> share of deaths.
DEATH_AGE: tuple[tuple[int, int, float], ...] = (
    (0, 17, 0.01), (18, 49, 0.04), (50, 64, 0.10), (65, 74, 0.15),
    (75, 84, 0.29), (85, 94, 0.33), (95, 104, 0.08),
)  # fmt: skip
# Annual mortality by age for the second half of 2025 (residents still alive at mid-2025).
ANNUAL_MORTALITY: tuple[tuple[int, float], ...] = (
    (0, 0.0004), (18, 0.001), (50, 0.004), (65, 0.012), (75, 0.035), (85, 0.11), (95, 0.25),
)  # fmt: skip
# Moves of house within the area, per person per year, by age; a move changes GP practice
# with this probability.
MOVE_RATE: tuple[tuple[int, float], ...] = ((0, 0.05), (18, 0.10), (35, 0.05), (65, 0.025))
MOVE_CHANGES_PRACTICE = 0.4

# -- long-term conditions -------------------------------------------------------------------
# Prevalence of a recorded diagnosis by age band, calibrated so that, over the age structure
# above, the all-ages figure is close to the QOF 2022-23 England register prevalence given in
# the comment (QOF registers use their own denominators: the adult ones are per patients
# aged 17/18+, so their all-ages equivalent is lower).
PREVALENCE_BANDS: tuple[tuple[int, int], ...] = (
    (0, 17), (18, 39), (40, 59), (60, 69), (70, 79), (80, 104),
)  # fmt: skip
PREVALENCE: dict[str, tuple[float, ...]] = {
    # QOF hypertension 14.4 % (all ages)
    "hypertension": (0.0, 0.02, 0.12, 0.30, 0.45, 0.55),
    # QOF diabetes 7.5 % of 17+ (type 2 is ~90 % of it)
    "type2_diabetes": (0.0005, 0.015, 0.07, 0.14, 0.18, 0.17),
    # QOF asthma 6.5 % of 6+
    "asthma": (0.06, 0.06, 0.065, 0.07, 0.07, 0.06),
    # QOF COPD 1.9 % (all ages)
    "copd": (0.0, 0.001, 0.015, 0.045, 0.065, 0.07),
    # QOF CKD stages 3-5 4.0 % of 18+
    "ckd": (0.0, 0.002, 0.012, 0.05, 0.12, 0.25),
    # QOF heart failure 1.1 % (all ages)
    "heart_failure": (0.0, 0.0005, 0.004, 0.015, 0.035, 0.08),
    # QOF atrial fibrillation 2.2 % (all ages)
    "atrial_fibrillation": (0.0, 0.0005, 0.006, 0.035, 0.08, 0.15),
    # QOF dementia 0.7 % (all ages); diagnosis rate about two thirds of true prevalence
    "dementia": (0.0, 0.0, 0.0005, 0.005, 0.025, 0.09),
    # QOF depression 13.2 % of 18+ (diagnosed since April 2006)
    "depression": (0.005, 0.13, 0.14, 0.12, 0.10, 0.10),
    # QOF cancer 3.5 % (all ages, diagnosed since April 2003)
    "cancer": (0.001, 0.005, 0.025, 0.07, 0.11, 0.13),
}
CONDITIONS: tuple[str, ...] = tuple(PREVALENCE)
# How strongly conditions cluster in the same people (multimorbidity): the correlation of the
# latent variables of a Gaussian copula. It leaves each condition's prevalence unchanged.
MULTIMORBIDITY_CORRELATION = 0.35
# Earliest age at diagnosis, and the longest time a diagnosis is carried back before the
# person's last observed date (so onsets are spread over the decades before).
ONSET: dict[str, tuple[int, int]] = {
    "hypertension": (25, 35),
    "type2_diabetes": (25, 30),
    "asthma": (2, 60),
    "copd": (40, 20),
    "ckd": (30, 15),
    "heart_failure": (40, 12),
    "atrial_fibrillation": (35, 15),
    "dementia": (55, 8),
    "depression": (14, 30),
    "cancer": (20, 15),
}
# People who died during the window had more illness than the living of the same age.
DECEDENT_PREVALENCE_FACTOR = 1.4

# -- choices ---------------------------------------------------------------------------------
# National data opt-out: 5.4 % of registered patients in England (NHS England, 2024).
NATIONAL_DATA_OPT_OUT = 0.054
# Recorded allergies: penicillin in about 6 % of GP records; peanut, latex rarer.
ALLERGY = (("penicillin", 0.06), ("peanut", 0.008), ("latex", 0.005))

# -- use of services -------------------------------------------------------------------------
# GP consultations a year by age (before long-term conditions add their reviews).
GP_CONSULTATIONS: tuple[tuple[int, float], ...] = (
    (0, 3.0), (5, 1.2), (18, 1.8), (45, 2.4), (65, 3.2), (75, 4.0),
)  # fmt: skip
# A&E attendances a year by age (England: about 0.4 per person a year overall), plus this
# much for each long-term condition; and the share of attendances that end in admission.
AE_RATE: tuple[tuple[int, float], ...] = (
    (0, 0.40), (5, 0.22), (18, 0.30), (65, 0.38), (80, 0.65),
)  # fmt: skip
AE_RATE_PER_CONDITION = 0.05
ADMISSION_SHARE: tuple[tuple[int, float], ...] = ((0, 0.10), (18, 0.20), (65, 0.35), (80, 0.50))
# Planned operations (hip/knee replacement, cholecystectomy, colonoscopy) a year, 50+.
ELECTIVE_RATE_50_PLUS = 0.03

# -- adult social care -------------------------------------------------------------------------
# Chance of ever being referred to adult social care during the window, by age at the end of
# the person's time in the data; dementia and a hip fracture raise it (NHS England ASC
# activity: about 2 % of adults get long-term support, rising steeply after 85).
SOCIAL_CARE: tuple[tuple[int, float], ...] = ((18, 0.012), (65, 0.04), (75, 0.10), (85, 0.28))
SOCIAL_CARE_DEMENTIA_FACTOR = 2.5
# Of those assessed, the share who move into a care home before the window ends.
CARE_HOME_SHARE = 0.3
CARE_HOME_SHARE_DEMENTIA = 0.6
# An unpaid carer is recorded for this share of social care users.
UNPAID_CARER = 0.55

# -- record imperfections (see imperfections.py) -----------------------------------------------
# Social care and care home records without an NHS number: about 30 % (the figure;
# consistent with ADASS/LGA reports of NHS number completeness in social care systems).
MISSING_NHS_NUMBER = {"gp": 0.0, "trust": 0.03, "council": 0.30, "carehome": 0.30}
NICKNAME = {"gp": 0.0, "trust": 0.04, "council": 0.10, "carehome": 0.12}
TYPO = {"gp": 0.0, "trust": 0.03, "council": 0.05, "carehome": 0.05}
DOB_DAY_MONTH_SWAPPED = {"gp": 0.0, "trust": 0.01, "council": 0.02, "carehome": 0.02}
STALE_ADDRESS = {"gp": 0.0, "trust": 0.04, "council": 0.05, "carehome": 0.05}
# Women who marry during the window and take a new surname, per year, aged 20-45.
MARRIAGE_NAME_CHANGE = 0.02


def by_age(table: tuple[tuple[int, float], ...], age: float) -> float:
    """The value for ``age`` from a (lowest age, value) step table."""
    value = table[0][1]
    for lowest, v in table:
        if age >= lowest:
            value = v
        else:
            break
    return value


def prevalence_band(age: float) -> int:
    for i, (lo, hi) in enumerate(PREVALENCE_BANDS):
        if lo <= age <= hi + 0.9999:
            return i
    return len(PREVALENCE_BANDS) - 1
