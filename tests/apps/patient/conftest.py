"""The patient app in process (no server, no browser) over the shared care population."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from care_support import CarePopulation, in_process_app


@pytest.fixture(scope="module")
def patient_app(care_population: CarePopulation):
    yield from in_process_app(care_population)


@pytest.fixture
def web(patient_app) -> Iterator[TestClient]:
    with TestClient(patient_app) as client:
        yield client
