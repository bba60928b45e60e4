"""The patient app's pages in process: sign-in, my record through the gate and the log, the
downloads, who has looked (with verification), data choices, and refusals."""

from __future__ import annotations

import json

import pytest
from patient_app_support import csrf_of, sign_in_patient

from care_support import CarePopulation, Person

pytestmark = pytest.mark.xdist_group("care")

TRUST = "Brackenfold and Harrowgill Teaching Hospitals NHS Trust"
COUNCIL = "Calderbrook Council Adult Social Care"
GP = "Brackenfold Medical Centre"


def test_smoke(web, care_patient: Person):
    sign_in_patient(web, care_patient.nhs_number)
    for path in ("/patient", "/patient/record", "/patient/record/results", "/patient/record/medicines",
                 "/patient/download", "/patient/accesses", "/patient/choices", "/patient/data-use"):
        r = web.get(path)
        assert r.status_code == 200, (path, r.text[:3000])
    print(web.get("/patient/record").text[-6000:])
