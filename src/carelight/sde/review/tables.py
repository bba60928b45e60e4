"""The tables of jobs, their outputs, output checking and releases (SQLAlchemy Core, on the
SDE's ``metadata`` so they hang off ``sde_project``). Created by migration ``0011``.

What is stored is the *record* of a job, never what it produced: code hashes, times, status,
the isolation the sandbox reported, each output file's name, kind, size and hash, the
disclosure-control evidence (which rule, which cells, what was done: positions, never values)
and the checkers' votes. Output contents stay in the job's folder inside the environment.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from carelight.sde.tables import Double, PrimaryKey, metadata

sde_job = Table(
    "sde_job",
    metadata,
    Column("id", PrimaryKey, primary_key=True, autoincrement=True),
    Column(
        "project_id", PrimaryKey, ForeignKey("sde_project.id", ondelete="CASCADE"), nullable=False
    ),
    Column("username", String(128), nullable=False),  # who submitted it
    Column("title", String(200), nullable=False),
    Column("definition_sha256", String(64), nullable=False),
    Column("script_sha256", String(64), nullable=False),
    Column("engine", String(16), nullable=False),  # duckdb | spark
    Column("data", String(8), nullable=False),  # dummy | real
    Column("code_of", BigInteger),  # the dummy job whose frozen code a real run uses
    Column("extract_id", String(64)),  # the research store a real run read
    Column("producer", String(200), nullable=False),  # the dataset step's module:function
    Column("status", String(16), nullable=False),  # queued | running | succeeded | failed
    Column("submitted", Double, nullable=False),
    Column("started", Double),
    Column("finished", Double),
    Column("isolation", String(16)),  # namespaces | fallback (as the sandbox reported)
    Column("backend", String(16)),  # bwrap | unshare | rlimits
    Column("exit_status", Integer),  # the last step's exit code (None: killed by a signal)
    Column("failed_step", String(16)),
    Column("error", Text),  # why it failed, in the platform's words; never the job's output
    Column("log_index", BigInteger),  # the log entry of its submission
    Column("finish_log_index", BigInteger),
    Index("ix_sde_job_project", "project_id", "id"),
    Index("ix_sde_job_status", "status"),
)

sde_job_output = Table(
    "sde_job_output",
    metadata,
    Column("id", PrimaryKey, primary_key=True, autoincrement=True),
    Column("job_id", PrimaryKey, ForeignKey("sde_job.id", ondelete="CASCADE"), nullable=False),
    Column("path", String(500), nullable=False),  # relative to the run's outputs folder
    Column("kind", String(16), nullable=False),  # row_level | aggregate | disallowed
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64)),
    Column("reasons", Text, nullable=False),  # JSON list: why it has that kind
    Column("disclosure", String(16)),  # passed | modified | blocked (aggregate files only)
    Column("evidence", Text),  # JSON: the disclosure-control evidence record
    Column("safe_sha256", String(64)),  # the safe (redacted) version's hash
    Column("safe_size", BigInteger),
    Column("review", String(24)),  # pending | approved | changes-requested | rejected
    Column("decided", Double),
    UniqueConstraint("job_id", "path", name="uq_sde_job_output_path"),
    Index("ix_sde_job_output_review", "review"),
)

sde_review_vote = Table(
    "sde_review_vote",
    metadata,
    Column("id", PrimaryKey, primary_key=True, autoincrement=True),
    Column(
        "output_id",
        PrimaryKey,
        ForeignKey("sde_job_output.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("checker", String(128), nullable=False),
    Column("decision", String(24), nullable=False),  # approve | request-changes | reject
    Column("comment", Text, nullable=False),
    Column("at", Double, nullable=False),
    Column("log_index", BigInteger),
    UniqueConstraint("output_id", "checker", name="uq_sde_review_vote_checker"),
)

sde_release = Table(
    "sde_release",
    metadata,
    Column("id", PrimaryKey, primary_key=True, autoincrement=True),
    Column(
        "output_id",
        PrimaryKey,
        ForeignKey("sde_job_output.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("job_id", PrimaryKey, nullable=False),
    Column("project_id", PrimaryKey, nullable=False),
    Column("path", String(500), nullable=False),
    Column("sha256", String(64), nullable=False),  # of the released (safe) bytes
    Column("size", BigInteger, nullable=False),
    Column("released", Double, nullable=False),
    Column("checkers", String(300), nullable=False),  # who approved it, comma-separated
    Column("log_index", BigInteger),
    Index("ix_sde_release_project", "project_id", "id"),
)

TABLES = (sde_release, sde_review_vote, sde_job_output, sde_job)  # children first
