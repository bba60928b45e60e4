"""Who is asking: the principal behind a request, from a bearer token or a web session.

:class:`PrincipalMiddleware` (pure ASGI) puts it on ``request.state.principal`` (``None`` for
an anonymous request) and how it was established on ``request.state.auth`` (``"bearer"``,
``"session"`` or ``None``) before any route runs. A bearer token that cannot be accepted is
answered at once with 401, an OperationOutcome and a ``WWW-Authenticate`` challenge (RFC 6750).

The FHIR API (``/fhir``) takes bearer tokens only: the session cookie is for the web pages, so
a page on another site can never make a signed-in browser call the API.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import Request
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from carelight.access.principal import Principal
from carelight.access.services import AccessServices, access_services
from carelight.access.sessions import SESSION_COOKIE
from carelight.access.tokens import TokenError
from carelight.fhir.api import outcome_response
from carelight.fhir.errors import FhirError, error

REALM = "carelight"
BEARER_ONLY = "/fhir"  # this path and everything under it


def challenge(problem: str | None = None) -> str:
    """A ``WWW-Authenticate`` value; with ``problem``, an RFC 6750 invalid_token challenge."""
    if problem is None:
        return f'Bearer realm="{REALM}"'
    text = "".join(c if c.isprintable() and c not in '"\\' else "'" for c in problem)
    return f'Bearer realm="{REALM}", error="invalid_token", error_description="{text}"'


def token_refused(exc: TokenError) -> FhirError:
    err = error(401, "expired" if exc.expired else "login", str(exc))
    err.headers["WWW-Authenticate"] = challenge(str(exc))
    return err


def credentials(scope: Scope) -> tuple[str | None, str | None]:
    """(bearer token, session cookie) from the request's headers; either may be None."""
    bearer = session = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                bearer = token.strip()
        elif name == b"cookie":
            session = cookie_parser(value.decode("latin-1")).get(SESSION_COOKIE) or session
    path = scope.get("path", "")
    if session is not None and (path == BEARER_ONLY or path.startswith(BEARER_ONLY + "/")):
        session = None
    return bearer, session


def bearer_principal(services: AccessServices, token: str) -> Principal:
    """The principal of a bearer token, or a 401 :class:`FhirError`."""
    if not token:
        raise token_refused(TokenError("The Authorization header has no token after 'Bearer'."))
    try:
        return services.tokens.verify(token)
    except TokenError as exc:
        raise token_refused(exc) from None


def authenticate(request: Request) -> Principal | None:
    """The request's principal (None when anonymous); 401 :class:`FhirError` for a bad token.

    Uses what :class:`PrincipalMiddleware` found when it ran; works without it too.
    """
    state = request.scope.get("state") or {}
    if "principal" in state:
        return state["principal"]
    services = access_services(request.app)
    bearer, session = credentials(request.scope)
    if bearer is not None:
        return bearer_principal(services, bearer)
    return services.sessions.principal(session) if session else None


def require_principal(request: Request) -> Principal:
    """The request's principal, or 401 with a challenge when nobody is signed in."""
    principal = authenticate(request)
    if principal is None:
        err = error(401, "login", "Sign in first: send Authorization: Bearer <access token>.")
        err.headers["WWW-Authenticate"] = challenge()
        raise err
    return principal


class PrincipalMiddleware:
    """Sets ``request.state.principal`` and ``request.state.auth`` for every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        bearer, session = credentials(scope)
        principal = None
        auth = None
        if bearer is not None:
            services = access_services(scope["app"])
            try:
                principal = bearer_principal(services, bearer)
            except FhirError as exc:
                if scope["type"] == "http":
                    await outcome_response(exc)(scope, receive, send)
                else:
                    await send({"type": "websocket.close", "code": 1008})
                return
            auth = "bearer"
        elif session is not None:
            services = access_services(scope["app"])
            # In a worker thread: the look-up may also write (last_seen, once a minute), and
            # a write can wait for SQLite's lock. Web pages are not the hot path; the API is.
            principal = await anyio.to_thread.run_sync(services.sessions.principal, session)
            auth = "session" if principal is not None else None
        state["principal"] = principal
        state["auth"] = auth
        await self.app(scope, receive, send)
