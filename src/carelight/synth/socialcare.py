"""Adult social care records: the council's, and the care homes'.

The council records a referral (ServiceRequest), a Care Act needs assessment (an Encounter and
a QuestionnaireResponse to questionnaire.py's form), a care and support plan (CarePlan with
Goals and a CareTeam), the home care package and any council-funded care home placement
(EpisodeOfCare), the unpaid carer (RelatedPerson) and visit notes.

Visit notes are DocumentReferences (type LOINC 11506-3 "Progress note") with the note inline
as text: they are free-text narrative written by a care worker, not measurements, so an
Observation would be the wrong home for them. Care homes record the residency (EpisodeOfCare),
a resident care plan, monthly weights (Observation, for malnutrition screening), monthly notes,
the next of kin and allergies.
"""

from __future__ import annotations

import base64

from carelight.synth import imperfections, measures, observe, questionnaire
from carelight.synth.codes import codelist, hl7
from carelight.synth.fhir import Output, Record, day, instant, meta, ods_ref, org_ref, ref
from carelight.synth.gp import ALLERGIES, ALLERGY_ACTIVE, ALLERGY_CONFIRMED
from carelight.synth.health import SocialCare
from carelight.synth.population import Person, person_rng
from carelight.synth.sources import CARE_HOMES, COUNCIL, GP_PRACTICES, TRUSTS, Source, staff_in_role

CARE = codelist("care")
HOME_HEALTH = hl7("v3-ActCode", "HH", "home health").coding
PROGRESS_NOTE = CARE["progress_note"].concept
RELATIONSHIPS = {
    "SPS": "spouse", "DAU": "natural daughter", "SON": "natural son", "FRND": "unrelated friend",
    "NBOR": "neighbor",
}  # fmt: skip
CAREGIVER = CARE["caregiver"].concept
REFERRAL = {"coding": [CARE["referral"].coding], "text": "Referral for a Care Act needs assessment"}
REFERRAL_CATEGORY = [{"text": "Adult social care referral"}]
SOCIAL_CARE_CATEGORY = [{"text": "Adult social care"}]
HOME_CARE = [{"text": "Home care package (domiciliary care)"}]
PLACEMENT = [{"text": "Care home placement (council-funded)"}]
RESIDENCY = [{"text": "Care home residency"}]
GOALS = (
    "Remain living safely in my own home",
    "Manage washing and dressing with support",
    "Eat a hot meal every day",
    "Keep in touch with family and friends",
    "Reduce the risk of falls at home",
)
VISIT_NOTES = (
    "Morning call completed. Assisted with washing and dressing; breakfast prepared and eaten.",
    "Evening call completed. Medication prompted, supper prepared. In good spirits.",
    "Call completed. Appeared tired; encouraged fluids. Family informed of low mood.",
    "Lunch call completed. Walked to the kitchen with frame; no concerns.",
    "Call completed. Skin checked, no red areas. Declined shower today, strip wash given.",
)
HOME_NOTES = (
    "Settled month. Eating and drinking well; joined in activities twice a week.",
    "Reviewed by the GP this month; medicines unchanged. Family visit weekly.",
    "One unwitnessed fall this month, no injury; falls risk assessment updated.",
    "Weight stable. Sleeping well. Enjoyed the music afternoon.",
    "More confused in the evenings this month; care plan updated with the family.",
)


def _text_attachment(text: str, title: str, when: str) -> list:
    return [
        {
            "attachment": {
                "contentType": "text/plain; charset=utf-8",
                "language": "en-GB",
                "data": base64.b64encode(text.encode()).decode(),
                "title": title,
                "creation": when,
            }
        }
    ]


def _note(record: Record, when: int, minute: int, author: dict, text: str, title: str,
          encounter_id: str | None = None) -> None:  # fmt: skip
    stamp = instant(when, minute)
    resource = {
        "resourceType": "DocumentReference",
        "id": record.new_id("doc"),
        "meta": meta(record.source, "DocumentReference"),
        "status": "current",
        "docStatus": "final",
        "type": PROGRESS_NOTE,
        "subject": record.subject,
        "date": stamp,
        "author": [author],
        "custodian": org_ref(record.source),
        "description": title,
        "content": _text_attachment(text, title, stamp),
    }
    if encounter_id:
        resource["context"] = {"encounter": [ref("Encounter", encounter_id)]}
    record.add(resource)


