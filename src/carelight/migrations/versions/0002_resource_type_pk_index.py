"""Index resource (res_type, deleted, pk): unfiltered searches page in insertion order without sorting.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_resource_type_pk", "resource", ["res_type", "deleted", "pk"])


def downgrade() -> None:
    op.drop_index("ix_resource_type_pk", table_name="resource")
