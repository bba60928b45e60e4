"""Principals and tokens for tests that call the API as someone (the gate decides everything).

The spec tests' client is a source system: it reads and writes its own records.
"""

from __future__ import annotations

TEST_SOURCE = "https://fhir.carelight.example/TEST/fhir"
TEST_CLIENT_USERNAME = "source-test"


def source_client_principal():
    from carelight.access.principal import Principal, Role

    return Principal(
        username=TEST_CLIENT_USERNAME,
        role=Role.SYSTEM,
        display="The test suite's source system",
        organization_id="TEST-org",
        organization_code="TEST",
        source=TEST_SOURCE,
        scopes=frozenset({"system/*.read", "system/*.write"}),
    )


def bearer_token(app, principal) -> str:
    """A signed access token for ``principal``, from the app's own token service."""
    from carelight.access.services import access_services

    return access_services(app).tokens.issue(principal)
