"""Access tokens: JWTs signed with Ed25519 (EdDSA), verified on every API request.

A token says who the principal is (role, organisation, linked Patient, source URI) and which
scopes it carries, so a request needs no database look-up to know who is asking. Tokens are
short-lived (an hour) and follow RFC 9068 (``typ: at+jwt``; ``iss``, ``aud``, ``sub``,
``client_id``, ``iat``, ``exp``, ``jti``); the audience is the FHIR base URL.

The signing key is ``$CARELIGHT_HOME/keys/token-signing.ed25519`` (PKCS #8 PEM, mode 0600),
created on first use; its public half is published at ``/.well-known/jwks.json``. Verified
tokens are cached (a bounded LRU keyed by the token, each entry until the token expires), so
a client re-using its token costs a dictionary look-up, not a signature check.

The compact JWS is written and checked here directly (RFC 7515 with RFC 8037's EdDSA) rather
than through a general JWT library: only one algorithm and one key are ever accepted, and a
general library's per-character checks doubled the cost of a first verification.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from carelight.access.principal import SERVICE_ROLES, Principal, Role
from carelight.config import Settings
from carelight.keys import load_or_create_ed25519

log = logging.getLogger(__name__)

KEY_FILE = "token-signing.ed25519"
TOKEN_TYPE = "at+jwt"  # RFC 9068
ALGORITHM = "EdDSA"
TOKEN_LIFETIME = 3600
LEEWAY = 30  # seconds of clock difference tolerated between the hosts that issue and verify
CACHE_SIZE = 4096
MAX_TOKEN_LENGTH = 8192
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp", "jti", "role")
# Principal fields carried in the token, under these claim names; absent ones are left out.
_CLAIMS = (
    ("display", "name"),
    ("organization_id", "org"),
    ("organization_code", "org_code"),
    ("organization_name", "org_name"),
    ("patient_id", "patient"),
    ("nhs_number", "nhs"),
    ("source", "source"),
)


class TokenError(Exception):
    """A bearer token this server will not accept; the message says why and what to do."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The token-signing key at ``path``, created (mode 0600) if there is none yet."""
    return load_or_create_ed25519(path)


