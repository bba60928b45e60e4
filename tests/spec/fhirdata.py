"""Small resources for the spec suite (fictional; NHS numbers in the 999 test range)."""

from __future__ import annotations

NHS = "https://fhir.nhs.uk/Id/nhs-number"


def patient(family="Smith", given="Jane", nhs="9990000018", birth="1950-03-04", gender="female",
            postcode="LS1 4AP", **extra) -> dict:  # fmt: skip
    res = {
        "resourceType": "Patient",
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": family, "given": [given]}],
        "gender": gender,
        "birthDate": birth,
        "address": [{"line": ["1 High Street"], "city": "Leeds", "postalCode": postcode}],
    }
    res.update(extra)
    return res


def observation(patient_id: str, code="4548-4", value=48.0, unit="mmol/mol", date="2024-01-10",
                status="final", **extra) -> dict:  # fmt: skip
    res = {
        "resourceType": "Observation",
        "status": status,
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": "HbA1c"}],
                 "text": "Haemoglobin A1c"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": date,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                          "code": unit},
    }  # fmt: skip
    res.update(extra)
    return res


def condition(patient_id: str, code="38341003", display="Hypertensive disorder", **extra) -> dict:
    res = {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "onsetDateTime": "2015-06-01",
    }  # fmt: skip
    res.update(extra)
    return res


def organization(name="Leeds GP Practice", ods="Y00001") -> dict:
    return {
        "resourceType": "Organization",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": ods}],
        "name": name,
        "active": True,
    }
