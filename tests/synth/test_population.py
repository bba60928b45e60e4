"""The population's statistics, checked on the written output against the stated model.

Tolerances: a count of events that each happen with probability p_i has standard deviation
sqrt(sum p_i (1 - p_i)) (a Poisson-binomial; a binomial when the p_i are equal). Every check
allows 4 standard deviations plus one, so a correct generator fails a given check about once in
15,000 runs, while a wrong rate (say prevalence off by a third in a large band) is caught.
The tests use fixed seeds, so they are deterministic anyway; the tolerance is what makes them
meaningful rather than tuned to one seed.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import date

from carelight.synth import rates
from carelight.synth.codes import NHS_NUMBER, codelist
from carelight.synth.health import expected_prevalence
from carelight.synth.population import REFERENCE_DATE, YEAR
from carelight.synth.sources import BY_CODE

REFERENCE = date.fromordinal(REFERENCE_DATE).isoformat()
CONDITION_OF_CODE = {
    item.code: (key if not key.startswith("cancer_") else "cancer")
    for key, item in codelist("conditions").items()
    if not key.startswith("acute_")
}


def within(observed: float, expected: float, variance: float) -> bool:
    return abs(observed - expected) <= 4 * math.sqrt(variance) + 1


def residents(synth):
    """(GP folder, Patient) of everyone registered with a practice on the reference date."""
    registered = set()
    for folder, episode in synth.resources("EpisodeOfCare"):
        if BY_CODE[folder].kind != "gp":
            continue
        period = episode["period"]
        if period["start"] <= REFERENCE and ("end" not in period or period["end"] > REFERENCE):
            registered.add(episode["patient"]["reference"].removeprefix("Patient/"))
    found = []
    for folder, patient in synth.resources("Patient"):
        if patient["id"] in registered:
            died = patient.get("deceasedDateTime")
            if died is None or died > REFERENCE:
                found.append((folder, patient))
    return found


def age_on_reference(patient: dict) -> float:
    birth = date.fromisoformat(patient["birthDate"]).toordinal()
    return (REFERENCE_DATE - birth) / YEAR


def test_everyone_registered_on_the_reference_date_is_one_person(medium):
    found = residents(medium)
    person_of = {row["patient_id"]: row["person_key"] for row in medium.truth}
    people = Counter(person_of[p["id"]] for _, p in found)
    assert max(people.values()) == 1
    # Around 86 % of everyone ever in the data lives here at mid-2025.
    assert 0.8 * medium.people < len(found) < 0.92 * medium.people


def test_age_and_sex_structure_follows_the_england_pyramid(medium):
    found = residents(medium)
    n = len(found)
    total_share = sum(rates.BAND_SHARE)
    bands = Counter()
    males = 0
    expected_males = 0.0
    for _, patient in found:
        age = age_on_reference(patient)
        band = min(int(age // 5), len(rates.FIVE_YEAR_BANDS) - 1)
        bands[band] += 1
        males += patient["gender"] == "male"
    for band, share in enumerate(rates.BAND_SHARE):
        p = share / total_share
        assert within(bands[band], n * p, n * p * (1 - p)), (
            rates.FIVE_YEAR_BANDS[band],
            bands[band],
            n * p,
        )
        expected_males += bands[band] * rates.BAND_MALE_SHARE[band]
    assert within(males, expected_males, n * 0.25)


def test_condition_prevalence_by_age_band_follows_the_qof_like_tables(medium):
    found = residents(medium)
    patient_conditions: dict[str, set[str]] = defaultdict(set)
    for folder, condition in medium.resources("Condition"):
        if (
            BY_CODE[folder].kind != "gp"
            or condition["clinicalStatus"]["coding"][0]["code"] != "active"
        ):
            continue
        code = condition["code"]["coding"][0]["code"]
        if code in CONDITION_OF_CODE and condition["onsetDateTime"] <= REFERENCE:
            patient_conditions[condition["subject"]["reference"]].add(CONDITION_OF_CODE[code])
    for condition in rates.CONDITIONS:
        observed = Counter()
        expected = Counter()
        variance = Counter()
        for _, patient in found:
            age = age_on_reference(patient)
            band = rates.prevalence_band(age)
            p = expected_prevalence(condition, age)
            expected[band] += p
            variance[band] += p * (1 - p)
            observed[band] += condition in patient_conditions[f"Patient/{patient['id']}"]
        for band in range(len(rates.PREVALENCE_BANDS)):
            assert within(observed[band], expected[band], variance[band]), (
                condition,
                rates.PREVALENCE_BANDS[band],
                observed[band],
                round(expected[band], 1),
            )
        # And over all ages together.
        assert within(sum(observed.values()), sum(expected.values()), sum(variance.values()))


def test_conditions_cluster_in_the_same_people(medium):
    """The copula makes multimorbidity more common than if conditions were independent."""
    per_patient = Counter()
    for folder, condition in medium.resources("Condition"):
        if (
            BY_CODE[folder].kind == "gp"
            and condition["code"]["coding"][0]["code"] in CONDITION_OF_CODE
        ):
            per_patient[condition["subject"]["reference"]] += 1
    assert sum(1 for n in per_patient.values() if n >= 3) > 0.04 * medium.people


def _patients_by_kind(synth):
    by_kind = defaultdict(list)
    for folder, patient in synth.resources("Patient"):
        by_kind[BY_CODE[folder].kind].append(patient)
    return by_kind


def test_about_30_percent_of_social_care_records_lack_an_nhs_number(medium):
    by_kind = _patients_by_kind(medium)
    records = by_kind["council"] + by_kind["carehome"]
    n = len(records)
    assert n > 80
    missing = sum(1 for p in records if not any(i["system"] == NHS_NUMBER for i in p["identifier"]))
    assert within(missing, 0.30 * n, n * 0.30 * 0.70), (missing, n)
    assert all(any(i["system"] == NHS_NUMBER for i in p["identifier"]) for p in by_kind["gp"])


def test_ground_truth_clusters_every_patient_once(medium):
    patients = {p["id"] for _, p in medium.resources("Patient")}
    rows = medium.truth
    assert len(rows) == len(patients) == len({r["patient_id"] for r in rows})
    assert {r["patient_id"] for r in rows} == patients
    for row in rows:
        assert row["patient_id"].startswith(f"{row['source']}-")
    sizes = Counter(r["person_key"] for r in rows)
    assert len(sizes) <= medium.people
    several = sum(1 for n in sizes.values() if n > 1)
    assert several > 0.3 * len(sizes)  # most people are known to more than one source
    assert max(sizes.values()) >= 4


def test_imperfections_appear_at_their_stated_rates(medium):
    patients = {p["id"]: (folder, p) for folder, p in medium.resources("Patient")}
    tags_by_kind = defaultdict(Counter)
    records_by_kind = Counter()
    gp_birth = {}
    for row in medium.truth:
        folder, _ = patients[row["patient_id"]]
        kind = BY_CODE[folder].kind
        records_by_kind[kind] += 1
        for tag in filter(None, row["imperfections"].split(";")):
            tags_by_kind[kind][tag] += 1
        if kind == "gp":
            gp_birth[row["person_key"]] = patients[row["patient_id"]][1]["birthDate"]
    for tag, table in (("nickname", rates.NICKNAME), ("name-typo", rates.TYPO)):
        for kind in ("trust", "council"):
            n = records_by_kind[kind]
            # Nicknames exist only for some names, so their rate is an upper bound.
            low = 0.2 if tag == "nickname" else 1.0
            observed = tags_by_kind[kind][tag]
            assert observed <= table[kind] * n + 4 * math.sqrt(n * table[kind]) + 1, (tag, kind)
            assert observed >= low * table[kind] * n - 4 * math.sqrt(n * table[kind]) - 1, (
                tag,
                kind,
            )
    assert sum(c["dob-day-month-swapped"] for c in tags_by_kind.values()) > 0
    assert sum(c["old-address"] for k, c in tags_by_kind.items() if k != "gp") > 0
    assert tags_by_kind["gp"]["no-nhs-number"] == tags_by_kind["gp"]["name-typo"] == 0
    # The tags describe what is really in the records.
    for row in medium.truth:
        _, patient = patients[row["patient_id"]]
        tags = set(row["imperfections"].split(";"))
        has_number = any(i["system"] == NHS_NUMBER for i in patient["identifier"])
        assert has_number != ("no-nhs-number" in tags)
        if "dob-day-month-swapped" in tags and row["person_key"] in gp_birth:
            true_birth = gp_birth[row["person_key"]]
            assert patient["birthDate"] == f"{true_birth[:4]}-{true_birth[8:10]}-{true_birth[5:7]}"


def test_national_data_opt_outs_are_a_few_percent(medium):
    from carelight.synth import person

    opted_out = {c["patient"]["reference"] for _, c in medium.resources("Consent")}
    person_of = {row["patient_id"]: row["person_key"] for row in medium.truth}
    recorded = {person_of[ref.removeprefix("Patient/")] for ref in opted_out}
    launched = date(2018, 5, 25).toordinal()
    people = [person(5, i) for i in range(medium.people)]  # the medium set's seed
    chose = {p.key for p in people if p.health.opt_out is not None}
    assert recorded == chose  # every choice is recorded, in the GP record
    eligible = sum(1 for p in people if p.data_end > launched)
    rate = rates.NATIONAL_DATA_OPT_OUT
    assert within(len(chose), rate * eligible, eligible * rate * (1 - rate))
    for _, consent in medium.resources("Consent"):
        assert consent["provision"]["type"] == "deny"
        assert consent["scope"]["coding"][0]["code"] == "patient-privacy"
        purposes = {c["code"] for c in consent["provision"]["purpose"]}
        assert purposes == {"HRESCH", "HOPERAT"}


def test_results_drift_with_disease(medium):
    """HbA1c is higher in people with type 2 diabetes; eGFR lower with CKD."""
    diabetic, ckd = set(), set()
    for _folder, condition in medium.resources("Condition"):
        code = condition["code"]["coding"][0]["code"]
        if CONDITION_OF_CODE.get(code) == "type2_diabetes":
            diabetic.add(condition["subject"]["reference"])
        if CONDITION_OF_CODE.get(code) == "ckd":
            ckd.add(condition["subject"]["reference"])
    values = defaultdict(list)
    for _, obs in medium.resources("Observation"):
        code = obs["code"]["coding"][0]["code"]
        subject = obs["subject"]["reference"]
        if code == "59261-8":
            values["hba1c", subject in diabetic].append(obs["valueQuantity"]["value"])
        if code == "62238-1":
            values["egfr", subject in ckd].append(obs["valueQuantity"]["value"])
    mean = {k: sum(v) / len(v) for k, v in values.items()}
    assert mean["hba1c", True] > mean["hba1c", False] + 10
    assert mean["egfr", True] < mean["egfr", False] - 15
