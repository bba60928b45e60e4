"""SMART discovery and the JWKS: what a client needs to find the endpoints and check tokens."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI
from fastapi.testclient import TestClient

from carelight.access.accounts import principal_for
from carelight.access.routes import router


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_configuration(config: dict) -> None:
    assert config["issuer"] == "http://testserver"
    assert config["jwks_uri"] == "http://testserver/.well-known/jwks.json"
    assert config["authorization_endpoint"] == "http://testserver/oauth/authorize"
    assert config["token_endpoint"] == "http://testserver/oauth/token"
    assert config["grant_types_supported"] == ["authorization_code", "client_credentials"]
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["response_types_supported"] == ["code"]
    assert {"client_secret_basic", "none"} <= set(config["token_endpoint_auth_methods_supported"])
    assert {"patient/*.read", "user/*.read", "system/*.write"} <= set(config["scopes_supported"])
    assert {"launch-standalone", "client-public", "permission-patient"} <= set(
        config["capabilities"]
    )


def test_smart_configuration(web):
    response = web.get("/.well-known/smart-configuration")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    check_configuration(response.json())


def test_smart_configuration_under_the_fhir_base_on_the_router(services):
    app = FastAPI()
    app.state.access = services
    app.include_router(router)
    with TestClient(app) as client:
        check_configuration(client.get("/fhir/.well-known/smart-configuration").json())


def test_smart_configuration_under_the_fhir_base(web):
    response = web.get("/fhir/.well-known/smart-configuration")
    assert response.status_code == 200
    check_configuration(response.json())


def test_the_jwks_verifies_issued_tokens(web, services, gp):
    keys = web.get("/.well-known/jwks.json").json()["keys"]
    assert len(keys) == 1
    jwk = keys[0]
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert "d" not in jwk  # the public half only
    token = services.tokens.issue(principal_for(gp))
    signing_input, signature = token.rsplit(".", 1)
    Ed25519PublicKey.from_public_bytes(unb64(jwk["x"])).verify(
        unb64(signature), signing_input.encode()
    )
