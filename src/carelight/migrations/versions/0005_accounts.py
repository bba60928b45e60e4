"""Accounts, registered apps, web sessions and authorisation codes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Double = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("display", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("organization_id", sa.String(length=64), nullable=True),
        sa.Column("organization_code", sa.String(length=16), nullable=True),
        sa.Column("organization_name", sa.String(length=200), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("nhs_number", sa.String(length=10), nullable=True),
        sa.Column("source", sa.String(length=512), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", Double, nullable=True),
        sa.Column("created", Double, nullable=False),
        sa.PrimaryKeyConstraint("username"),
    )
    op.create_table(
        "web_session",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("created", Double, nullable=False),
        sa.Column("expires", Double, nullable=False),
        sa.Column("last_seen", Double, nullable=False),
        sa.ForeignKeyConstraint(["username"], ["account.username"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_web_session_username", "web_session", ["username"])
    op.create_index("ix_web_session_expires", "web_session", ["expires"])
    op.create_table(
        "oauth_client",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("created", Double, nullable=False),
        sa.PrimaryKeyConstraint("client_id"),
    )
    op.create_table(
        "auth_code",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("created", Double, nullable=False),
        sa.Column("expires", Double, nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["oauth_client.client_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["username"], ["account.username"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    op.create_index("ix_auth_code_expires", "auth_code", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_auth_code_expires", table_name="auth_code")
    op.drop_table("auth_code")
    op.drop_table("oauth_client")
    op.drop_index("ix_web_session_expires", table_name="web_session")
    op.drop_index("ix_web_session_username", table_name="web_session")
    op.drop_table("web_session")
    op.drop_table("account")
