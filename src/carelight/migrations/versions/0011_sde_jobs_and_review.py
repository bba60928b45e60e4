"""The secure data environment's jobs, their outputs, output checking and releases.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25

See ``carelight.sde.review.tables``; the columns are frozen here as they stood when the
migration was written.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Double = sa.Float(precision=53)
PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sde_job",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id", PK, sa.ForeignKey("sde_project.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("definition_sha256", sa.String(64), nullable=False),
        sa.Column("script_sha256", sa.String(64), nullable=False),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("data", sa.String(8), nullable=False),
        sa.Column("code_of", sa.BigInteger),
        sa.Column("extract_id", sa.String(64)),
        sa.Column("producer", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("submitted", Double, nullable=False),
        sa.Column("started", Double),
        sa.Column("finished", Double),
        sa.Column("isolation", sa.String(16)),
        sa.Column("backend", sa.String(16)),
        sa.Column("exit_status", sa.Integer),
        sa.Column("failed_step", sa.String(16)),
        sa.Column("error", sa.Text),
        sa.Column("log_index", sa.BigInteger),
        sa.Column("finish_log_index", sa.BigInteger),
    )
    op.create_index("ix_sde_job_project", "sde_job", ["project_id", "id"])
    op.create_index("ix_sde_job_status", "sde_job", ["status"])
    op.create_table(
        "sde_job_output",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("job_id", PK, sa.ForeignKey("sde_job.id", ondelete="CASCADE"), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("disclosure", sa.String(16)),
        sa.Column("evidence", sa.Text),
        sa.Column("safe_sha256", sa.String(64)),
        sa.Column("safe_size", sa.BigInteger),
        sa.Column("review", sa.String(24)),
        sa.Column("decided", Double),
        sa.UniqueConstraint("job_id", "path", name="uq_sde_job_output_path"),
    )
    op.create_index("ix_sde_job_output_review", "sde_job_output", ["review"])
    op.create_table(
        "sde_review_vote",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column(
            "output_id",
            PK,
            sa.ForeignKey("sde_job_output.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("checker", sa.String(128), nullable=False),
        sa.Column("decision", sa.String(24), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("at", Double, nullable=False),
        sa.Column("log_index", sa.BigInteger),
        sa.UniqueConstraint("output_id", "checker", name="uq_sde_review_vote_checker"),
    )
    op.create_table(
        "sde_release",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column(
            "output_id",
            PK,
            sa.ForeignKey("sde_job_output.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("job_id", PK, nullable=False),
        sa.Column("project_id", PK, nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("released", Double, nullable=False),
        sa.Column("checkers", sa.String(300), nullable=False),
        sa.Column("log_index", sa.BigInteger),
    )
    op.create_index("ix_sde_release_project", "sde_release", ["project_id", "id"])


def downgrade() -> None:
    op.drop_table("sde_release")
    op.drop_table("sde_review_vote")
    op.drop_index("ix_sde_job_output_review", table_name="sde_job_output")
    op.drop_table("sde_job_output")
    op.drop_index("ix_sde_job_status", table_name="sde_job")
    op.drop_index("ix_sde_job_project", table_name="sde_job")
    op.drop_table("sde_job")
