"""A patient account for the browser and in-process tests of the patient app: the care
population's ``shared`` person (registered at the demo GP, known to a hospital trust and to
adult social care), made with ``carelight users add`` as an operator would. Session-scoped,
so it is made once per worker (tests using it are in the ``care`` xdist group)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from care_support import CarePopulation, Person

PASSWORD = "carelight-demo"


@pytest.fixture(scope="session")
def care_patient(care_population: CarePopulation) -> Person:
    person = care_population.shared
    script = Path(sys.executable).parent / "carelight"
    listed = subprocess.run(
        [str(script), "users", "list"], env=care_population.env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    if person.nhs_number not in listed.stdout:  # the demo may have made it already
        subprocess.run(
            [str(script), "users", "add", person.nhs_number, "--role", "patient",
             "--password-stdin"],
            input=PASSWORD, env=care_population.env, capture_output=True, text=True, check=True,
        )  # fmt: skip
    return person
