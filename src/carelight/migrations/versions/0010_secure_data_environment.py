"""The secure data environment: research projects, accreditation, extracts.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25

Projects with their members and the history of every decision, researchers' accreditation,
and the record of each research-store extract with the Patient records it included (for the
patient's "how my data is used" page). See ``carelight.sde.tables``; the columns are frozen
here as they stood when the migration was written.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Double = sa.Float(precision=53)
PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _project_fk() -> sa.Column:
    return sa.Column(
        "project_id", PK, sa.ForeignKey("sde_project.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "sde_project",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("lay_summary", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("legal_basis", sa.String(32), nullable=False),
        sa.Column("confidentiality_basis", sa.String(32), nullable=False),
        sa.Column("organisation", sa.String(200), nullable=False),
        sa.Column("commercial", sa.Boolean, nullable=False),
        sa.Column("tables", sa.Text, nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("created", Double, nullable=False),
        sa.Column("updated", Double, nullable=False),
        sa.Column("decision_reason", sa.Text),
    )
    op.create_index("ix_sde_project_status", "sde_project", ["status"])
    op.create_table(
        "sde_project_member",
        sa.Column(
            "project_id",
            PK,
            sa.ForeignKey("sde_project.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("username", sa.String(128), primary_key=True),
        sa.Column("added", Double, nullable=False),
    )
    op.create_index("ix_sde_member_username", "sde_project_member", ["username"])
    op.create_table(
        "sde_project_event",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        _project_fk(),
        sa.Column("transition", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("at", Double, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("log_index", sa.BigInteger),
    )
    op.create_index("ix_sde_project_event_project", "sde_project_event", ["project_id", "id"])
    op.create_table(
        "sde_accreditation",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("body", sa.String(200), nullable=False),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_to", sa.Date, nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded", Double, nullable=False),
        sa.Column("log_index", sa.BigInteger),
    )
    op.create_index("ix_sde_accreditation_username", "sde_accreditation", ["username"])
    op.create_table(
        "sde_extract",
        sa.Column("id", sa.String(64), primary_key=True),
        _project_fk(),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("started", Double, nullable=False),
        sa.Column("finished", Double),
        sa.Column("log_tree_size", sa.BigInteger),
        sa.Column("log_root_hash", sa.String(64)),
        sa.Column("tables", sa.Text, nullable=False),
        sa.Column("source_counts", sa.Text),
        sa.Column("table_rows", sa.Text),
        sa.Column("people", sa.BigInteger),
        sa.Column("opted_out", sa.BigInteger),
        sa.Column("opt_outs_applied", sa.Boolean, nullable=False),
        sa.Column("withheld", sa.BigInteger),
        sa.Column("log_index", sa.BigInteger),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_sde_extract_project", "sde_extract", ["project_id", "started"])
    op.create_table(
        "sde_extract_person",
        sa.Column(
            "extract_id",
            sa.String(64),
            sa.ForeignKey("sde_extract.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("patient_id", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_sde_extract_person_patient", "sde_extract_person", ["patient_id", "extract_id"]
    )
    op.create_index("ix_sde_extract_person_extract", "sde_extract_person", ["extract_id"])


def downgrade() -> None:
    for table in (
        "sde_extract_person",
        "sde_extract",
        "sde_accreditation",
        "sde_project_event",
        "sde_project_member",
        "sde_project",
    ):
        op.drop_table(table)
