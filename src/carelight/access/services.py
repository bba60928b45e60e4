"""The access package's parts for one app: token service, accounts, sessions, registered apps.

They are made on first use from ``app.state.settings`` and ``app.state.store`` and kept on
``app.state.access``; a test may put its own there first (say, with a cheap password hasher).
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from sqlalchemy import Engine

from carelight.access.accounts import AccountStore
from carelight.access.oauth import OAuthApps
from carelight.access.sessions import SessionStore
from carelight.access.tokens import TokenService
from carelight.config import Settings


@dataclass
class AccessServices:
    tokens: TokenService
    accounts: AccountStore
    sessions: SessionStore
    apps: OAuthApps

    @classmethod
    def create(
        cls, settings: Settings, engine: Engine, *, hasher: PasswordHasher | None = None
    ) -> AccessServices:
        return cls(
            tokens=TokenService.from_settings(settings),
            accounts=AccountStore(engine, hasher),
            sessions=SessionStore(engine),
            apps=OAuthApps(engine),
        )


def access_services(app) -> AccessServices:
    """The app's access services, made on first use."""
    services = getattr(app.state, "access", None)
    if services is None:
        services = AccessServices.create(app.state.settings, app.state.store.engine)
        app.state.access = services
    return services
