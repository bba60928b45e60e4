"""A person's records at the hospital trusts: A&E attendances, admissions and operations.

Each trust keeps its own Patient (with the demographics as last seen, and the imperfections of
imperfections.py), Encounters with ICD-10 diagnoses as Conditions, vital signs and blood
results, procedures (SNOMED CT), the medicines the patient was taking on admission
(MedicationStatement) and a discharge summary (DocumentReference with an inline text
attachment) for each admission.
"""

from __future__ import annotations

import base64

from carelight.synth import imperfections, measures, observe
from carelight.synth.codes import codelist, hl7
from carelight.synth.fhir import Output, Record, category, day, instant, meta, org_ref, ref
from carelight.synth.gp import MEDICINES, medicines_for
from carelight.synth.health import HospitalEvent
from carelight.synth.population import Person, person_rng
from carelight.synth.sources import TRUSTS, Source, staff_in_role

ICD10 = codelist("icd10")
PROCEDURES = codelist("procedures")
CARE = codelist("care")
ACTIVE = {"coding": [hl7("condition-clinical", "active", "Active").coding]}
RESOLVED = {"coding": [hl7("condition-clinical", "resolved", "Resolved").coding]}
CONFIRMED = {"coding": [hl7("condition-ver-status", "confirmed", "Confirmed").coding]}
DIAGNOSIS = category(hl7("condition-category", "encounter-diagnosis", "Encounter Diagnosis"))
EMERGENCY = hl7("v3-ActCode", "EMER", "emergency").coding
INPATIENT = hl7("v3-ActCode", "IMP", "inpatient encounter").coding
AMBULATORY = hl7("v3-ActCode", "AMB", "ambulatory").coding
FROM_AE = {"coding": [hl7("admit-source", "emd", "From accident/emergency department").coding]}
FROM_GP = {"coding": [hl7("admit-source", "gp", "General Practitioner referral").coding]}
HOME = {"coding": [hl7("discharge-disposition", "home", "Home").coding]}
DIED = {"coding": [hl7("discharge-disposition", "exp", "Expired").coding]}
STATEMENT_CATEGORY = hl7("medication-statement-category", "community", "Community").concept
DISCHARGE_SUMMARY = CARE["discharge_summary"]
CHRONIC_ICD10 = {"hypertension", "type2_diabetes", "asthma", "copd", "ckd", "heart_failure",
                 "atrial_fibrillation", "dementia", "depression"}  # fmt: skip
# How a diagnosis changes the vital signs: (heart rate, respiratory rate, temperature, SpO2,
# systolic) shifts.
VITALS_SHIFT = {
    "pneumonia": (22, 8, 1.6, -6, -10), "uti": (12, 2, 1.2, -1, -5),
    "copd_exacerbation": (15, 8, 0.4, -7, 5), "heart_failure_acute": (15, 6, 0.0, -5, 10),
    "af_fast": (45, 3, 0.0, -1, 0), "asthma_attack": (20, 9, 0.0, -4, 5),
    "mi": (15, 4, 0.0, -2, 10), "stroke": (5, 2, 0.0, -1, 35), "cellulitis": (10, 2, 1.0, 0, 0),
    "hip_fracture": (12, 2, 0.0, -1, 15), "syncope": (-10, 0, 0.0, 0, -20),
    "aki": (10, 3, 0.3, -1, -15), "gastroenteritis": (15, 2, 0.8, 0, -10),
}  # fmt: skip