def _related_person(record: Record, person: Person, carer: tuple, start: int) -> str:
    relationship, given, family, gender = carer
    related_id = record.new_id("rp")
    record.add(
        {
            "resourceType": "RelatedPerson",
            "id": related_id,
            "meta": meta(record.source, "RelatedPerson"),
            "active": True,
            "patient": record.subject,
            "relationship": [
                hl7("v3-RoleCode", relationship, RELATIONSHIPS[relationship]).concept,
                CAREGIVER,
            ],
            "name": [{"use": "official", "family": family, "given": [given]}],
            "telecom": [
                {
                    "system": "phone",
                    "value": f"07700 900{(person.index * 7 + 3) % 1000:03d}",
                    "use": "mobile",
                }
            ],
            "gender": gender,
            "period": {"start": day(start)},
        }
    )
    return related_id


def _patient(seed: int, person: Person, source: Source, record: Record, as_of: int,
             out: Output) -> None:  # fmt: skip
    practice = imperfections.practice_on(person, as_of)
    resource, tags = imperfections.patient(
        seed, person, source, record.patient_id, as_of, practice=practice
    )
    record.add_patient(resource)
    out.truth.append((person.key, source.code, record.patient_id, ";".join(tags)))


def _months(start: int, end: int) -> range:
    return range(start + 30, end, 30)


