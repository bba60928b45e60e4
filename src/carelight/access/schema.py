"""Tables for accounts, web sessions and the OAuth2 flows (SQLAlchemy Core).

They live in the operational store's database, next to the FHIR tables, and are created by
migration ``0005_accounts``. Secrets are never stored: passwords and client secrets as Argon2
hashes, session tokens and authorisation codes as SHA-256 digests of their random values.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table
from sqlalchemy import Text as TextType

metadata = MetaData()
Double = Float(precision=53)  # epoch seconds, UTC, as in the FHIR tables

account = Table(
    "account",
    metadata,
    # Patients: their NHS number. Source-system clients: the OAuth client_id.
    Column("username", String(128), primary_key=True),
    Column("role", String(32), nullable=False),  # a carelight.access.principal.Role value
    Column("display", String(200), nullable=False),
    Column("password_hash", TextType),  # Argon2id; NULL: cannot sign in with a password
    Column("organization_id", String(64)),  # Organization logical id, e.g. "Y99101-org"
    Column("organization_code", String(16)),  # its ODS code
    Column("organization_name", String(200)),
    Column("patient_id", String(64)),  # patients: the Patient the account is linked to
    Column("nhs_number", String(10)),
    Column("source", String(512)),  # system clients: the meta.source URI they write as
    Column("scopes", TextType, nullable=False),  # allowed SMART scopes, space-separated
    Column("disabled", Boolean, nullable=False),
    Column("failed_logins", Integer, nullable=False),  # consecutive failures, for throttling
    Column("locked_until", Double),  # no password check before this instant
    Column("created", Double, nullable=False),
)

web_session = Table(
    "web_session",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # hex SHA-256 of the cookie's value
    Column(
        "username",
        String(128),
        ForeignKey("account.username", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created", Double, nullable=False),
    Column("expires", Double, nullable=False),  # absolute end, whatever the activity
    Column("last_seen", Double, nullable=False),  # for the idle time-out
    Index("ix_web_session_username", "username"),
    Index("ix_web_session_expires", "expires"),
)

oauth_client = Table(
    "oauth_client",
    metadata,
    # Registered apps that people sign in to through /oauth/authorize. Public clients (PKCE,
    # no secret); source systems use client credentials and are accounts instead.
    Column("client_id", String(128), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("redirect_uris", TextType, nullable=False),  # space-separated, matched exactly
    Column("created", Double, nullable=False),
)

auth_code = Table(
    "auth_code",
    metadata,
    Column("code_hash", String(64), primary_key=True),  # hex SHA-256 of the code
    Column(
        "client_id",
        String(128),
        ForeignKey("oauth_client.client_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("redirect_uri", TextType, nullable=False),
    Column("code_challenge", String(128), nullable=False),  # PKCE, S256 only
    Column("scope", TextType, nullable=False),
    Column(
        "username",
        String(128),
        ForeignKey("account.username", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created", Double, nullable=False),
    Column("expires", Double, nullable=False),
    Column("used", Boolean, nullable=False),
    Index("ix_auth_code_expires", "expires"),
)

TABLES = (account, web_session, oauth_client, auth_code)
