"""Who is asking: bearer tokens through PrincipalMiddleware, and authenticate(request)."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from carelight.access.accounts import principal_for
from carelight.access.authn import PrincipalMiddleware, authenticate, require_principal
from carelight.access.principal import Principal


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_valid_token_sets_the_principal(web, services, gp):
    token = services.tokens.issue(principal_for(gp))
    me = web.get("/whoami", headers=bearer(token)).json()
    assert me == {
        "auth": "bearer",
        "username": "gp",
        "role": "gp",
        "organization": "Y99101",
        "scopes": ["user/*.read", "user/*.write"],
    }


def test_no_credentials_is_anonymous(web):
    assert web.get("/whoami").json() == {
        "auth": None,
        "username": None,
        "role": None,
        "organization": None,
        "scopes": [],
    }
    assert web.get("/fhir/metadata").status_code == 200


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("garbage", "not a well-formed JWT"),
        ("", "no token after 'Bearer'"),
    ],
)
def test_a_bad_token_is_401_with_a_challenge(web, token, message):
    response = web.get("/fhir/metadata", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/fhir+json"
    issue = response.json()["issue"][0]
    assert issue["code"] == "login" and message in issue["diagnostics"]
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="carelight", error="invalid_token"')
    assert message in challenge


def test_an_expired_token_says_so(web, services, gp):
    token = services.tokens.issue(principal_for(gp), lifetime=-3600)
    response = web.get("/whoami", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["issue"][0]["code"] == "expired"
    assert (
        'error_description="The token has expired; get a new one."'
        in (response.headers["www-authenticate"])
    )


def test_a_token_for_another_server_is_refused(web, services, gp):
    from carelight.access.tokens import TokenService

    elsewhere = TokenService(
        services.tokens._private_key, issuer="http://testserver", audience="http://other/fhir"
    )
    response = web.get("/whoami", headers=bearer(elsewhere.issue(principal_for(gp))))
    assert response.status_code == 401
    assert "another server; this one is http://testserver/fhir" in response.text


def small_app(services) -> FastAPI:
    app = FastAPI()
    app.state.access = services

    @app.get("/who")
    def who(request: Request):
        p = authenticate(request)
        return {"username": p.username if p else None}

    @app.get("/must")
    def must(principal: Principal = Depends(require_principal)):
        return {"username": principal.username}

    return app


def test_authenticate_works_without_the_middleware(services, gp):
    from carelight.fhir.errors import FhirError

    app = small_app(services)

    @app.exception_handler(FhirError)
    async def fhir_error(_request, exc: FhirError):
        from carelight.fhir.api import outcome_response

        return outcome_response(exc)

    token = services.tokens.issue(principal_for(gp))
    with TestClient(app) as client:
        assert client.get("/who").json() == {"username": None}
        assert client.get("/who", headers=bearer(token)).json() == {"username": "gp"}
        assert client.get("/who", headers=bearer("x")).status_code == 401
        refused = client.get("/must")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="carelight"'
        assert client.get("/must", headers=bearer(token)).json() == {"username": "gp"}


def test_the_middleware_passes_other_scopes_through(services):
    seen = []

    async def inner(scope, receive, send):
        seen.append(scope["type"])

    asyncio.run(PrincipalMiddleware(inner)({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]


def test_the_middleware_costs_microseconds_per_request(services, gp):
    """Measured on the ASGI call itself (no HTTP client): a cached token, then no token."""
    token = services.tokens.issue(principal_for(gp)).encode()

    class App:
        state = type("State", (), {"access": services})()

    async def inner(scope, receive, send):
        pass

    middleware = PrincipalMiddleware(inner)
    app = App()

    async def run(headers, n):
        started = time.perf_counter()
        for _ in range(n):
            scope = {"type": "http", "path": "/fhir/Patient/1", "headers": headers, "app": app}
            await middleware(scope, None, None)
        return (time.perf_counter() - started) / n

    headers = [(b"host", b"testserver"), (b"authorization", b"Bearer " + token)]
    asyncio.run(run(headers, 100))
    with_token = asyncio.run(run(headers, 5000))
    anonymous = asyncio.run(run([(b"host", b"testserver")], 5000))
    assert with_token < 50e-6, f"{with_token * 1e6:.1f} µs per request with a cached token"
    assert anonymous < 50e-6
