"""The OAuth 2 endpoints end to end: client credentials, and authorisation code with PKCE."""

from __future__ import annotations

import base64
import html
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from access_support import PASSWORD

from carelight.access.oauth import OAuthApps, pkce_challenge
from carelight.access.principal import Role

APP = "test-app"
REDIRECT = "https://app.example/callback"
ISS = "http://testserver"


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": f"Basic {base64.b64encode(raw).decode()}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- client credentials -------------------------------------------------------------------
def test_a_source_system_gets_a_token_with_http_basic(web, source_gp, trail):
    response = web.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic("source-gp", PASSWORD),
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "system/*.read system/*.write"
    me = web.get("/whoami", headers=bearer(body["access_token"])).json()
    assert me["auth"] == "bearer" and me["username"] == "source-gp"
    assert me["role"] == "system" and me["organization"] == "Y99101"
    assert trail.actions() == [("token", "success", "source-gp")]
    assert trail.events[0].principal.source == "https://fhir.carelight.example/Y99101/fhir"


def test_client_secret_in_the_form_and_a_narrower_scope(web, source_gp, trail):
    response = web.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "source-gp",
            "client_secret": PASSWORD,
            "scope": "system/Observation.write",
        },
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "system/Observation.write"
    token = response.json()["access_token"]
    assert web.get("/whoami", headers=bearer(token)).json()["scopes"] == [
        "system/Observation.write"
    ]


@pytest.mark.parametrize(
    "headers, data",
    [
        (basic("source-gp", "not the secret"), {}),
        (basic("source-x", PASSWORD), {}),
        ({}, {"client_id": "source-gp", "client_secret": "not the secret"}),
    ],
)
def test_a_wrong_client_secret_is_refused(web, source_gp, trail, headers, data):
    response = web.post(
        "/oauth/token", data={"grant_type": "client_credentials", **data}, headers=headers
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="carelight"'
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "The client id or secret is not right.",
    }
    assert [(a, o) for a, o, _ in trail.actions()] == [("login-failed", "refused")]


def test_client_authentication_is_required(web, source_gp, trail):
    response = web.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    both = web.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_secret": PASSWORD},
        headers=basic("source-gp", PASSWORD),
    )
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"
    garbled = web.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic !!!"},
    )
    assert garbled.json()["error"] == "invalid_client"
    assert trail.events == []


def test_a_scope_beyond_the_clients_is_refused(web, source_gp, trail):
    for scope in ("user/*.read", "system/*.read patient/*.read", "openid"):
        response = web.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "scope": scope},
            headers=basic("source-gp", PASSWORD),
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_scope"
    assert trail.actions() == [("token", "refused", "source-gp")] * 3


def test_people_cannot_use_client_credentials(web, gp, trail):
    response = web.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic("gp", PASSWORD)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    assert "/oauth/authorize" in response.json()["error_description"]
    assert trail.actions() == [("token", "refused", "gp")]


def test_token_requests_that_are_not_understood(web):
    assert web.post("/oauth/token", data={}).json()["error"] == "invalid_request"
    password = web.post("/oauth/token", data={"grant_type": "password", "username": "gp"})
    assert password.status_code == 400
    assert password.json()["error"] == "unsupported_grant_type"
    as_json = web.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert as_json.json()["error"] == "invalid_request"
    assert "x-www-form-urlencoded" in as_json.json()["error_description"]


def test_a_token_fails_closed_when_the_log_cannot_record(web, source_gp, trail):
    trail.fail = True
    response = web.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic("source-gp", PASSWORD),
    )
    assert response.status_code == 503
    assert "access_token" not in response.text


# -- authorisation code with PKCE ---------------------------------------------------------
@pytest.fixture
def registered(services):
    return services.apps.register(APP, "Test app", [REDIRECT, "http://127.0.0.1/cb"])


@pytest.fixture
def patient(accounts):
    return accounts.create("9434765919", Role.PATIENT, password=PASSWORD, patient_id="Y99101-7")


def hidden_fields(page: str) -> dict[str, str]:
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }


