"""Web sign-in and sign-out through the real app: cookies, CSRF, the transparency log."""

from __future__ import annotations

import html
import re

import pytest
from access_support import PASSWORD
from fastapi import Request
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from carelight.access.authn import credentials
from carelight.access.principal import Role
from carelight.access.routes import CSRF_COOKIE
from carelight.access.sessions import SESSION_COOKIE

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def hidden(page: str, name: str) -> str:
    return html.unescape(re.search(f'name="{name}" value="([^"]*)"', page).group(1))


def csrf_of(page: str) -> str:
    return hidden(page, "csrf")


def sign_in(web: TestClient, username: str, password: str, next: str = "/"):
    """Sign in as a browser does: get the form, post it back with its hidden fields."""
    page = web.get("/signin", params={"next": next})
    assert page.status_code == 200
    form = {
        "csrf": csrf_of(page.text),
        "next": hidden(page.text, "next"),
        "username": username,
        "password": password,
    }
    return web.post("/signin", data=form, follow_redirects=False)


def set_cookie_headers(response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def test_the_sign_in_page_is_an_accessible_form(web):
    page = web.get("/signin")
    assert page.status_code == 200
    body = page.text
    assert body.startswith("<!DOCTYPE html>") and '<html lang="en">' in body
    assert '<label for="username">' in body and 'id="username"' in body
    assert '<label for="password">' in body and 'autocomplete="current-password"' in body
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    cookie = set_cookie_headers(page)[CSRF_COOKIE]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert csrf_of(body) == page.cookies[CSRF_COOKIE]


def test_signing_in_starts_a_session(web, gp, trail):
    response = sign_in(web, "GP", PASSWORD, next="/whoami?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/whoami?x=1"
    cookie = set_cookie_headers(response)[SESSION_COOKIE]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here; see the https test
    assert trail.actions() == [("login", "success", "gp")]
    assert trail.events[0].principal.organization_code == "Y99101"
    me = web.get("/whoami").json()
    assert me == {
        "auth": "session",
        "username": "gp",
        "role": "gp",
        "organization": "Y99101",
        "scopes": ["user/*.read", "user/*.write"],
    }
    page = web.get("/signin")
    assert "You are signed in as Dr Test" in page.text


def test_the_session_cookie_is_secure_over_https(app, gp):
    with TestClient(app, base_url="https://testserver") as web:
        response = sign_in(web, "gp", PASSWORD)
        assert "Secure" in set_cookie_headers(response)[SESSION_COOKIE]


@pytest.mark.parametrize(
    ("username", "password", "logged_as", "reason"),
    [
        ("gp", "not the password", "gp", "wrong password"),
        ("nobody", PASSWORD, "(unknown)", "unknown account"),
        # People type their password into the username box; the log must not keep it.
        (PASSWORD, PASSWORD, "(unknown)", "unknown account"),
    ],
)
def test_failed_sign_ins_are_recorded(web, gp, trail, username, password, logged_as, reason):
    response = sign_in(web, username, password)
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert "The username or password is not right" in response.text
    assert 'aria-invalid="true"' in response.text
    assert SESSION_COOKIE not in response.cookies
    assert trail.actions() == [("login-failed", "refused", logged_as)]
    assert trail.events[0].reason == reason
    assert trail.events[0].principal is None
    assert web.get("/whoami").json()["username"] is None


def test_a_disabled_account_cannot_sign_in(web, gp, accounts, trail):
    accounts.disable("gp")
    response = sign_in(web, "gp", PASSWORD)
    assert response.status_code == 400
    assert "The username or password is not right" in response.text  # says no more than that
    assert trail.events[0].reason == "disabled"


def test_patients_sign_in_with_their_nhs_number(web, accounts, trail):
    accounts.create("9434765919", Role.PATIENT, password=PASSWORD, patient_id="Y99101-1")
    assert sign_in(web, "943 476 5919", PASSWORD).status_code == 303
    assert web.get("/whoami").json()["role"] == "patient"
    assert trail.actions() == [("login", "success", "9434765919")]


def test_empty_fields_are_named(web, gp, trail):
    response = sign_in(web, "", "")
    assert response.status_code == 400
    assert 'href="#username">Enter your username or NHS number' in response.text
    assert 'href="#password">Enter your password' in response.text
    assert trail.events == []


def test_a_sign_in_without_the_forms_csrf_token_is_refused(web, gp, trail):
    web.get("/signin")
    response = web.post(
        "/signin",
        data={"csrf": "forged" * 8, "username": "gp", "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 400
    assert "The sign-in page had expired" in response.text
    assert trail.events == [] and SESSION_COOKIE not in response.cookies


def test_sign_in_fails_closed_when_the_log_cannot_record(web, gp, trail):
    trail.fail = True
    response = sign_in(web, "gp", PASSWORD)
    assert response.status_code == 503
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "transparency log could not record" in response.text
    assert SESSION_COOKIE not in response.cookies
    assert web.get("/whoami").json()["username"] is None
    failed = sign_in(web, "gp", "not the password")  # a failure that cannot be logged too
    assert failed.status_code == 503


def test_an_unreadable_form_is_refused(web, gp):
    response = web.post("/signin", content=b'{"username": "gp"}', headers={"Content-Type": "json"})
    assert response.status_code == 400
    assert "application/x-www-form-urlencoded" in response.text
    repeated = web.post("/signin", content=b"username=gp&username=admin", headers=FORM)
    assert "given more than once" in repeated.text


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
def test_after_sign_in_only_local_paths_are_followed(web, gp, target):
    response = sign_in(web, "gp", PASSWORD, next=target)
    assert response.headers["location"] == "/"


def test_signing_out_ends_the_session(web, gp, trail):
    sign_in(web, "gp", PASSWORD)
    page = web.get("/signin")
    response = web.post("/signout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signin"
    assert trail.actions() == [("login", "success", "gp"), ("logout", "success", "gp")]
    assert web.get("/whoami").json()["username"] is None


def test_the_session_ends_at_sign_out_even_if_the_cookie_was_copied(web, app, gp):
    sign_in(web, "gp", PASSWORD)
    stolen = web.cookies[SESSION_COOKIE]
    csrf = csrf_of(web.get("/signin").text)
    web.post("/signout", data={"csrf": csrf})
    with TestClient(app, cookies={SESSION_COOKIE: stolen}) as other:
        assert other.get("/whoami").json()["username"] is None


def test_sign_out_needs_the_sessions_csrf_token(web, gp, trail):
    sign_in(web, "gp", PASSWORD)
    response = web.post("/signout", data={"csrf": "x"})
    assert response.status_code == 400 and "Sign-out not accepted" in response.text
    assert web.get("/whoami").json()["username"] == "gp"
    assert [a for a, _, _ in trail.actions()] == ["login"]


def test_the_fhir_api_ignores_the_session_cookie(app, web, gp):
    """A page on another site cannot use a signed-in browser to call the API."""

    def whoami_under_fhir(request: Request):
        return {"auth": request.state.auth}

    # Ahead of the FHIR router's /fhir/{type}, which would take the path otherwise.
    app.router.routes.insert(0, APIRoute("/fhir/_whoami", whoami_under_fhir))
    sign_in(web, "gp", PASSWORD)
    assert web.get("/whoami").json()["auth"] == "session"
    assert web.get("/fhir/_whoami").json()["auth"] is None
    assert web.get("/fhir/metadata").status_code == 200


def test_credentials_from_headers():
    cookie = (b"cookie", f"theme=dark; {SESSION_COOKIE}=abc".encode())
    assert credentials({"path": "/care", "headers": [cookie]}) == (None, "abc")
    assert credentials({"path": "/fhir/Patient", "headers": [cookie]}) == (None, None)
    assert credentials({"path": "/fhir", "headers": [cookie]}) == (None, None)
    assert credentials({"path": "/fhirish", "headers": [cookie]}) == (None, "abc")
    bearer = (b"authorization", b"bearer  tok.en.x ")
    assert credentials({"path": "/fhir/Patient", "headers": [bearer]}) == ("tok.en.x", None)
    basic = (b"authorization", b"Basic dXNlcjpwYXNz")
    assert credentials({"path": "/oauth/token", "headers": [basic]}) == (None, None)
