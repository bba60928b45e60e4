"""Web sessions: a random token in an HttpOnly cookie, only its SHA-256 in the database.

A session ends after ``SESSION_LIFETIME`` whatever happens, after ``IDLE_TIMEOUT`` without a
request, at sign-out, or as soon as its account is disabled. Forms posted within a session
carry a CSRF token derived from the session token, which a cross-site page cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from sqlalchemy import Engine, delete, insert, select, update

from carelight.access import schema
from carelight.access.accounts import principal_for, row_to_account, write_transaction
from carelight.access.principal import Principal

S = schema.web_session
A = schema.account
SESSION_COOKIE = "carelight_session"
SESSION_LIFETIME = 8 * 3600.0  # a working day
IDLE_TIMEOUT = 30 * 60.0
TOUCH_INTERVAL = 60.0  # last_seen is written at most once a minute, not on every request


def digest(secret: str) -> str:
    """Hex SHA-256: how random secrets (session tokens, codes) are kept at rest."""
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(session_token: str) -> str:
    """The CSRF token for forms posted within a session (HMAC keyed by the session token)."""
    return hmac.new(session_token.encode(), b"carelight-csrf", hashlib.sha256).hexdigest()


def csrf_ok(session_token: str | None, submitted: str | None) -> bool:
    if not session_token or not submitted:
        return False
    return hmac.compare_digest(csrf_token(session_token), submitted)


class SessionStore:
    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def create(self, username: str) -> str:
        """Start a session for an account; returns the token for the cookie (kept nowhere)."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with write_transaction(self.engine) as conn:
            conn.execute(delete(S).where(S.c.expires < now))
            conn.execute(
                insert(S).values(
                    token_hash=digest(token),
                    username=username,
                    created=now,
                    expires=now + SESSION_LIFETIME,
                    last_seen=now,
                )
            )
        return token

    def principal(self, token: str) -> Principal | None:
        """Who a live session belongs to; None for an unknown, ended or idle session, or a
        disabled account."""
        if not token or len(token) > 100:
            return None
        key = digest(token)
        now = self.clock()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(A, S.c.expires, S.c.last_seen)
                .join(S, S.c.username == A.c.username)
                .where(S.c.token_hash == key)
            ).first()
        if row is None:
            return None
        m = row._mapping
        if m["disabled"] or now >= m["expires"] or now >= m["last_seen"] + IDLE_TIMEOUT:
            return None
        if now - m["last_seen"] >= TOUCH_INTERVAL:
            with write_transaction(self.engine) as conn:
                conn.execute(update(S).where(S.c.token_hash == key).values(last_seen=now))
        return principal_for(row_to_account(m))

    def end(self, token: str) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(delete(S).where(S.c.token_hash == digest(token)))
