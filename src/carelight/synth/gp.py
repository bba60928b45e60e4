"""A person's GP records: one per practice they were registered with.

A GP record holds the registration (an EpisodeOfCare), the problem list (long-term conditions,
copied to a new practice on transfer, with their original onset dates), consultations, acute
problems, chronic disease reviews with results, repeat prescriptions, immunisations, allergies,
care plans and, for a few per cent, a national data opt-out (Consent).
"""

from __future__ import annotations

import random
from datetime import date

from carelight.synth import imperfections, measures, observe, rates
from carelight.synth.codes import codelist, hl7
from carelight.synth.fhir import Output, Record, category, day, instant, meta, ods_ref, org_ref, ref
from carelight.synth.population import WINDOW_START, YEAR, Person, Registration, person_rng
from carelight.synth.sources import GP_PRACTICES, TRUSTS, Source, staff_in_role

CONDITIONS = codelist("conditions")
MEDICINES = codelist("medicines")
VACCINES = codelist("vaccines")
ALLERGIES = codelist("allergies")
CARE = codelist("care")

ACTIVE = {"coding": [hl7("condition-clinical", "active", "Active").coding]}
RESOLVED = {"coding": [hl7("condition-clinical", "resolved", "Resolved").coding]}
CONFIRMED = {"coding": [hl7("condition-ver-status", "confirmed", "Confirmed").coding]}
PROBLEM = category(hl7("condition-category", "problem-list-item", "Problem List Item"))
COMMUNITY = category(hl7("medicationrequest-category", "community", "Community"))
CONTINUOUS = hl7(
    "medicationrequest-course-of-therapy", "continuous", "Continuous long term therapy"
).concept
ACUTE = hl7("medicationrequest-course-of-therapy", "acute", "Short course (acute) therapy").concept
AMBULATORY = hl7("v3-ActCode", "AMB", "ambulatory").coding
VIRTUAL = hl7("v3-ActCode", "VR", "virtual").coding
HOME = hl7("v3-ActCode", "HH", "home health").coding
ALLERGY_ACTIVE = {"coding": [hl7("allergyintolerance-clinical", "active", "Active").coding]}
ALLERGY_CONFIRMED = {
    "coding": [hl7("allergyintolerance-verification", "confirmed", "Confirmed").coding]
}
REGISTRATION_TYPE = [{"text": "GP registration (General Medical Services)"}]
DOSE = {"value": 1, "unit": "dose", "system": "http://unitsofmeasure.org", "code": "{dose}"}
DAYS_28 = {"value": 28, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}

# (medicine, dosage text, share of people with the condition who take it)
TREATMENT = {
    "hypertension": (("amlodipine_5mg", "One tablet once a day", 0.7),
                     ("ramipril_5mg", "One capsule once a day", 0.5),
                     ("indapamide_2_5mg", "One tablet each morning", 0.2)),
    "type2_diabetes": (("metformin_500mg", "One tablet twice a day with food", 0.85),
                       ("gliclazide_80mg", "One tablet twice a day with food", 0.25),
                       ("sitagliptin_100mg", "One tablet once a day", 0.15),
                       ("empagliflozin_10mg", "One tablet once a day", 0.25),
                       ("atorvastatin_20mg", "One tablet at night", 0.75)),
    "asthma": (("salbutamol_inhaler", "Two puffs when required", 0.95),
               ("beclometasone_inhaler", "Two puffs twice a day", 0.7)),
    "copd": (("salbutamol_inhaler", "Two puffs when required", 0.9),
             ("umeclidinium_vilanterol", "One inhalation once a day", 0.7)),
    "atrial_fibrillation": (("apixaban_5mg", "One tablet twice a day", 0.6),
                            ("edoxaban_60mg", "One tablet once a day", 0.25),
                            ("bisoprolol_2_5mg", "One tablet once a day", 0.6)),
    "heart_failure": (("bisoprolol_2_5mg", "One tablet once a day", 0.8),
                      ("ramipril_5mg", "One capsule once a day", 0.7),
                      ("furosemide_40mg", "One tablet each morning", 0.7)),
    "ckd": (("ramipril_5mg", "One capsule once a day", 0.5),
            ("atorvastatin_20mg", "One tablet at night", 0.6)),
}  # fmt: skip
REVIEWED = ("hypertension", "type2_diabetes", "asthma", "copd", "ckd", "heart_failure",
            "atrial_fibrillation", "dementia")  # fmt: skip
