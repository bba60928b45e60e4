"""The patient app in process (no server, no browser) over the shared care population."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from care_support import CarePopulation
from carelight.config import Settings
from carelight.server import create_app


@pytest.fixture(scope="module")
def patient_app(care_population: CarePopulation):
    settings = Settings(
        home=care_population.home,
        database_url=f"sqlite:///{care_population.home / 'carelight.db'}",
        base_url="http://testserver/fhir",
    )
    app = create_app(settings=settings)
    yield app
    app.state.trail.close()


@pytest.fixture
def web(patient_app) -> Iterator[TestClient]:
    with TestClient(patient_app) as client:
        yield client
