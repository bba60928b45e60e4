"""Drop ``ix_sp_reference_reverse``: every reverse look-up is answered by the target index.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25

``ix_sp_reference_reverse`` is ``(target_type, target_id)``. Every query that follows a
reference backwards (``_revinclude``, ``_has``, chained searches, ``patient=``) also names
the source type and the parameter, which ``ix_sp_reference_target`` ``(res_type, param,
target_id, target_type)`` starts with, so the planners use that one; nothing asks for "whatever
refers to X" without them. The index cost a bulk load about an eighth of its end-of-load index
build and a sixth of the reference rows' insert work on ordinary writes. A downgrade puts it
back. See docs/decisions/0002-store-and-search-index.md (addendum of 2026-11-25, second).
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_sp_reference_reverse", table_name="sp_reference", if_exists=True)


def downgrade() -> None:
    op.create_index(
        "ix_sp_reference_reverse",
        "sp_reference",
        ["target_type", "target_id"],
        unique=False,
        if_not_exists=True,
    )