def public_jwk(public_key: Ed25519PublicKey) -> dict:
    """The public key as an OKP JSON Web Key (RFC 8037), with its RFC 7638 thumbprint as kid."""
    x = _b64url(public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    # RFC 7638: the required members in lexical order, no whitespace (orjson writes none).
    canonical = orjson.dumps({"crv": "Ed25519", "kty": "OKP", "x": x})
    kid = _b64url(hashlib.sha256(canonical).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": ALGORITHM}


def issuer_for(base_url: str) -> str:
    """The token issuer: the server's root URL (the FHIR base without its ``/fhir``)."""
    base = base_url.rstrip("/")
    return base.removesuffix("/fhir") if base.endswith("/fhir") else base


class TokenService:
    """Issues and verifies access tokens for one server (one issuer, one audience)."""

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        *,
        issuer: str,
        audience: str,
        lifetime: int = TOKEN_LIFETIME,
        cache_size: int = CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key()
        self.jwk = public_jwk(self.public_key)
        self.kid = self.jwk["kid"]
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime
        self.clock = clock
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, **kw) -> TokenService:
        key = load_signing_key(settings.home / "keys" / KEY_FILE)
        return cls(key, issuer=issuer_for(settings.base_url), audience=settings.base_url, **kw)

    def jwks(self) -> dict:
        return {"keys": [self.jwk]}

    # -- issuing --------------------------------------------------------------------------
    def issue(
        self,
        principal: Principal,
        scopes: frozenset[str] | None = None,
        *,
        client_id: str | None = None,
        lifetime: int | None = None,
    ) -> str:
        """A signed access token for ``principal`` with ``scopes`` (default: its own)."""
        if principal.role in SERVICE_ROLES:
            raise TokenError(f"No token is issued for the {principal.role.value} service role.")
        now = int(self.clock())
        granted = principal.scopes if scopes is None else scopes
        claims: dict = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": principal.username,
            "client_id": client_id or principal.username,
            "iat": now,
            "exp": now + (self.lifetime if lifetime is None else lifetime),
            "jti": secrets.token_urlsafe(12),
            "scope": " ".join(sorted(granted)),
            "role": principal.role.value,
        }
        for attr, claim in _CLAIMS:
            value = getattr(principal, attr)
            if value:
                claims[claim] = value
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": TOKEN_TYPE}
        signing_input = f"{_b64url(orjson.dumps(header))}.{_b64url(orjson.dumps(claims))}"
        signature = self._private_key.sign(signing_input.encode())
        return f"{signing_input}.{_b64url(signature)}"

    # -- verifying ------------------------------------------------------------------------
    def verify(self, token: str) -> Principal:
        """The principal a token stands for; :class:`TokenError` if it is not acceptable."""
        now = self.clock()
        with self._lock:
            hit = self._cache.get(token)
            if hit is not None:
                if now < hit[1]:
                    self._cache.move_to_end(token)
                    return hit[0]
                del self._cache[token]
        principal, expires = self._verify_signed(token, now)
        with self._lock:
            self._cache[token] = (principal, expires)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return principal

    def _verify_signed(self, token: str, now: float) -> tuple[Principal, float]:
        claims = self._check_signature(token)
        missing = [c for c in REQUIRED_CLAIMS if c not in claims]
        if missing:
            raise TokenError(f"The token has no '{missing[0]}' claim.")
        if claims["iss"] != self.issuer:
            raise TokenError(f"The token was not issued by {self.issuer}.")
        aud = claims["aud"]
        if aud != self.audience and not (isinstance(aud, list) and self.audience in aud):
            raise TokenError(
                f"The token is for another server; this one is {self.audience}. If you made "
                "it with `carelight token`, set CARELIGHT_BASE_URL to this server's FHIR base."
            )
        exp, iat = claims["exp"], claims["iat"]
        if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in (exp, iat)):
            raise TokenError("The token's exp and iat must be numbers (seconds since 1970).")
        if now >= exp + LEEWAY:
            raise TokenError("The token has expired; get a new one.", expired=True)
        if iat > now + LEEWAY:
            raise TokenError("The token was issued in the future; check the clocks.")
        try:
            role = Role(claims["role"])
        except ValueError:
            raise TokenError(f"The token names an unknown role '{claims['role']}'.") from None
        if role in SERVICE_ROLES:
            raise TokenError(f"No token may act as the {role.value} service role.")
        scope = claims.get("scope", "")
        fields = {attr: claims.get(claim) for attr, claim in _CLAIMS}
        if not isinstance(scope, str) or not all(
            v is None or isinstance(v, str) for v in (claims["sub"], *fields.values())
        ):
            raise TokenError("The token's sub, scope and identity claims must be strings.")
        fields["display"] = fields["display"] or ""
        principal = Principal(
            username=claims["sub"], role=role, scopes=frozenset(scope.split()), **fields
        )
        return principal, exp + LEEWAY

    def _check_signature(self, token: str) -> dict:
        """The claims of a compact JWS whose EdDSA signature is this server's.

        Only what this server issues is accepted: ``alg`` EdDSA (so no algorithm confusion),
        our ``kid`` and ``typ: at+jwt``. Nothing in the payload is looked at before the
        signature has been checked.
        """
        if len(token) > MAX_TOKEN_LENGTH or not _COMPACT_JWS.fullmatch(token):
            raise TokenError("The bearer token is not a well-formed JWT.")
        header_b64, payload_b64, signature_b64 = token.split(".")
        try:
            header = orjson.loads(_b64decode(header_b64))
        except (ValueError, orjson.JSONDecodeError):
            raise TokenError("The bearer token is not a well-formed JWT.") from None
        if not isinstance(header, dict):
            raise TokenError("The bearer token is not a well-formed JWT.")
        if header.get("alg") != ALGORITHM:
            raise TokenError(f"The token must be signed with {ALGORITHM}, not {header.get('alg')}.")
        if header.get("kid") != self.kid:
            raise TokenError(
                "The token was signed with a key this server does not know; get a new token."
            )
        if header.get("typ") != TOKEN_TYPE or "crit" in header:
            raise TokenError(f"The token is not an access token (typ must be {TOKEN_TYPE}).")
        try:
            self.public_key.verify(
                _b64decode(signature_b64), f"{header_b64}.{payload_b64}".encode()
            )
        except (ValueError, InvalidSignature):
            raise TokenError(
                "The token's signature does not verify: it was altered, or signed by another "
                "server."
            ) from None
        try:
            claims = orjson.loads(_b64decode(payload_b64))
        except (ValueError, orjson.JSONDecodeError):
            raise TokenError("The token's claims are not a JSON object.") from None
        if not isinstance(claims, dict):
            raise TokenError("The token's claims are not a JSON object.")
        return claims


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
