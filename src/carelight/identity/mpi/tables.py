"""The master patient index's tables (migration 0007).

``person_link`` (in ``carelight.fhir.schema``, one row per current Patient record) is what the
gate, opt-outs and ``$everything`` read; the index writes it. These tables hold the rest: why
each record belongs to its person, the blocking keys candidates are found by, the review
queue, and the trained models.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()
Double = Float(precision=53)
PK = BigInteger().with_variant(Integer(), "sqlite")

# One row per current Patient record: its person, its linkage features (JSON), and how the
# link was decided.
mpi_record = Table(
    "mpi_record",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("res_pk", PK, nullable=False),
    Column("person", String(64), nullable=False),
    Column("features", Text, nullable=False),  # LinkageRecord as JSON
    Column("nhs_number", String(10)),  # the record's own usable (verified or unmarked) number
    # how: nhs-number | probabilistic | new | review (own person, a review item open) |
    # reviewed (a person accepted it) | split (a person split it off)
    Column("how", String(16), nullable=False),
    Column("probability", Double),
    Column("match_weight", Double),
    Column("matched_id", String(64)),
    Column("model_version", Integer),
    Column("decided_at", Double, nullable=False),
    Column("decided_by", String(128)),  # a username for reviewed / split
    Index("ix_mpi_record_person", "person", "patient_id"),
)

# The blocking keys of each record (rule, key): candidates share at least one.
mpi_block = Table(
    "mpi_block",
    metadata,
    Column("rule", String(64), nullable=False),  # the rule's columns joined by "+"
    Column("key", String(256), nullable=False),
    Column("patient_id", String(64), nullable=False),
    PrimaryKeyConstraint("rule", "key", "patient_id"),
    Index("ix_mpi_block_patient", "patient_id"),
)

# Pairs for a person to decide. status: open | accepted | rejected | superseded.
mpi_review = Table(
    "mpi_review",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("patient_id", String(64), nullable=False),
    Column("candidate_person", String(64), nullable=False),
    Column("matched_id", String(64)),
    Column("probability", Double),
    Column("match_weight", Double),
    Column("reason", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("decided_by", String(128)),
    Column("decided_at", Double),
    Column("note", Text),
    Index("ix_mpi_review_status", "status", "id"),
    Index("ix_mpi_review_patient", "patient_id", "candidate_person"),
)

# Trained models, each version kept; the highest active version is used.
mpi_model = Table(
    "mpi_model",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("trained_at", String(32), nullable=False),
    Column("document", Text, nullable=False),  # LinkageModel.to_dict() as JSON
    Column("active", Boolean, nullable=False),
)

TABLES = (mpi_record, mpi_block, mpi_review, mpi_model)