ACUTE_PROBLEMS = {
    "child": (("acute_urti", 5), ("acute_otitis_media", 3), ("acute_headache", 1)),
    "adult": (("acute_urti", 3), ("acute_back_pain", 3), ("acute_uti", 2), ("acute_sinusitis", 2),
              ("acute_headache", 1), ("acute_bronchitis", 1), ("acute_cellulitis", 1)),
}  # fmt: skip
INFECTIONS = {
    "acute_urti",
    "acute_uti",
    "acute_bronchitis",
    "acute_otitis_media",
    "acute_sinusitis",
    "acute_cellulitis",
}
ANTIBIOTIC_FOR = {"acute_otitis_media", "acute_sinusitis", "acute_bronchitis", "acute_cellulitis"}


def _condition_key(person: Person, condition: str) -> str:
    if condition == "cancer":
        return f"cancer_{person.health.cancer_site}"
    return condition


def medicines_for(rng: random.Random, person: Person) -> list[tuple[str, str, str]]:
    """(medicine, dosage, condition) the person is prescribed, one entry per medicine."""
    chosen: dict[str, tuple[str, str, str]] = {}
    for condition in person.health.conditions:
        for medicine, dosage, share in TREATMENT.get(condition, ()):
            if medicine not in chosen and rng.random() < share:
                chosen[medicine] = (medicine, dosage, condition)
    if "apixaban_5mg" in chosen and "edoxaban_60mg" in chosen:
        del chosen["edoxaban_60mg"]
    return list(chosen.values())


