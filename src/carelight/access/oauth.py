"""Registered apps and authorisation codes for the OAuth 2 authorisation-code flow with PKCE.

People get access tokens through an app registered here (a public client: no secret, PKCE
S256 instead). Redirect URIs are matched exactly, except that a loopback one
(``http://127.0.0.1/…`` or ``http://[::1]/…``) matches any port, for apps on the user's own
machine (RFC 8252 §7.3). A code lives two minutes, is stored only as a SHA-256 digest, and is
spent on its first presentation whether or not the exchange succeeds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import Engine, insert, select, update

from carelight.access import schema
from carelight.access.accounts import write_transaction
from carelight.access.sessions import digest

C = schema.oauth_client
K = schema.auth_code
CODE_LIFETIME = 120.0
_CLIENT_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 §4.1
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256, unpadded
LOOPBACK_HOSTS = ("127.0.0.1", "::1")


class OAuthError(ValueError):
    """An OAuth error (RFC 6749 §4.1.2.1, §5.2): ``code`` is the error, the message its
    description."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge for a verifier: base64url(SHA-256(verifier)), unpadded."""
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def is_s256_challenge(value: str) -> bool:
    return _CHALLENGE.fullmatch(value) is not None


def check_redirect_uri(uri: str) -> str:
    """A redirect URI an app may register: https, or http to a loopback address; no fragment."""
    parts = urlsplit(uri)
    loopback = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    if parts.fragment or not parts.hostname or not (parts.scheme == "https" or loopback):
        raise ValueError(
            f"'{uri}' cannot be a redirect URI: use https://…, or http://127.0.0.1/… for an "
            "app on the user's own machine, without a #fragment."
        )
    return uri


def _without_port(uri: str) -> tuple[str, str, str, str]:
    parts = urlsplit(uri)
    return parts.scheme, parts.hostname or "", parts.path, parts.query


@dataclass(frozen=True, slots=True)
class OAuthApp:
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]

    def allows_redirect(self, uri: str) -> bool:
        if uri in self.redirect_uris:
            return True
        parts = urlsplit(uri)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
            return False
        return any(
            urlsplit(r).hostname == parts.hostname and _without_port(r) == _without_port(uri)
            for r in self.redirect_uris
        )


@dataclass(frozen=True, slots=True)
class Grant:
    """What a redeemed code grants: the account and the scopes agreed at sign-in."""

    username: str
    scope: str


class OAuthApps:
    """The app register and the authorisation codes issued to its apps."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def register(self, client_id: str, name: str, redirect_uris: list[str]) -> OAuthApp:
        if not _CLIENT_ID.fullmatch(client_id):
            raise ValueError("A client id is 1 to 128 lower-case letters, digits, '.', '_' or '-'.")
        if not redirect_uris:
            raise ValueError("An app needs at least one redirect URI.")
        uris = tuple(check_redirect_uri(u) for u in redirect_uris)
        with write_transaction(self.engine) as conn:
            if conn.execute(select(C.c.client_id).where(C.c.client_id == client_id)).first():
                raise ValueError(f"There is already an app with client id '{client_id}'.")
            conn.execute(
                insert(C).values(
                    client_id=client_id,
                    name=name or client_id,
                    redirect_uris=" ".join(uris),
                    created=self.clock(),
                )
            )
        return OAuthApp(client_id, name or client_id, uris)

    def get(self, client_id: str) -> OAuthApp | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(C).where(C.c.client_id == client_id)).first()
        if row is None:
            return None
        return OAuthApp(row.client_id, row.name, tuple(row.redirect_uris.split()))

    def list(self) -> list[OAuthApp]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(C).order_by(C.c.client_id)).all()
        return [OAuthApp(r.client_id, r.name, tuple(r.redirect_uris.split())) for r in rows]

    # -- codes ----------------------------------------------------------------------------
    def issue_code(
        self, client_id: str, redirect_uri: str, code_challenge: str, scope: str, username: str
    ) -> str:
        if not is_s256_challenge(code_challenge):
            raise OAuthError("invalid_request", "code_challenge must be an S256 challenge.")
        code = secrets.token_urlsafe(32)
        now = self.clock()
        with write_transaction(self.engine) as conn:
            conn.execute(
                insert(K).values(
                    code_hash=digest(code),
                    client_id=client_id,
                    redirect_uri=redirect_uri,
                    code_challenge=code_challenge,
                    scope=scope,
                    username=username,
                    created=now,
                    expires=now + CODE_LIFETIME,
                    used=False,
                )
            )
        return code

    def redeem_code(self, code: str, client_id: str, redirect_uri: str, verifier: str) -> Grant:
        """Spend a code; :class:`OAuthError` (``invalid_grant``) unless every check passes."""
        key = digest(code)
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(K).where(K.c.code_hash == key)).first()
            if row is None:
                raise OAuthError("invalid_grant", "The authorisation code is not known.")
            spent = conn.execute(
                update(K).where(K.c.code_hash == key, K.c.used.is_(False)).values(used=True)
            )
        if spent.rowcount != 1:
            raise OAuthError("invalid_grant", "The authorisation code has already been used.")
        if self.clock() >= row.expires:
            raise OAuthError("invalid_grant", "The authorisation code has expired; sign in again.")
        if row.client_id != client_id:
            raise OAuthError("invalid_grant", "The authorisation code was issued to another app.")
        if row.redirect_uri != redirect_uri:
            raise OAuthError(
                "invalid_grant", "redirect_uri differs from the one the code was issued for."
            )
        if not _VERIFIER.fullmatch(verifier) or not hmac.compare_digest(
            pkce_challenge(verifier), row.code_challenge
        ):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge.")
        return Grant(row.username, row.scope)