def authorize(web, username=None, password=PASSWORD, **params):
    """Open the sign-in page as the app sends a person there, then sign in; the response."""
    verifier = params.pop("verifier", None) or secrets.token_urlsafe(48)
    query = {
        "response_type": "code",
        "client_id": APP,
        "redirect_uri": REDIRECT,
        "state": "xyz",
        "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256",
        "aud": "http://testserver/fhir",
    } | params
    page = web.get("/oauth/authorize", params=query, follow_redirects=False)
    if username is None or page.status_code != 200:
        return page, verifier
    form = hidden_fields(page.text) | {"username": username, "password": password}
    return web.post("/oauth/authorize", data=form, follow_redirects=False), verifier


def code_from(response) -> str:
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"] and query["iss"] == [ISS]
    return query["code"][0]


def exchange(web, code, verifier, redirect_uri=REDIRECT, client_id=APP):
    return web.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )


def test_a_patient_signs_in_through_an_app(web, registered, patient, trail):
    page, _ = authorize(web, scope="patient/*.read")
    assert page.status_code == 200
    assert "Sign in to Test app" in page.text
    assert "Read everything in your own record" in page.text
    assert "https://app.example" in page.headers["content-security-policy"]
    response, verifier = authorize(web, "943 476 5919", scope="patient/*.read")
    code = code_from(response)
    token = exchange(web, code, verifier)
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["scope"] == "patient/*.read"
    assert body["patient"] == "Y99101-7"  # SMART launch context
    me = web.get("/whoami", headers=bearer(body["access_token"])).json()
    assert (me["username"], me["role"], me["scopes"]) == (
        "9434765919",
        "patient",
        ["patient/*.read"],
    )
    assert trail.actions() == [
        ("login", "success", "9434765919"),
        ("token", "success", "9434765919"),
    ]


def test_a_professional_gets_all_their_scopes_when_none_are_asked_for(web, registered, gp):
    response, verifier = authorize(web, "gp", scope="")
    body = exchange(web, code_from(response), verifier).json()
    assert body["scope"] == "user/*.read user/*.write" and "patient" not in body


def test_a_wrong_password_shows_the_form_again(web, registered, gp, trail):
    response, _ = authorize(web, "gp", "not the password")
    assert response.status_code == 400
    assert "The username or password is not right" in response.text
    assert hidden_fields(response.text)["client_id"] == APP  # the request is kept
    assert trail.actions() == [("login-failed", "refused", "gp")]


def test_the_wrong_code_verifier_is_refused(web, registered, gp, trail):
    response, _ = authorize(web, "gp")
    code = code_from(response)
    refused = exchange(web, code, secrets.token_urlsafe(48))
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "invalid_grant",
        "error_description": "code_verifier does not match the code_challenge.",
    }
    assert trail.actions()[-1] == ("token", "refused", APP)


def test_a_code_works_once(web, registered, gp):
    response, verifier = authorize(web, "gp")
    code = code_from(response)
    assert exchange(web, code, verifier).status_code == 200
    again = exchange(web, code, verifier)
    assert again.status_code == 400
    assert again.json()["error_description"] == "The authorisation code has already been used."


def test_a_failed_exchange_spends_the_code(web, registered, gp):
    response, verifier = authorize(web, "gp")
    code = code_from(response)
    assert exchange(web, code, "x" * 43).status_code == 400
    assert exchange(web, code, verifier).json()["error"] == "invalid_grant"


def test_an_expired_code_is_refused(web, registered, gp, services):
    now = [1_800_000_000.0]
    services.apps.clock = lambda: now[0]
    response, verifier = authorize(web, "gp")
    code = code_from(response)
    now[0] += 121
    refused = exchange(web, code, verifier)
    assert (
        refused.json()["error_description"] == "The authorisation code has expired; sign in again."
    )


def test_the_redirect_uri_must_match(web, registered, gp):
    response, verifier = authorize(web, "gp")
    refused = exchange(web, code_from(response), verifier, redirect_uri=REDIRECT + "/other")
    assert refused.json() == {
        "error": "invalid_grant",
        "error_description": "redirect_uri differs from the one the code was issued for.",
    }