class GpRecord:
    """Builds one registration's record."""

    def __init__(self, seed: int, person: Person, registration: Registration, number: int,
                 out: Output) -> None:  # fmt: skip
        self.person = person
        self.registration = registration
        self.source: Source = GP_PRACTICES[registration.practice]
        self.rng = person_rng(seed, person.index, f"gp/{number}")
        local = imperfections.local_number(seed, self.source, person.index)
        self.patient_id = f"{self.source.code}-{local}"
        self.record = Record(out, self.source, self.patient_id)
        self.first = max(registration.start, person.data_start, WINDOW_START)
        self.last = min(registration.end or person.data_end, person.data_end)
        self.open = registration.end is None
        gps = staff_in_role(self.source, "general_practitioner")
        nurses = staff_in_role(self.source, "registered_nurse")
        self.gp = ref(
            "Practitioner", gps[person.index % len(gps)].id, gps[person.index % len(gps)].display
        )
        nurse = nurses[person.index % len(nurses)]
        self.nurse = ref("Practitioner", nurse.id, nurse.display)
        trust = TRUSTS[person.trust_on(self.first)]
        self.laboratory = ods_ref(trust)
        self.condition_ids: dict[str, str] = {}
        self.seed = seed

    # -- the patient and the registration -------------------------------------------------

    def patient(self) -> list[str]:
        person, record = self.person, self.record
        resource, tags = imperfections.patient(
            self.seed, person, self.source, self.patient_id, self.last, active=self.open
        )
        record.add_patient(resource)
        registration = {
            "resourceType": "EpisodeOfCare",
            "id": record.new_id("eoc"),
            "meta": meta(self.source, "EpisodeOfCare"),
            "status": "active" if self.open else "finished",
            "type": REGISTRATION_TYPE,
            "patient": record.subject,
            "managingOrganization": org_ref(self.source),
            "period": {"start": day(self.registration.start)},
        }
        if not self.open:
            registration["period"]["end"] = day(self.last)
        record.add(registration)
        return tags

    def encounter(self, when: int, minute: int, kind: str, performer: dict, text: str) -> str:
        klass, type_code = {
            "surgery": (AMBULATORY, CARE["consultation"]),
            "telephone": (VIRTUAL, CARE["telephone"]),
            "home": (HOME, CARE["home_visit"]),
            "review": (AMBULATORY, CARE["check_up"]),
        }[kind]
        encounter_id = self.record.new_id("enc")
        self.record.add(
            {
                "resourceType": "Encounter",
                "id": encounter_id,
                "meta": meta(self.source, "Encounter"),
                "status": "finished",
                "class": klass,
                "type": [{"coding": [type_code.coding], "text": text}],
                "subject": self.record.subject,
                "participant": [{"individual": performer}],
                "period": {"start": instant(when, minute), "end": instant(when, minute + 12)},
                "serviceProvider": org_ref(self.source),
            }
        )
        return encounter_id

    # -- problems -----------------------------------------------------------------------------

    def problem_list(self) -> None:
        person, record = self.person, self.record
        for condition, onset in person.health.conditions.items():
            if onset > self.last:
                continue
            item = CONDITIONS[_condition_key(person, condition)]
            condition_id = record.new_id("cond")
            self.condition_ids[condition] = condition_id
            record.add(
                {
                    "resourceType": "Condition",
                    "id": condition_id,
                    "meta": meta(self.source, "Condition"),
                    "clinicalStatus": ACTIVE,
                    "verificationStatus": CONFIRMED,
                    "category": PROBLEM,
                    "code": item.concept,
                    "subject": record.subject,
                    "onsetDateTime": day(onset),
                    "recordedDate": day(max(onset, self.registration.start)),
                    "recorder": self.gp,
                }
            )

    def acute_problem(self, when: int, encounter_id: str, examined: bool) -> None:
        person, record, rng = self.person, self.record, self.rng
        group = "child" if person.age_at(when) < 16 else "adult"
        options = ACUTE_PROBLEMS[group]
        total = sum(w for _, w in options)
        u = rng.random() * total
        key = options[-1][0]
        for candidate, w in options:
            u -= w
            if u < 0:
                key = candidate
                break
        condition_id = record.new_id("cond")
        record.add(
            {
                "resourceType": "Condition",
                "id": condition_id,
                "meta": meta(self.source, "Condition"),
                "clinicalStatus": RESOLVED,
                "verificationStatus": CONFIRMED,
                "category": PROBLEM,
                "code": CONDITIONS[key].concept,
                "subject": record.subject,
                "encounter": ref("Encounter", encounter_id),
                "onsetDateTime": day(when - rng.randrange(1, 6)),
                "abatementDateTime": day(when + rng.randrange(5, 21)),
                "recordedDate": day(when),
                "recorder": self.gp,
            }
        )
        if examined and key in INFECTIONS:
            minute = 9 * 60 + rng.randrange(0, 8 * 60)
            fever = 1.0 if rng.random() < 0.4 else 0.0
            observe.quantity_observation(
                record,
                measures.TEMPERATURE,
                rng.gauss(36.9 + fever, 0.3),
                when,
                minute,
                encounter_id,
                self.gp,
            )
            observe.quantity_observation(
                record,
                measures.HEART_RATE,
                rng.gauss(80 + 10 * fever, 9),
                when,
                minute,
                encounter_id,
                self.gp,
            )
        if key in ANTIBIOTIC_FOR and rng.random() < 0.6:
            self.prescription(
                "amoxicillin_500mg", "One capsule three times a day for 5 days", when,
                encounter_id, condition_id, acute=True,
            )  # fmt: skip

    # -- prescriptions -------------------------------------------------------------------------

    def prescription(self, medicine: str, dosage: str, when: int, encounter_id: str,
                     condition_id: str | None, acute: bool = False, current: bool = False) -> None:  # fmt: skip
        item = MEDICINES[medicine]
        resource = {
            "resourceType": "MedicationRequest",
            "id": self.record.new_id("mr"),
            "meta": meta(self.source, "MedicationRequest"),
            "status": "active" if current else "completed",
            "intent": "order",
            "category": COMMUNITY,
            "medicationCodeableConcept": item.concept,
            "subject": self.record.subject,
            "encounter": ref("Encounter", encounter_id),
            "authoredOn": day(when),
            "requester": self.gp,
        }
        if condition_id:
            resource["reasonReference"] = [ref("Condition", condition_id)]
        resource["courseOfTherapyType"] = ACUTE if acute else CONTINUOUS
        resource["dosageInstruction"] = [{"sequence": 1, "text": dosage}]
        request = {"quantity": DOSE, "expectedSupplyDuration": DAYS_28}
        if not acute:
            request = {"numberOfRepeatsAllowed": 12, **request}
        resource["dispenseRequest"] = request
        self.record.add(resource)

    # -- the timeline --------------------------------------------------------------------------

    def consultations(self) -> None:
        person, rng = self.person, self.rng
        when = self.first
        while True:
            age = person.age_at(when)
            rate = rates.by_age(rates.GP_CONSULTATIONS, age)
            when += int(rng.expovariate(rate) * YEAR) + 1
            if when > self.last:
                break
            age = person.age_at(when)
            u = rng.random()
            kind = "home" if age >= 80 and u < 0.1 else ("telephone" if u < 0.35 else "surgery")
            minute = rng.randrange(8 * 60, 18 * 60)
            encounter_id = self.encounter(when, minute, kind, self.gp, "GP consultation")
            if kind != "telephone" and age >= 40 and rng.random() < 0.3:
                observe.blood_pressure(
                    self.record, rng, person, when, minute + 4, encounter_id, self.gp
                )
            if rng.random() < 0.4:
                self.acute_problem(when, encounter_id, examined=kind != "telephone")

    def reviews(self) -> None:
        """Annual chronic disease reviews (twice a year for diabetes), or NHS Health Checks."""
        person, rng = self.person, self.rng
        medicines = medicines_for(person_rng(self.seed, person.index, "medicines"), person)
        when = self.first + rng.randrange(0, 365)
        last_health_check = -(10**9)
        while when <= self.last:
            age = person.age_at(when)
            active = [c for c in REVIEWED if person.health.conditions.get(c, 10**9) <= when]
            minute = rng.randrange(9 * 60, 17 * 60)
            if active:
                encounter_id = self.encounter(when, minute, "review", self.nurse,
                                              "Long-term conditions annual review")  # fmt: skip
                self.review_results(when, minute, encounter_id, active, medicines)
                if "type2_diabetes" in active and when + 182 <= self.last:
                    later = when + 182
                    encounter_id = self.encounter(later, minute, "review", self.nurse,
                                                  "Diabetes six-month review")  # fmt: skip
                    observe.lab_report(self.record, rng, person, "hba1c", later, minute + 5,
                                       encounter_id, self.laboratory)  # fmt: skip
            elif 40 <= age < 75 and when - last_health_check > 5 * 365 and rng.random() < 0.5:
                last_health_check = when
                encounter_id = self.encounter(
                    when, minute, "review", self.nurse, "NHS Health Check"
                )
                observe.blood_pressure(
                    self.record, rng, person, when, minute + 3, encounter_id, self.nurse
                )
                self.bmi(when, minute + 5, encounter_id)
                observe.smoking_status(
                    self.record, person, when, minute + 6, encounter_id, self.nurse
                )
                if rng.random() < 0.5:
                    observe.lab_report(
                        self.record,
                        rng,
                        person,
                        "hba1c",
                        when,
                        minute + 10,
                        encounter_id,
                        self.laboratory,
                    )
                observe.lab_report(self.record, rng, person, "lipids", when, minute + 10,
                                   encounter_id, self.laboratory)  # fmt: skip
            when += 365 + rng.randrange(-30, 31)

    def bmi(self, when: int, minute: int, encounter_id: str) -> None:
        value = measures.bmi(self.rng, self.person, when)
        observe.quantity_observation(self.record, measures.BMI, value, when, minute,
                                     encounter_id, self.nurse)  # fmt: skip

    def review_results(self, when: int, minute: int, encounter_id: str, active: list[str],
                       medicines: list[tuple[str, str, str]]) -> None:  # fmt: skip
        person, rng, record = self.person, self.rng, self.record
        cardiometabolic = {"hypertension", "type2_diabetes", "ckd", "heart_failure",
                           "atrial_fibrillation"}.intersection(active)  # fmt: skip
        if cardiometabolic or rng.random() < 0.5:
            observe.blood_pressure(record, rng, person, when, minute + 3, encounter_id, self.nurse)
        if "type2_diabetes" in active or rng.random() < 0.3:
            self.bmi(when, minute + 5, encounter_id)
        observe.smoking_status(record, person, when, minute + 6, encounter_id, self.nurse)
        on_statin = any(m == "atorvastatin_20mg" and person.health.conditions[c] <= when
                        for m, _, c in medicines)  # fmt: skip
        if "type2_diabetes" in active or (cardiometabolic and rng.random() < 0.3):
            observe.lab_report(
                record, rng, person, "hba1c", when, minute + 10, encounter_id, self.laboratory
            )
        if cardiometabolic:
            observe.lab_report(
                record, rng, person, "renal", when, minute + 10, encounter_id, self.laboratory
            )
        if {"type2_diabetes", "ckd"}.intersection(active) or (
            "hypertension" in active and rng.random() < 0.5
        ):
            observe.lab_report(record, rng, person, "lipids", when, minute + 10, encounter_id,
                               self.laboratory, on_statin=on_statin)  # fmt: skip
        # Repeat prescriptions are re-authorised at the review.
        next_review = when + 365
        for medicine, dosage, condition in medicines:
            if person.health.conditions[condition] <= when:
                current = self.open and next_review > self.last
                self.prescription(medicine, dosage, when, encounter_id,
                                  self.condition_ids.get(condition), current=current)  # fmt: skip

    # -- other parts of the record ---------------------------------------------------------------

    def allergies(self) -> None:
        reactions = {"penicillin": ("rash", "moderate", "medication", "high"),
                     "peanut": ("anaphylaxis", "severe", "food", "high"),
                     "latex": ("urticaria", "mild", "environment", "low")}  # fmt: skip
        for allergy in self.person.health.allergies:
            reaction, severity, kind, criticality = reactions[allergy]
            self.record.add(
                {
                    "resourceType": "AllergyIntolerance",
                    "id": self.record.new_id("alg"),
                    "meta": meta(self.source, "AllergyIntolerance"),
                    "clinicalStatus": ALLERGY_ACTIVE,
                    "verificationStatus": ALLERGY_CONFIRMED,
                    "type": "allergy",
                    "category": [kind],
                    "criticality": criticality,
                    "code": ALLERGIES[allergy].concept,
                    "patient": self.record.subject,
                    "recordedDate": day(self.first),
                    "recorder": self.gp,
                    "reaction": [
                        {"manifestation": [ALLERGIES[reaction].concept], "severity": severity}
                    ],
                }
            )

    def immunisations(self) -> None:
        person, rng = self.person, self.rng
        doses: list[tuple[str, int]] = []
        birth = date.fromordinal(person.birth)
        at_risk = any(c in person.health.conditions for c in
                      ("type2_diabetes", "asthma", "copd", "ckd", "heart_failure"))  # fmt: skip
        for year in range(2016, 2026):
            autumn = date(year, 10, 1).toordinal() + rng.randrange(0, 60)
            age = person.age_at(autumn)
            uptake = 0.75 if age >= 65 else (0.45 if at_risk and age >= 18 else 0.0)
            if rng.random() < uptake:
                doses.append(("flu", autumn))
        childhood = (("rotavirus", 56), ("menb", 56), ("rotavirus", 84), ("menb", 112),
                     ("pcv13", 365), ("mmr", 365), ("menb", 365), ("mmr", 1220), ("dtap_ipv", 1220))  # fmt: skip
        for vaccine, age_days in childhood:
            if rng.random() < 0.92:
                doses.append((vaccine, person.birth + age_days + rng.randrange(0, 21)))
        if rng.random() < 0.75:
            doses.append(("hpv", date(birth.year + 13, 1, 1).toordinal() + rng.randrange(0, 300)))
        age_2021 = person.age_at(date(2021, 1, 1).toordinal())
        if age_2021 >= 18 and rng.random() < (0.92 if age_2021 >= 65 else 0.7):
            first = date(2021, 1, 10).toordinal() + int(max(0, 80 - age_2021) * 3)
            doses += [("covid", first), ("covid", first + 77 + rng.randrange(0, 21))]
            for year in (2021, 2022, 2023, 2024):
                autumn = date(year, 9, 20).toordinal() + rng.randrange(0, 50)
                if person.age_at(autumn) >= (50 if year < 2023 else 75) and rng.random() < 0.7:
                    doses.append(("covid", autumn))
        if rng.random() < 0.7:
            doses.append(("ppv23", person.birth + int(65 * YEAR) + rng.randrange(30, 400)))
        if rng.random() < 0.5:
            doses.append(("shingles", person.birth + int(70 * YEAR) + rng.randrange(30, 700)))
        for vaccine, when in sorted(doses, key=lambda d: d[1]):
            if self.first <= when <= self.last:
                self.immunisation(vaccine, when)

    def immunisation(self, vaccine: str, when: int) -> None:
        oral = vaccine == "rotavirus"
        resource = {
            "resourceType": "Immunization",
            "id": self.record.new_id("imm"),
            "meta": meta(self.source, "Immunization"),
            "status": "completed",
            "vaccineCode": VACCINES[vaccine].concept,
            "patient": self.record.subject,
            "occurrenceDateTime": day(when),
            "primarySource": True,
            "lotNumber": f"{vaccine[:2].upper()}{(when * 7919) % 100000:05d}",
        }
        if not oral:
            resource["site"] = CARE["left_upper_arm"].concept
        resource["route"] = CARE["oral_route" if oral else "intramuscular"].concept
        resource["performer"] = [{"actor": self.nurse}]
        self.record.add(resource)

    def care_plans(self) -> None:
        person, record = self.person, self.record
        onset = person.health.conditions.get("type2_diabetes")
        if onset is None or onset > self.last:
            return
        start = max(onset, self.first)
        goal_id = record.new_id("goal")
        record.add(
            {
                "resourceType": "Goal",
                "id": goal_id,
                "meta": meta(self.source, "Goal"),
                "lifecycleStatus": "active" if self.open else "completed",
                "description": {"text": "HbA1c at or below 53 mmol/mol"},
                "subject": record.subject,
                "startDate": day(start),
                "addresses": [ref("Condition", self.condition_ids["type2_diabetes"])],
            }
        )
        record.add(
            {
                "resourceType": "CarePlan",
                "id": record.new_id("cp"),
                "meta": meta(self.source, "CarePlan"),
                "status": "active" if self.open else "completed",
                "intent": "plan",
                "category": [CARE["care_plan"].concept],
                "title": "Type 2 diabetes care plan",
                "description": "Annual review with retinal screening and foot check; HbA1c every six months.",
                "subject": record.subject,
                "period": {"start": day(start)},
                "author": self.nurse,
                "addresses": [ref("Condition", self.condition_ids["type2_diabetes"])],
                "goal": [ref("Goal", goal_id)],
            }
        )

    def talking_therapies(self) -> None:
        onset = self.person.health.conditions.get("depression")
        if onset is None or not self.first <= onset <= self.last or self.rng.random() > 0.6:
            return
        self.record.add(
            {
                "resourceType": "ServiceRequest",
                "id": self.record.new_id("sr"),
                "meta": meta(self.source, "ServiceRequest"),
                "status": "completed",
                "intent": "order",
                "code": {
                    "coding": [CARE["referral"].coding],
                    "text": "Referral to NHS Talking Therapies",
                },
                "subject": self.record.subject,
                "authoredOn": day(onset),
                "requester": self.gp,
                "reasonReference": [ref("Condition", self.condition_ids["depression"])],
            }
        )

    def opt_out(self) -> None:
        chosen = self.person.health.opt_out
        if chosen is None or chosen > self.last:
            return
        self.record.add(
            {
                "resourceType": "Consent",
                "id": self.record.new_id("cons"),
                "meta": meta(self.source, "Consent"),
                "status": "active",
                "scope": OPT_OUT_SCOPE,
                "category": OPT_OUT_CATEGORY,
                "patient": self.record.subject,
                "dateTime": instant(max(chosen, self.registration.start), 10 * 60),
                "organization": [org_ref(self.source)],
                "policy": OPT_OUT_POLICY,
                "provision": OPT_OUT_PROVISION,
            }
        )


# Issue 4: the national data opt-out is a privacy consent (scope patient-privacy).
OPT_OUT_SCOPE = hl7("consentscope", "patient-privacy", "Privacy Consent").concept
OPT_OUT_CATEGORY = [{"coding": [CARE["patient_consent"].coding], "text": "National data opt-out"}]
OPT_OUT_POLICY = [{"uri": "https://digital.nhs.uk/services/national-data-opt-out"}]
OPT_OUT_PROVISION = {
    "type": "deny",
    "purpose": [
        hl7("v3-ActReason", "HRESCH", "healthcare research").coding,
        hl7("v3-ActReason", "HOPERAT", "healthcare operations").coding,
    ],
}


def gp_records(seed: int, person: Person, out: Output) -> None:
    for number, registration in enumerate(person.registrations):
        if (registration.end or person.data_end) < max(person.data_start, WINDOW_START):
            continue
        gp = GpRecord(seed, person, registration, number, out)
        tags = gp.patient()
        out.truth.append((person.key, gp.source.code, gp.patient_id, ";".join(tags)))
        gp.problem_list()
        gp.allergies()
        gp.opt_out()
        gp.care_plans()
        gp.talking_therapies()
        gp.consultations()
        gp.reviews()
        gp.immunisations()