def council_record(seed: int, person: Person, care: SocialCare, out: Output) -> None:
    source = COUNCIL
    rng = person_rng(seed, person.index, "council")
    local = imperfections.local_number(seed, source, person.index)
    record = Record(out, source, f"{source.code}-{local}")
    last_contact = care.care_home_start or care.package_end or person.data_end
    _patient(seed, person, source, record, min(last_contact, person.data_end), out)
    workers = staff_in_role(source, "social_worker")
    worker = workers[person.index % len(workers)]
    social_worker = ref("Practitioner", worker.id, worker.display)

    carer_id = None
    if care.carer is not None:
        carer_id = _related_person(record, person, care.carer, care.referral)

    if care.referral_source == "hospital":
        requester = ods_ref(TRUSTS[person.trust_on(care.referral)])
        reason = "Needs support at home after discharge from hospital"
    elif care.referral_source == "gp":
        requester = ods_ref(imperfections.practice_on(person, care.referral) or GP_PRACTICES[0])
        reason = "Struggling with personal care and daily living at home"
    elif care.referral_source == "family" and carer_id:
        requester = ref("RelatedPerson", carer_id)
        reason = "Family concerned about managing at home"
    else:
        requester = record.subject
        reason = "Asked for help with daily living"
    referral_id = record.new_id("sr")
    record.add(
        {
            "resourceType": "ServiceRequest",
            "id": referral_id,
            "meta": meta(source, "ServiceRequest"),
            "status": "completed",
            "intent": "order",
            "category": REFERRAL_CATEGORY,
            "code": REFERRAL,
            "subject": record.subject,
            "authoredOn": day(care.referral),
            "requester": requester,
            "performer": [org_ref(source)],
            "reasonCode": [{"text": reason}],
        }
    )

    encounter_id = record.new_id("enc")
    minute = rng.randrange(9 * 60, 16 * 60)
    record.add(
        {
            "resourceType": "Encounter",
            "id": encounter_id,
            "meta": meta(source, "Encounter"),
            "status": "finished",
            "class": HOME_HEALTH,
            "type": [{"text": "Care Act 2014 needs assessment (home visit)"}],
            "subject": record.subject,
            "basedOn": [ref("ServiceRequest", referral_id)],
            "participant": [{"individual": social_worker}],
            "period": {
                "start": instant(care.assessment, minute),
                "end": instant(care.assessment, minute + 75),
            },
            "serviceProvider": org_ref(source),
        }
    )
    outcomes_unable = [
        text for (_, text), n in zip(questionnaire.OUTCOMES, care.needs, strict=True) if n == 2
    ]
    summary = (
        "Unable to achieve without help: " + "; ".join(outcomes_unable).lower() + "."
        if outcomes_unable
        else "Manages most outcomes with some help."
    )
    items, eligible = questionnaire.answers(care.needs, care.carer is not None, summary)
    response_id = record.new_id("qr")
    record.add(
        {
            "resourceType": "QuestionnaireResponse",
            "id": response_id,
            "meta": meta(source, "QuestionnaireResponse"),
            "questionnaire": questionnaire.URL,
            "status": "completed",
            "subject": record.subject,
            "encounter": ref("Encounter", encounter_id),
            "authored": instant(care.assessment, minute + 70),
            "author": social_worker,
            "source": record.subject,
            "item": items,
        }
    )
    _note(record, care.assessment, minute + 80, social_worker,
          f"Needs assessment completed at home. {summary} Eligible needs: {'yes' if eligible else 'no'}.",
          "Assessment visit note", encounter_id)  # fmt: skip
    if not eligible:
        return

    finished = care.package_end is not None
    team_id = record.new_id("ct")
    participants = [
        {"role": [CARE["social_worker"].concept], "member": social_worker,
         "onBehalfOf": org_ref(source)},
    ]  # fmt: skip
    if carer_id:
        participants.append({"role": [CAREGIVER], "member": ref("RelatedPerson", carer_id)})
    practice = imperfections.practice_on(person, care.package_start)
    if practice is not None:
        participants.append(
            {"role": [CARE["general_practitioner"].concept], "member": ods_ref(practice)}
        )
    team = {
        "resourceType": "CareTeam",
        "id": team_id,
        "meta": meta(source, "CareTeam"),
        "status": "inactive" if finished else "active",
        "category": SOCIAL_CARE_CATEGORY,
        "name": "Adult social care team",
        "subject": record.subject,
        "period": {"start": day(care.package_start)},
        "participant": participants,
        "managingOrganization": [org_ref(source)],
    }
    if finished:
        team["period"]["end"] = day(care.package_end)
    record.add(team)

    goal_ids = []
    for text in rng.sample(GOALS, rng.randrange(1, 4)):
        goal_id = record.new_id("goal")
        goal_ids.append(goal_id)
        record.add(
            {
                "resourceType": "Goal",
                "id": goal_id,
                "meta": meta(source, "Goal"),
                "lifecycleStatus": "completed" if finished else "active",
                "description": {"text": text},
                "subject": record.subject,
                "startDate": day(care.package_start),
                "expressedBy": record.subject,
            }
        )
    visits = 1 + sum(1 for n in care.needs if n == 2) // 2
    plan = {
        "resourceType": "CarePlan",
        "id": record.new_id("cp"),
        "meta": meta(source, "CarePlan"),
        "status": "completed" if finished else "active",
        "intent": "plan",
        "category": [CARE["care_plan"].concept],
        "title": "Care and support plan",
        "description": f"Home care: {visits} visit{'s' if visits > 1 else ''} a day for personal care and meals.",
        "subject": record.subject,
        "period": {"start": day(care.package_start)},
        "author": social_worker,
        "careTeam": [ref("CareTeam", team_id)],
        "goal": [ref("Goal", g) for g in goal_ids],
        "supportingInfo": [ref("QuestionnaireResponse", response_id)],
        "activity": [
            {"detail": {"status": "completed" if finished else "in-progress",
                        "description": f"Home care visits, {visits} a day"}},
            {"detail": {"status": "completed" if finished else "scheduled",
                        "description": "Annual review of the care and support plan"}},
        ],
    }  # fmt: skip
    if finished:
        plan["period"]["end"] = day(care.package_end)
    record.add(plan)

    package = {
        "resourceType": "EpisodeOfCare",
        "id": record.new_id("eoc"),
        "meta": meta(source, "EpisodeOfCare"),
        "status": "finished" if finished else "active",
        "type": HOME_CARE,
        "patient": record.subject,
        "managingOrganization": org_ref(source),
        "period": {"start": day(care.package_start)},
        "referralRequest": [ref("ServiceRequest", referral_id)],
        "careManager": social_worker,
        "team": [ref("CareTeam", team_id)],
    }
    if finished:
        package["period"]["end"] = day(care.package_end)
    record.add(package)

    end = care.package_end or person.data_end
    for i, when in enumerate(_months(care.package_start, end)):
        note = VISIT_NOTES[(person.index + i) % len(VISIT_NOTES)]
        _note(record, when, rng.randrange(7 * 60, 21 * 60), social_worker,
              f"Home care visit record. {note}", "Home care visit note")  # fmt: skip
    for when in range(care.package_start + 365, end, 365):
        _note(record, when, 11 * 60, social_worker,
              "Annual review of the care and support plan: needs unchanged, plan continues.",
              "Care plan review note")  # fmt: skip

    if care.care_home is not None:
        home = CARE_HOMES[care.care_home]
        placement = {
            "resourceType": "EpisodeOfCare",
            "id": record.new_id("eoc"),
            "meta": meta(source, "EpisodeOfCare"),
            "status": "finished" if care.care_home_end else "active",
            "type": PLACEMENT,
            "patient": record.subject,
            "managingOrganization": org_ref(source),
            "period": {"start": day(care.care_home_start)},
            "careManager": social_worker,
        }
        if care.care_home_end:
            placement["period"]["end"] = day(care.care_home_end)
        record.add(placement)
        _note(record, care.care_home_start, 10 * 60, social_worker,
              f"Moved into {home.name} ({home.code}) on a long-term placement.",
              "Placement note")  # fmt: skip