def test_the_code_belongs_to_the_app_it_was_issued_to(web, registered, gp, services):
    services.apps.register("other-app", "Other", [REDIRECT])
    response, verifier = authorize(web, "gp")
    refused = exchange(web, code_from(response), verifier, client_id="other-app")
    assert (
        refused.json()["error_description"] == "The authorisation code was issued to another app."
    )
    unknown = exchange(web, "whatever", verifier, client_id="nobody")
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"


def test_an_unknown_code_is_refused(web, registered):
    refused = exchange(web, "not-a-code", "x" * 43)
    assert refused.json()["error_description"] == "The authorisation code is not known."


def test_an_account_disabled_after_sign_in_gets_no_token(web, registered, gp, accounts):
    response, verifier = authorize(web, "gp")
    code = code_from(response)
    accounts.disable("gp")
    assert exchange(web, code, verifier).json()["error"] == "invalid_grant"


def test_a_scope_beyond_the_account_is_sent_back_as_invalid_scope(web, registered, gp, trail):
    response, _ = authorize(web, "gp", scope="patient/*.read")
    location = urlsplit(response.headers["location"])
    query = parse_qs(location.query)
    assert query["error"] == ["invalid_scope"] and query["state"] == ["xyz"]
    assert "code" not in query


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"aud": "https://elsewhere.example/fhir"}, "invalid_request"),
        ({"scope": "openid patient/*.read"}, "invalid_scope"),
    ],
)
def test_bad_requests_go_back_to_the_app(web, registered, gp, params, error):
    page, _ = authorize(web, "gp", **params)
    assert page.status_code == 303
    query = parse_qs(urlsplit(page.headers["location"]).query)
    assert query["error"] == [error] and query["state"] == ["xyz"]


@pytest.mark.parametrize(
    ("params", "title"),
    [
        ({"client_id": "unknown-app"}, "Unknown app"),
        ({"redirect_uri": "https://evil.example/callback"}, "Sign-in request not accepted"),
        ({"redirect_uri": ""}, "Sign-in request not accepted"),
    ],
)
def test_an_unknown_app_or_redirect_is_never_redirected_to(web, registered, params, title):
    page, _ = authorize(web, **params)
    assert page.status_code == 400 and "location" not in page.headers
    assert title in page.text


def test_a_loopback_redirect_may_use_any_port(web, registered, gp):
    response, verifier = authorize(web, "gp", redirect_uri="http://127.0.0.1:53123/cb")
    assert response.headers["location"].startswith("http://127.0.0.1:53123/cb?code=")
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    ok = exchange(web, code, verifier, redirect_uri="http://127.0.0.1:53123/cb")
    assert ok.status_code == 200
    other_path, _ = authorize(web, redirect_uri="http://127.0.0.1:53123/other")
    assert other_path.status_code == 400


def test_the_authorize_form_needs_its_csrf_token(web, registered, gp, trail):
    page, _ = authorize(web)
    form = hidden_fields(page.text) | {"username": "gp", "password": PASSWORD, "csrf": "x" * 43}
    response = web.post("/oauth/authorize", data=form, follow_redirects=False)
    assert response.status_code == 400 and "The sign-in page had expired" in response.text
    assert trail.events == []


def test_app_registration_rules(store, accounts):
    apps = OAuthApps(store.engine)
    for uri in ("http://app.example/cb", "https://app.example/cb#frag", "app://cb"):
        with pytest.raises(ValueError, match="cannot be a redirect URI"):
            apps.register("new-app", "New", [uri])
    with pytest.raises(ValueError, match="client id"):
        apps.register("New App", "New", [REDIRECT])
    apps.register("new-app", "New", [REDIRECT, "http://[::1]/cb"])
    with pytest.raises(ValueError, match="already an app"):
        apps.register("new-app", "New", [REDIRECT])
    app = apps.get("new-app")
    assert app.allows_redirect("http://[::1]:8080/cb")
    assert not app.allows_redirect("http://[::1]:8080/cb?x=1")
    assert not app.allows_redirect("https://app.example/cb/")
    assert [a.client_id for a in apps.list()] == ["new-app"]
