"""The secure data environment's tables in the operational database (SQLAlchemy Core).

Governance (projects, their members and the history of every decision, researchers'
accreditation) and the record of each extract: when, from which log checkpoint, how many
resources and rows, how many people were left out for their opt-out (never who), and which
Patient records each extract included (so a patient can see which projects used their data;
this list never enters the research store). Created by migration ``0010_secure_data_environment``.

Issue 9's jobs and releases hang off ``sde_project.id`` in the same way ``sde_extract`` does.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

from carelight.fhir.schema import Double, PrimaryKey  # epoch seconds; portable primary keys

metadata = MetaData()

sde_project = Table(
    "sde_project",
    metadata,
    Column("id", PrimaryKey, primary_key=True, autoincrement=True),
    Column("title", String(300), nullable=False),
    Column("lay_summary", Text, nullable=False),
    Column("purpose", Text, nullable=False),  # what the research is for, in plain words
    Column("legal_basis", String(32), nullable=False),  # carelight.access.optout.LEGAL_BASES
    Column("confidentiality_basis", String(32), nullable=False),  # common-law duty basis
    Column("organisation", String(200), nullable=False),
    Column("commercial", Boolean, nullable=False),
    Column("tables", Text, nullable=False),  # JSON list of carelight.sde.model table names
    Column("start_date", Date, nullable=False),
    Column("end_date", Date, nullable=False),
    Column("status", String(16), nullable=False),  # draft | submitted | approved | ...
    Column("owner", String(128), nullable=False),  # the researcher who created it
    Column("created", Double, nullable=False),
    Column("updated", Double, nullable=False),
    Column("decision_reason", Text),  # the committee's reason (approval or rejection)
    Index("ix_sde_project_status", "status"),
)

sde_project_member = Table(
    "sde_project_member",
    metadata,
    Column(
        "project_id",
        PrimaryKey,
        ForeignKey("sde_project.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("username", String(128), primary_key=True),
    Column("added", Double, nullable=False),
    Index("ix_sde_member_username", "username"),
)

# Every change of a project's state: who, when, from what to what, and the log entry.
sde_project_event = Table(
    "sde_project_event",
    metadata,
    Column("id", PrimaryKey, primary_key=True, autoincrement=True),
    Column(
        "project_id",
        PrimaryKey,
        ForeignKey("sde_project.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("transition", String(32), nullable=False),  # create | submit | approve | ...
    Column("from_status", String(16)),
    Column("to_status", String(16), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("at", Double, nullable=False),
    Column("reason", Text),
    Column("log_index", BigInteger),  # the transparency log's leaf for this change
    Index("ix_sde_project_event_project", "project_id", "id"),
)

sde_accreditation = Table(
    "sde_accreditation",
    metadata,
    Column("id", PrimaryKey, primary_key=True, autoincrement=True),
    Column("username", String(128), nullable=False),
    Column("body", String(200), nullable=False),  # the accrediting body
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date, nullable=False),
    Column("recorded_by", String(128), nullable=False),
    Column("recorded", Double, nullable=False),
    Column("log_index", BigInteger),
    Index("ix_sde_accreditation_username", "username"),
)

sde_extract = Table(
    "sde_extract",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "project_id",
        PrimaryKey,
        ForeignKey("sde_project.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("status", String(16), nullable=False),  # running | completed | failed
    Column("engine", String(16), nullable=False),  # duckdb | spark
    Column("started", Double, nullable=False),
    Column("finished", Double),
    Column("log_tree_size", BigInteger),  # the checkpoint the extract was taken at
    Column("log_root_hash", String(64)),  # hex SHA-256
    Column("tables", Text, nullable=False),  # JSON list of table names
    Column("source_counts", Text),  # JSON {resource type: resources read}
    Column("table_rows", Text),  # JSON {table: rows written}
    Column("people", BigInteger),  # persons in the research store
    Column("opted_out", BigInteger),  # persons left out for their opt-out (never who)
    Column("opt_outs_applied", Boolean, nullable=False),
    Column("withheld", BigInteger),  # security-labelled resources left out
    Column("log_index", BigInteger),
    Column("error", Text),  # why it failed; never patient data
    Index("ix_sde_extract_project", "project_id", "started"),
)

# Which Patient records each extract included: operational only, for the patient's own
# "how my data is used" page. It never enters the research store.
sde_extract_person = Table(
    "sde_extract_person",
    metadata,
    Column(
        "extract_id",
        String(64),
        ForeignKey("sde_extract.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("patient_id", String(64), nullable=False),
    Index("ix_sde_extract_person_patient", "patient_id", "extract_id"),
    Index("ix_sde_extract_person_extract", "extract_id"),
)

TABLES = (
    sde_extract_person,
    sde_extract,
    sde_accreditation,
    sde_project_event,
    sde_project_member,
    sde_project,
)  # children first: the order to empty them in