def care_home_record(seed: int, person: Person, care: SocialCare, out: Output) -> None:
    source = CARE_HOMES[care.care_home]
    rng = person_rng(seed, person.index, f"carehome/{source.code}")
    local = imperfections.local_number(seed, source, person.index)
    record = Record(out, source, f"{source.code}-{local}")
    start = care.care_home_start
    end = care.care_home_end
    _patient(seed, person, source, record, end or person.data_end, out)
    nurses = staff_in_role(source, "registered_nurse")
    nurse_staff = nurses[person.index % len(nurses)]
    nurse = ref("Practitioner", nurse_staff.id, nurse_staff.display)

    if care.carer is not None:
        _related_person(record, person, care.carer, start)
    residency = {
        "resourceType": "EpisodeOfCare",
        "id": record.new_id("eoc"),
        "meta": meta(source, "EpisodeOfCare"),
        "status": "finished" if end else "active",
        "type": RESIDENCY,
        "patient": record.subject,
        "managingOrganization": org_ref(source),
        "period": {"start": day(start)},
    }
    if end:
        residency["period"]["end"] = day(end)
    record.add(residency)
    encounter_id = record.new_id("enc")
    record.add(
        {
            "resourceType": "Encounter",
            "id": encounter_id,
            "meta": meta(source, "Encounter"),
            "status": "finished",
            "class": HOME_HEALTH,
            "type": [{"text": "Admission to the care home"}],
            "subject": record.subject,
            "participant": [{"individual": nurse}],
            "period": {"start": instant(start, 14 * 60), "end": instant(start, 16 * 60)},
            "location": [{"location": ref("Location", f"{source.code}-loc-home")}],
            "serviceProvider": org_ref(source),
        }
    )
    record.add(
        {
            "resourceType": "CarePlan",
            "id": record.new_id("cp"),
            "meta": meta(source, "CarePlan"),
            "status": "completed" if end else "active",
            "intent": "plan",
            "category": [CARE["care_plan"].concept],
            "title": "Resident care plan",
            "description": "Personal care, nutrition and hydration, mobility and falls, "
            "medicines, social activities and end-of-life wishes.",
            "subject": record.subject,
            "encounter": ref("Encounter", encounter_id),
            "period": {"start": day(start)},
            "author": nurse,
        }
    )
    for allergy in person.health.allergies:
        record.add(
            {
                "resourceType": "AllergyIntolerance",
                "id": record.new_id("alg"),
                "meta": meta(source, "AllergyIntolerance"),
                "clinicalStatus": ALLERGY_ACTIVE,
                "verificationStatus": ALLERGY_CONFIRMED,
                "type": "allergy",
                "code": ALLERGIES[allergy].concept,
                "patient": record.subject,
                "recordedDate": day(start),
                "recorder": nurse,
            }
        )
    stop = end or person.data_end
    weight_base = measures.bmi(rng, person, start) * (1.62 if person.sex == "female" else 1.75) ** 2
    for i, when in enumerate(_months(start, stop)):
        drift = -0.15 * i if "dementia" in person.health.conditions else 0.0
        observe.quantity_observation(record, measures.WEIGHT, rng.gauss(weight_base + drift, 0.8),
                                     when, 10 * 60, None, nurse)  # fmt: skip
        _note(record, when, 15 * 60, nurse, HOME_NOTES[(person.index + i) % len(HOME_NOTES)],
              "Monthly care review")  # fmt: skip


def social_care_records(seed: int, person: Person, out: Output) -> None:
    care = person.health.social_care
    if care is None:
        return
    council_record(seed, person, care, out)
    if care.care_home is not None:
        care_home_record(seed, person, care, out)
