"""Sign-in, the OAuth 2 endpoints and SMART discovery.

- ``GET /.well-known/smart-configuration`` (also under ``/fhir``): SMART App Launch discovery.
- ``GET /.well-known/jwks.json``: the public key that signs access tokens.
- ``POST /oauth/token``: ``client_credentials`` for source systems, ``authorization_code``
  (with PKCE) for people signing in through an app. Errors as RFC 6749 §5.2 JSON.
- ``GET|POST /oauth/authorize``: the sign-in page an app sends a person to; on success it
  redirects back with a one-time code.
- ``GET|POST /signin``, ``POST /signout``: web sessions for Carelight's own pages.

Every sign-in, failed sign-in, sign-out and token issued is recorded in the transparency log
first (``app.state.trail``); if the log cannot record it, the request fails with 503. Handlers
are ``async`` only to read forms: password hashing and database work run in worker threads.
"""

from __future__ import annotations

import base64
import inspect
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from carelight.access.accounts import Account, SignInAttempt, principal_for
from carelight.access.grants import ScopeRefused, all_scopes, describe, narrow, parse_scope
from carelight.access.oauth import OAuthApp, OAuthError, is_s256_challenge
from carelight.access.principal import Principal, Role
from carelight.access.services import AccessServices, access_services
from carelight.access.sessions import SESSION_COOKIE, SESSION_LIFETIME, csrf_ok, csrf_token
from carelight.audit.events import AccessEvent
from carelight.fhir.errors import error

