"""Only the Patient records of the synthetic population, for record-linkage benchmarks.

``carelight synth`` writes about a hundred resources per person; linking a million Patient
records does not need the other forty-odd million. ``patients(seed, index)`` returns exactly
the Patient resources (and ground-truth rows) that the full generator writes for person
``index`` — the same people, sources, local ids and imperfections, because each source's
Patient is made first from that source's own random stream — without planning or writing
anything else. ``tests/identity/test_linkage_population.py`` checks the two agree.
"""

from __future__ import annotations

from carelight.synth import imperfections
from carelight.synth.population import WINDOW_START, Person
from carelight.synth.sources import CARE_HOMES, COUNCIL, GP_PRACTICES, TRUSTS, Source
from carelight.synth.writer import person as planned_person

# (person key, source code, patient id, imperfection tags joined by ";"), as ground-truth.csv
TruthRow = tuple[str, str, str, str]


def _one(
    seed: int, person: Person, source: Source, as_of: int, **kwargs
) -> tuple[str, dict, TruthRow]:
    patient_id = f"{source.code}-{imperfections.local_number(seed, source, person.index)}"
    resource, tags = imperfections.patient(seed, person, source, patient_id, as_of, **kwargs)
    return source.code, resource, (person.key, source.code, patient_id, ";".join(tags))


def patients(seed: int, index: int) -> list[tuple[str, dict, TruthRow]]:
    """(source code, Patient, ground-truth row) for each record person ``index`` has."""
    person = planned_person(seed, index)
    out = []
    # GP practices (gp.gp_records): one record per registration in the window.
    for registration in person.registrations:
        if (registration.end or person.data_end) < max(person.data_start, WINDOW_START):
            continue
        last = min(registration.end or person.data_end, person.data_end)
        source = GP_PRACTICES[registration.practice]
        out.append(_one(seed, person, source, last, active=registration.end is None))
    # Hospital trusts (hospital.hospital_records): one record per trust, as of the last event.
    last_by_trust: dict[int, int] = {}
    for event in person.health.hospital:
        last_by_trust[event.trust] = event.end
    for trust, last in sorted(last_by_trust.items()):
        practice = imperfections.practice_on(person, last)
        out.append(_one(seed, person, TRUSTS[trust], last, practice=practice))
    # Adult social care and care homes (socialcare.social_care_records).
    care = person.health.social_care
    if care is not None:
        last_contact = care.care_home_start or care.package_end or person.data_end
        as_of = min(last_contact, person.data_end)
        practice = imperfections.practice_on(person, as_of)
        out.append(_one(seed, person, COUNCIL, as_of, practice=practice))
        if care.care_home is not None:
            as_of = care.care_home_end or person.data_end
            practice = imperfections.practice_on(person, as_of)
            out.append(_one(seed, person, CARE_HOMES[care.care_home], as_of, practice=practice))
    return out
