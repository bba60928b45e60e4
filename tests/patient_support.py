"""A patient account for the browser and in-process tests of the patient app: the care
population's ``shared`` person (registered at the demo GP, known to a hospital trust and to
adult social care), made with ``carelight users add`` as an operator would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from care_support import CarePopulation, Person

PASSWORD = "carelight-demo"


def patient_account(population: CarePopulation, person: Person) -> Person:
    """Give ``person`` a patient account (password ``carelight-demo``) unless they have one.
    Workers share the population, so another may be making the same account at once."""
    script = Path(sys.executable).parent / "carelight"

    def listed() -> bool:
        done = subprocess.run(
            [str(script), "users", "list"], env=population.env, capture_output=True, text=True,
            check=True,
        )  # fmt: skip
        return person.nhs_number in done.stdout

    if not listed():
        made = subprocess.run(
            [str(script), "users", "add", person.nhs_number, "--role", "patient",
             "--password-stdin"],
            input=PASSWORD, env=population.env, capture_output=True, text=True,
        )  # fmt: skip
        if made.returncode != 0 and not listed():
            raise RuntimeError(f"carelight users add failed:\n{made.stdout}{made.stderr}")
    return person


@pytest.fixture(scope="session")
def care_patient(care_population: CarePopulation) -> Person:
    return patient_account(care_population, care_population.shared)