log = logging.getLogger(__name__)
router = APIRouter()

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 * 1024
CSRF_COOKIE = "carelight_csrf"
HASHING_SLOTS = 4  # Argon2 uses 64 MiB and several cores per check: queue beyond this
UNKNOWN = "(unknown)"  # what the log says for a name that is no account (it may be a password)
SIGNIN_FAILED = (
    "The username or password is not right. After several wrong attempts, wait a few "
    "minutes before trying again."
)
AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "aud",
)
_TEMPLATES = Environment(
    loader=PackageLoader("carelight.access", "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class FormError(ValueError):
    """A form that could not be read (wrong content type, too large, repeated fields)."""


class PageError(Exception):
    """An error shown to the person on a page (used before an app's redirect URI is trusted)."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(message)
        self.title = title
        self.message = message


class RedirectError(Exception):
    """An authorisation error sent back to the app at its (checked) redirect URI."""

    def __init__(self, redirect_uri: str, state: str | None, code: str, description: str):
        super().__init__(description)
        self.response = redirect_to_app(
            redirect_uri, {"error": code, "error_description": description, "state": state}
        )


# -- discovery ----------------------------------------------------------------------------
def smart_configuration(services: AccessServices) -> dict:
    root = services.tokens.issuer
    return {
        "issuer": root,
        "jwks_uri": f"{root}/.well-known/jwks.json",
        "authorization_endpoint": f"{root}/oauth/authorize",
        "token_endpoint": f"{root}/oauth/token",
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",  # registered apps are public clients, protected by PKCE
        ],
        "scopes_supported": all_scopes(),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": [
            "launch-standalone",
            "client-public",
            "client-confidential-symmetric",
            "context-standalone-patient",
            "permission-patient",
            "permission-user",
            "permission-v1",
            "permission-v2",
        ],
    }


@router.get("/.well-known/smart-configuration")
@router.get("/fhir/.well-known/smart-configuration")
def smart_configuration_route(request: Request) -> JSONResponse:
    return JSONResponse(smart_configuration(access_services(request.app)))


@router.get("/.well-known/jwks.json")
def jwks_route(request: Request) -> JSONResponse:
    return JSONResponse(
        access_services(request.app).tokens.jwks(),
        headers={"Cache-Control": "public, max-age=3600"},
    )


# -- shared helpers -----------------------------------------------------------------------
async def read_form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != FORM_TYPE:
        raise FormError(f"Send the form as {FORM_TYPE}.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError(f"The form is larger than {MAX_FORM_BYTES:,} bytes.")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=50, errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        raise FormError(
            "The form could not be read (it must be UTF-8, at most 50 fields)."
        ) from None
    return unique(pairs)


def unique(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out:
            raise FormError(f"'{key}' is given more than once.")
        out[key] = value
    return out


async def record(request: Request, event: AccessEvent) -> None:
    """Write ``event`` to the transparency log; 503 (and nothing done) if it cannot."""
    trail = getattr(request.app.state, "trail", None)
    try:
        if trail is None:
            raise RuntimeError("no transparency log is configured (app.state.trail)")
        result = await anyio.to_thread.run_sync(trail.record, event)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:
        # The event names the person; log only what failed.
        log.error(
            "transparency log did not record a %s event: %s", event.action, type(exc).__name__
        )
        raise error(
            503,
            "transient",
            "The transparency log could not record this, so it was not done; try again shortly.",
        ) from None


async def check_password(
    request: Request, services: AccessServices, username: str, password: str
) -> SignInAttempt:
    limiter = getattr(request.app.state, "access_hash_limiter", None)
    if limiter is None:
        limiter = request.app.state.access_hash_limiter = anyio.CapacityLimiter(HASHING_SLOTS)
    return await anyio.to_thread.run_sync(
        services.accounts.check, username, password, limiter=limiter
    )


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await anyio.to_thread.run_sync(fn, *args)


def failed_event(attempt: SignInAttempt) -> AccessEvent:
    name = UNKNOWN if attempt.reason == "unknown account" else attempt.username
    patients: tuple[str, ...] = ()
    if attempt.patient_id:
        # A patient's account name is their NHS number: log their record instead, and list
        # the attempt among the entries about them (they see someone tried to sign in).
        name = f"Patient/{attempt.patient_id}"
        patients = (attempt.patient_id,)
    return AccessEvent("login-failed", "refused", name, patients=patients, reason=attempt.reason)


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def safe_next(value: str | None) -> str:
    """A local path to go to after signing in; anything else (another site) becomes ``/``."""
    if (
        value
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
        and value.isprintable()
    ):
        return value
    return "/"


def redirect_to_app(redirect_uri: str, params: dict[str, str | None]) -> RedirectResponse:
    parts = urlsplit(redirect_uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return RedirectResponse(
        urlunsplit(parts._replace(query=query)),
        status_code=303,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def html(
    template: str, status: int = 200, *, form_targets: tuple[str, ...] = (), **context: Any
) -> HTMLResponse:
    context.setdefault("errors", [])
    body = _TEMPLATES.get_template(template).render(**context)
    targets = " ".join(("'self'", *form_targets))
    return HTMLResponse(
        body,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'self'; form-action {targets}; "
                "frame-ancestors 'none'; base-uri 'none'"
            ),
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def csrf_for_form(request: Request) -> str:
    """The sign-in form's CSRF token: the CSRF cookie's value (double submit), or a new one."""
    current = request.cookies.get(CSRF_COOKIE, "")
    return current if 32 <= len(current) <= 64 else secrets.token_urlsafe(32)


def form_csrf_ok(request: Request, form: dict[str, str]) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get("csrf", "")
    return bool(cookie) and secrets.compare_digest(cookie.encode(), sent.encode())


def signin_page(
    request: Request,
    *,
    action: str,
    hidden: list[tuple[str, str]],
    status: int = 200,
    errors: list[dict] | None = None,
    username: str = "",
    app: OAuthApp | None = None,
    scope_texts: list[str] | None = None,
    form_targets: tuple[str, ...] = (),
) -> HTMLResponse:
    errors = errors or []
    fields = {e["field"]: e["text"] for e in errors}
    csrf = csrf_for_form(request)
    response = html(
        "signin.html",
        status,
        form_targets=form_targets,
        title=f"Sign in to {app.name}" if app else "Sign in to Carelight",
        action=action,
        hidden=hidden,
        csrf=csrf,
        errors=errors,
        username=username,
        username_error=fields.get("username"),
        password_error=fields.get("password"),
        app=app,
        scope_texts=scope_texts or [],
    )
    response.set_cookie(
        CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=secure(request), path="/"
    )
    return response


def missing_fields(username: str, password: str) -> list[dict]:
    errors = []
    if not username:
        errors.append({"field": "username", "text": "Enter your username or NHS number"})
    if not password:
        errors.append({"field": "password", "text": "Enter your password"})
    return errors


STALE_FORM = [{"field": "username", "text": "The sign-in page had expired; sign in again"}]
WRONG = [{"field": "username", "text": SIGNIN_FAILED}]


# -- the token endpoint -------------------------------------------------------------------
def oauth_error(exc: OAuthError) -> JSONResponse:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    status = 400
    if exc.code == "invalid_client":
        status = 401
        headers["WWW-Authenticate"] = 'Basic realm="carelight"'
    return JSONResponse(
        {"error": exc.code, "error_description": exc.description}, status, headers=headers
    )


def token_response(services: AccessServices, token: str, principal: Principal) -> JSONResponse:
    body: dict = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": services.tokens.lifetime,
        "scope": " ".join(sorted(principal.scopes)),
    }
    if principal.patient_id:
        body["patient"] = principal.patient_id  # SMART launch context for a patient's app
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def client_authentication(request: Request, form: dict[str, str]) -> tuple[str, str]:
    """(client_id, client_secret) from HTTP Basic (RFC 6749 §2.3.1) or the form."""
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        if "client_secret" in form:
            raise OAuthError(
                "invalid_request", "Authenticate with HTTP Basic or client_secret, not both."
            )
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_client", "The Basic credentials cannot be read.") from None
        client_id, colon, secret = decoded.partition(":")
        if not colon:
            raise OAuthError("invalid_client", "The Basic credentials need client_id:secret.")
        client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        if form.get("client_id", client_id) != client_id:
            raise OAuthError("invalid_request", "client_id differs from the Basic credentials.")
        return client_id, secret
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if not client_id or secret is None:
        raise OAuthError(
            "invalid_client",
            "Authenticate the client: HTTP Basic, or client_id and client_secret in the form.",
        )
    return client_id, secret


async def client_credentials_grant(
    request: Request, services: AccessServices, form: dict[str, str]
) -> JSONResponse:
    client_id, secret = client_authentication(request, form)
    attempt = await check_password(request, services, client_id, secret)
    if attempt.account is None:
        await record(request, failed_event(attempt))
        raise OAuthError("invalid_client", "The client id or secret is not right.")
    account = attempt.account
    if account.role is not Role.SYSTEM:
        await record(request, refused_token(account, "people cannot use client_credentials"))
        raise OAuthError(
            "unauthorized_client",
            "client_credentials is for source-system clients; people get tokens by signing in "
            "through /oauth/authorize.",
        )
    return await grant_token(request, services, account, form.get("scope"), account.username)


def refused_token(account: Account, reason: str) -> AccessEvent:
    return AccessEvent("token", "refused", account.username, principal_for(account), reason=reason)


async def grant_token(
    request: Request,
    services: AccessServices,
    account: Account,
    requested: str | None,
    client_id: str,
    refusal: str = "invalid_scope",
) -> JSONResponse:
    try:
        granted = narrow(account.scopes, requested)
    except ScopeRefused as exc:
        await record(request, refused_token(account, str(exc)))
        raise OAuthError(refusal, str(exc)) from None
    principal = principal_for(account, granted)
    token = services.tokens.issue(principal, client_id=client_id)
    await record(request, AccessEvent("token", "success", account.username, principal))
    return token_response(services, token, principal)


async def authorization_code_grant(
    request: Request, services: AccessServices, form: dict[str, str]
) -> JSONResponse:
    for name in ("client_id", "code", "redirect_uri", "code_verifier"):
        if not form.get(name):
            raise OAuthError("invalid_request", f"{name} is missing.")
    client_id = form["client_id"]
    if await in_thread(services.apps.get, client_id) is None:
        raise OAuthError("invalid_client", f"No app is registered as '{client_id}'.")
    try:
        grant = await in_thread(
            services.apps.redeem_code,
            form["code"],
            client_id,
            form["redirect_uri"],
            form["code_verifier"],
        )
    except OAuthError as exc:
        await record(request, AccessEvent("token", "refused", client_id, reason=str(exc)))
        raise
    account = await in_thread(services.accounts.get, grant.username)
    if account is None or account.disabled:
        await record(request, AccessEvent("token", "refused", grant.username, reason="disabled"))
        raise OAuthError("invalid_grant", "The account can no longer sign in.")
    return await grant_token(request, services, account, grant.scope, client_id, "invalid_grant")


@router.post("/oauth/token")
async def token_endpoint(request: Request) -> Response:
    services = access_services(request.app)
    try:
        try:
            form = await read_form(request)
        except FormError as exc:
            raise OAuthError("invalid_request", str(exc)) from None
        grant_type = form.get("grant_type")
        if grant_type == "client_credentials":
            return await client_credentials_grant(request, services, form)
        if grant_type == "authorization_code":
            return await authorization_code_grant(request, services, form)
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is missing.")
        raise OAuthError(
            "unsupported_grant_type",
            f"grant_type '{grant_type}' is not supported: source systems use "
            "client_credentials, people authorization_code (through /oauth/authorize).",
        )
    except OAuthError as exc:
        return oauth_error(exc)


# -- the authorisation endpoint -----------------------------------------------------------
@dataclass(frozen=True)
class AuthorizeRequest:
    app: OAuthApp
    redirect_uri: str
    state: str | None
    scope: str
    code_challenge: str
    params: dict[str, str]

    def fail(self, code: str, description: str) -> RedirectError:
        return RedirectError(self.redirect_uri, self.state, code, description)

    @property
    def hidden(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.params.items() if k in AUTHORIZE_PARAMS]

    @property
    def redirect_origin(self) -> str:
        parts = urlsplit(self.redirect_uri)
        return f"{parts.scheme}://{parts.netloc}"


def authorize_request(services: AccessServices, params: dict[str, str]) -> AuthorizeRequest:
    """Check an authorisation request. Until the app and its redirect URI are known good,
    problems are shown to the person (:class:`PageError`); after, sent back to the app."""
    client_id = params.get("client_id", "")
    app = services.apps.get(client_id) if client_id else None
    if app is None:
        raise PageError(
            "Unknown app",
            "The app that sent you here is not registered with Carelight, so you cannot sign "
            "in to it. Go back to the app and tell the people who run it.",
        )
    redirect_uri = params.get("redirect_uri", "")
    if not app.allows_redirect(redirect_uri):
        raise PageError(
            "Sign-in request not accepted",
            f"{app.name} asked to send you back to an address it has not registered, so the "
            "sign-in was stopped. Go back to the app and tell the people who run it.",
        )
    state = params.get("state")
    req = AuthorizeRequest(
        app, redirect_uri, state, params.get("scope", ""), params.get("code_challenge", ""), params
    )
    if params.get("response_type") != "code":
        raise req.fail("unsupported_response_type", "response_type must be code.")
    if not req.code_challenge or params.get("code_challenge_method") != "S256":
        raise req.fail(
            "invalid_request",
            "PKCE is required: send code_challenge and code_challenge_method=S256.",
        )
    if not is_s256_challenge(req.code_challenge):
        raise req.fail(
            "invalid_request", "code_challenge must be base64url(SHA-256(code_verifier))."
        )
    aud = params.get("aud")
    if aud is not None and aud.rstrip("/") != services.tokens.audience:
        raise req.fail("invalid_request", f"aud must be {services.tokens.audience}.")
    for scope in req.scope.split():
        try:
            parse_scope(scope)
        except ValueError as exc:
            raise req.fail("invalid_scope", str(exc)) from None
    return req


def authorize_page(
    request: Request, req: AuthorizeRequest, status: int = 200, **kw: Any
) -> HTMLResponse:
    return signin_page(
        request,
        action="/oauth/authorize",
        hidden=req.hidden,
        status=status,
        app=req.app,
        scope_texts=[describe(s) for s in req.scope.split()] or ["use everything you may use"],
        form_targets=(req.redirect_origin,),
        **kw,
    )


def message_page(title: str, message: str, status: int = 400) -> HTMLResponse:
    return html("message.html", status, title=title, message=message, signed_in=False, csrf="")


@router.get("/oauth/authorize")
async def authorize_form(request: Request) -> Response:
    services = access_services(request.app)
    try:
        params = unique(parse_qsl(request.url.query, keep_blank_values=True))
        req = await in_thread(authorize_request, services, params)
    except FormError as exc:
        return message_page("Sign-in request not accepted", str(exc))
    except PageError as exc:
        return message_page(exc.title, exc.message)
    except RedirectError as exc:
        return exc.response
    return authorize_page(request, req)


@router.post("/oauth/authorize")
async def authorize_submit(request: Request) -> Response:
    services = access_services(request.app)
    try:
        form = await read_form(request)
        req = await in_thread(authorize_request, services, form)
    except FormError as exc:
        return message_page("Sign-in request not accepted", str(exc))
    except PageError as exc:
        return message_page(exc.title, exc.message)
    except RedirectError as exc:
        return exc.response
    username, password = form.get("username", "").strip(), form.get("password", "")
    if not form_csrf_ok(request, form):
        return authorize_page(request, req, 400, errors=STALE_FORM, username=username)
    if missing := missing_fields(username, password):
        return authorize_page(request, req, 400, errors=missing, username=username)
    attempt = await check_password(request, services, username, password)
    if attempt.account is None:
        await record(request, failed_event(attempt))
        return authorize_page(request, req, 400, errors=WRONG, username=username)
    account = attempt.account
    await record(request, AccessEvent("login", "success", account.username, principal_for(account)))
    try:
        granted = narrow(account.scopes, req.scope or None)
    except ScopeRefused as exc:
        return req.fail("invalid_scope", str(exc)).response
    code = await in_thread(
        services.apps.issue_code,
        req.app.client_id,
        req.redirect_uri,
        req.code_challenge,
        " ".join(sorted(granted)),
        account.username,
    )
    return redirect_to_app(
        req.redirect_uri, {"code": code, "state": req.state, "iss": services.tokens.issuer}
    )


# -- web sessions -------------------------------------------------------------------------
@router.get("/signin")
async def signin_form(request: Request) -> Response:
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        principal = await in_thread(access_services(request.app).sessions.principal, session)
        if principal is not None:
            return signed_in_page(request, principal)
    next_path = safe_next(request.query_params.get("next"))
    return signin_page(request, action="/signin", hidden=[("next", next_path)])


def signed_in_page(request: Request, principal: Principal) -> HTMLResponse:
    session = request.cookies.get(SESSION_COOKIE, "")
    return html(
        "message.html",
        title="You are signed in",
        message=f"You are signed in as {principal.display or principal.username}.",
        signed_in=True,
        csrf=csrf_token(session),
    )


@router.post("/signin")
async def signin_submit(request: Request) -> Response:
    services = access_services(request.app)
    try:
        form = await read_form(request)
    except FormError as exc:
        return message_page("Sign-in not accepted", str(exc))
    hidden = [("next", safe_next(form.get("next")))]
    username, password = form.get("username", "").strip(), form.get("password", "")
    if not form_csrf_ok(request, form):
        return signin_page(request, action="/signin", hidden=hidden, status=400, errors=STALE_FORM)
    if missing := missing_fields(username, password):
        return signin_page(
            request, action="/signin", hidden=hidden, status=400, errors=missing, username=username
        )
    attempt = await check_password(request, services, username, password)
    if attempt.account is None:
        await record(request, failed_event(attempt))
        return signin_page(
            request, action="/signin", hidden=hidden, status=400, errors=WRONG, username=username
        )
    return await open_session(request, services, attempt.account, hidden[0][1])


async def open_session(
    request: Request, services: AccessServices, account: Account, next_path: str
) -> RedirectResponse:
    """After a correct password: log the sign-in, start the session, go to ``next_path``.
    (Also the patient app's sign-in, which checks the NHS number and password itself.)"""
    await record(request, AccessEvent("login", "success", account.username, principal_for(account)))
    session = await in_thread(services.sessions.create, account.username)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=int(SESSION_LIFETIME),
        httponly=True,
        samesite="lax",
        secure=secure(request),
        path="/",
    )
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    services = access_services(request.app)
    try:
        form = await read_form(request)
    except FormError as exc:
        return message_page("Sign-out not accepted", str(exc))
    session = request.cookies.get(SESSION_COOKIE)
    if session and not csrf_ok(session, form.get("csrf")):
        return message_page(
            "Sign-out not accepted",
            "The page you signed out from had expired. Go back, reload it and sign out again.",
        )
    # An app may send people back to its own sign-in page (the patient app does).
    response = RedirectResponse(safe_next(form.get("next") or "/signin"), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    if not session:
        return response
    principal = await in_thread(services.sessions.principal, session)
    # The session ends whatever the log says: staying signed in is never the safer failure.
    await in_thread(services.sessions.end, session)
    if principal is not None:
        await record(request, AccessEvent("logout", "success", principal.username, principal))
    return response