class TrustRecord:
    def __init__(self, seed: int, person: Person, trust: int, out: Output) -> None:
        self.seed = seed
        self.person = person
        self.source: Source = TRUSTS[trust]
        self.rng = person_rng(seed, person.index, f"trust/{self.source.code}")
        local = imperfections.local_number(seed, self.source, person.index)
        self.patient_id = f"{self.source.code}-{local}"
        self.record = Record(out, self.source, self.patient_id)
        ed = staff_in_role(self.source, "ed_physician")
        physicians = staff_in_role(self.source, "Consultant physician")
        surgeons = staff_in_role(self.source, "Consultant surgeon")
        pick = person.index
        self.ed = [ref("Practitioner", s.id, s.display) for s in ed]
        self.physician = [ref("Practitioner", s.id, s.display) for s in physicians]
        self.surgeon = [ref("Practitioner", s.id, s.display) for s in surgeons]
        self.pick = pick
        self.laboratory = org_ref(self.source)
        self.medicines = medicines_for(person_rng(seed, person.index, "medicines"), person)

    def patient(self, events: list[HospitalEvent]) -> list[str]:
        last = events[-1].end
        practice = imperfections.practice_on(self.person, last)
        resource, tags = imperfections.patient(
            self.seed, self.person, self.source, self.patient_id, last, practice=practice
        )
        self.record.add_patient(resource)
        return tags

    def _staff(self, group: list[dict]) -> dict:
        self.pick += 1
        return group[self.pick % len(group)]

    def encounter(self, event: HospitalEvent, klass: dict, start: str, end: str, text: str,
                  type_code: dict | None, performer: dict, location: str,
                  hospitalization: dict | None = None) -> str:  # fmt: skip
        encounter_id = self.record.new_id("enc")
        resource = {
            "resourceType": "Encounter",
            "id": encounter_id,
            "meta": meta(self.source, "Encounter"),
            "status": "finished",
            "class": klass,
            "type": [{"coding": [type_code], "text": text} if type_code else {"text": text}],
            "subject": self.record.subject,
            "participant": [{"individual": performer}],
            "period": {"start": start, "end": end},
        }
        if hospitalization:
            resource["hospitalization"] = hospitalization
        resource["location"] = [{"location": ref("Location", f"{self.source.code}-loc-{location}")}]
        resource["serviceProvider"] = org_ref(self.source)
        self.record.add(resource)
        return encounter_id

    def diagnosis(self, key: str, encounter_id: str, when: int, recorder: dict,
                  chronic: bool = False, onset: int | None = None) -> str:  # fmt: skip
        condition_id = self.record.new_id("cond")
        self.record.add(
            {
                "resourceType": "Condition",
                "id": condition_id,
                "meta": meta(self.source, "Condition"),
                "clinicalStatus": ACTIVE if chronic else RESOLVED,
                "verificationStatus": CONFIRMED,
                "category": DIAGNOSIS,
                "code": ICD10[key].concept,
                "subject": self.record.subject,
                "encounter": ref("Encounter", encounter_id),
                "onsetDateTime": day(onset if onset is not None else when),
                "recordedDate": day(when),
                "recorder": recorder,
            }
        )
        return condition_id

    def vitals(self, event: HospitalEvent, encounter_id: str, minute: int, performer: dict) -> None:
        person, rng, record = self.person, self.rng, self.record
        hr, rr, temp, sat, sbp = VITALS_SHIFT.get(event.diagnosis, (0, 0, 0.0, 0, 0))
        when = event.start
        observe.quantity_observation(record, measures.HEART_RATE, rng.gauss(78 + hr, 9), when,
                                     minute, encounter_id, performer)  # fmt: skip
        observe.quantity_observation(record, measures.RESPIRATORY_RATE, rng.gauss(16 + rr, 2),
                                     when, minute, encounter_id, performer)  # fmt: skip
        observe.quantity_observation(record, measures.TEMPERATURE, rng.gauss(36.8 + temp, 0.3),
                                     when, minute, encounter_id, performer)  # fmt: skip
        observe.quantity_observation(record, measures.SPO2, min(100, rng.gauss(97 + sat, 1.2)),
                                     when, minute, encounter_id, performer)  # fmt: skip
        observe.blood_pressure(record, rng, person, when, minute, encounter_id, performer,
                               shift=(sbp, sbp / 3))  # fmt: skip

    def procedure(self, key: str, encounter_id: str, when: int, minute: int, reason: str) -> None:
        performer = self._staff(self.surgeon if key not in ("ecg", "chest_xray") else self.ed)
        self.record.add(
            {
                "resourceType": "Procedure",
                "id": self.record.new_id("proc"),
                "meta": meta(self.source, "Procedure"),
                "status": "completed",
                "code": PROCEDURES[key].concept,
                "subject": self.record.subject,
                "encounter": ref("Encounter", encounter_id),
                "performedDateTime": instant(when, minute),
                "performer": [{"actor": performer, "onBehalfOf": org_ref(self.source)}],
                "reasonReference": [ref("Condition", reason)],
            }
        )

    def medicines_on_admission(self, encounter_id: str, when: int) -> list[str]:
        taken = []
        for medicine, dosage, condition in self.medicines:
            onset = self.person.health.conditions[condition]
            if onset > when:
                continue
            item = MEDICINES[medicine]
            taken.append(item.display)
            self.record.add(
                {
                    "resourceType": "MedicationStatement",
                    "id": self.record.new_id("ms"),
                    "meta": meta(self.source, "MedicationStatement"),
                    "status": "active",
                    "category": STATEMENT_CATEGORY,
                    "medicationCodeableConcept": item.concept,
                    "subject": self.record.subject,
                    "context": ref("Encounter", encounter_id),
                    "effectivePeriod": {"start": day(onset)},
                    "dateAsserted": day(when),
                    "informationSource": self.record.subject,
                    "dosage": [{"text": dosage}],
                }
            )
        return taken

    def discharge_summary(self, event: HospitalEvent, encounter_id: str, author: dict,
                          lines: list[str]) -> None:  # fmt: skip
        text = "\n".join(lines)
        minute = 16 * 60
        self.record.add(
            {
                "resourceType": "DocumentReference",
                "id": self.record.new_id("doc"),
                "meta": meta(self.source, "DocumentReference"),
                "status": "current",
                "docStatus": "final",
                "type": DISCHARGE_SUMMARY.concept,
                "subject": self.record.subject,
                "date": instant(event.end, minute),
                "author": [author],
                "custodian": org_ref(self.source),
                "description": "Discharge summary",
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain; charset=utf-8",
                            "language": "en-GB",
                            "data": base64.b64encode(text.encode()).decode(),
                            "title": "Discharge summary",
                            "creation": instant(event.end, minute),
                        }
                    }
                ],
                "context": {
                    "encounter": [ref("Encounter", encounter_id)],
                    "period": {"start": day(event.start), "end": day(event.end)},
                },
            }
        )

    def event(self, event: HospitalEvent) -> None:
        person, rng = self.person, self.rng
        start_minute = event.start_minute
        diagnosis = ICD10[event.diagnosis]
        if event.kind == "elective":
            admission_id = self.encounter(
                event, AMBULATORY if event.end == event.start else INPATIENT,
                instant(event.start, start_minute), instant(event.end, 17 * 60),
                "Elective admission", None, self._staff(self.surgeon), "ward",
                {"admitSource": FROM_GP, "dischargeDisposition": HOME},
            )  # fmt: skip
            reason = self.diagnosis(
                event.diagnosis, admission_id, event.start, self._staff(self.surgeon)
            )
            observe.lab_report(self.record, rng, person, "fbc", event.start, start_minute + 20,
                               admission_id, self.laboratory)  # fmt: skip
            if event.procedure:
                self.procedure(
                    event.procedure, admission_id, event.start, start_minute + 120, reason
                )
            if event.end > event.start:
                self.discharge_summary(event, admission_id, self._staff(self.surgeon), [
                    f"Elective admission {day(event.start)} to {day(event.end)}.",
                    f"Diagnosis: {diagnosis.display} ({diagnosis.code}).",
                    f"Procedure: {PROCEDURES[event.procedure].display}." if event.procedure else "",
                    "Uneventful recovery. Follow-up in outpatients in six weeks.",
                ])  # fmt: skip
            return
        doctor = self._staff(self.ed)
        ae_end = start_minute + rng.randrange(90, 300)
        ae_id = self.encounter(
            event, EMERGENCY, instant(event.start, start_minute), instant(event.start, ae_end),
            "A&E attendance", CARE["ed_visit"].coding, doctor, "ae",
        )  # fmt: skip
        self.vitals(event, ae_id, start_minute + 10, doctor)
        condition_id = self.diagnosis(event.diagnosis, ae_id, event.start, doctor)
        if event.diagnosis in ("hip_fracture", "wrist_fracture", "syncope"):
            self.diagnosis("fall", ae_id, event.start, doctor)
        acute = 0.35 if event.diagnosis == "aki" else 0.0
        if event.bloods:
            observe.lab_report(self.record, rng, person, "fbc", event.start, start_minute + 30,
                               ae_id, self.laboratory)  # fmt: skip
            observe.lab_report(self.record, rng, person, "renal", event.start, start_minute + 30,
                               ae_id, self.laboratory, acute=acute)  # fmt: skip
        if event.kind == "ae":
            if event.procedure:
                self.procedure(event.procedure, ae_id, event.start, start_minute + 40, condition_id)
            return
        consultant = self._staff(
            self.physician if event.procedure != "hip_replacement" else self.surgeon
        )
        admission_id = self.encounter(
            event, INPATIENT, instant(event.start, min(ae_end, 1439)),
            instant(event.end, 11 * 60 if not event.died else rng.randrange(1440)),
            "Emergency admission", CARE["emergency_admission"].coding, consultant, "ward",
            {"admitSource": FROM_AE, "dischargeDisposition": DIED if event.died else HOME},
        )  # fmt: skip
        primary = self.diagnosis(event.diagnosis, admission_id, event.start, consultant)
        comorbidities = []
        for condition, onset in person.health.conditions.items():
            if onset <= event.start and (condition in CHRONIC_ICD10 or condition == "cancer"):
                key = f"cancer_{person.health.cancer_site}" if condition == "cancer" else condition
                self.diagnosis(
                    key, admission_id, event.start, consultant, chronic=True, onset=onset
                )
                comorbidities.append(ICD10[key].display)
        taken = self.medicines_on_admission(admission_id, event.start)
        if event.procedure:
            self.procedure(event.procedure, admission_id, event.start + (1 if event.end > event.start else 0),
                           10 * 60, primary)  # fmt: skip
        outcome = (
            f"The patient died on {day(event.end)}."
            if event.died
            else f"Discharged home on {day(event.end)}."
        )
        self.discharge_summary(event, admission_id, consultant, [
            f"Emergency admission via A&E on {day(event.start)}.",
            f"Primary diagnosis: {diagnosis.display} ({diagnosis.code}).",
            "Comorbidities: " + (", ".join(comorbidities) if comorbidities else "none recorded") + ".",
            f"Procedure: {PROCEDURES[event.procedure].display}." if event.procedure else "No procedures.",
            "Medicines on admission: " + ("; ".join(taken) if taken else "none") + ".",
            outcome,
        ])  # fmt: skip


def hospital_records(seed: int, person: Person, out: Output) -> None:
    by_trust: dict[int, list[HospitalEvent]] = {}
    for event in person.health.hospital:
        by_trust.setdefault(event.trust, []).append(event)
    for trust, events in sorted(by_trust.items()):
        record = TrustRecord(seed, person, trust, out)
        tags = record.patient(events)
        out.truth.append((person.key, record.source.code, record.patient_id, ";".join(tags)))
        for event in events:
            record.event(event)
