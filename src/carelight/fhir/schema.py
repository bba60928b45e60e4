"""The operational store's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

``resource`` holds the current version of every resource (a deleted resource keeps its row,
flagged, so reads answer 410); ``resource_version`` holds every version ever written. The
``sp_*`` tables are the search index, one per search-parameter type, each row pointing at
``resource.pk``; ``compartment`` says which Patients' compartments hold a resource, so
``$everything`` and access checks are index look-ups. Index rows are rewritten in the same
transaction as the resource.

Changes to these tables need an Alembic migration in ``carelight/migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# SQLite only aliases the rowid for INTEGER PRIMARY KEY, so use that there and BIGINT elsewhere.
PrimaryKey = BigInteger().with_variant(Integer(), "sqlite")
Double = Float(precision=53)

resource = Table(
    "resource",
    metadata,
    Column("pk", PrimaryKey, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", Double, nullable=False),  # epoch seconds, UTC
    Column("deleted", Boolean, nullable=False, default=False),
    Column("source", String(512)),  # meta.source: the system that wrote this version
    Column("content", Text),  # JSON with meta filled in; NULL when deleted
    UniqueConstraint("res_type", "res_id", name="uq_resource_type_id"),
    Index("ix_resource_type_updated", "res_type", "last_updated"),
    Index("ix_resource_updated", "last_updated"),
    # Unfiltered searches of one type, in default (insertion) order, with no sort step.
    Index("ix_resource_type_pk", "res_type", "deleted", "pk"),
)

resource_version = Table(
    "resource_version",
    metadata,
    Column("pk", PrimaryKey, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", Double, nullable=False),
    Column("method", String(8), nullable=False),  # POST, PUT, PATCH or DELETE
    Column("deleted", Boolean, nullable=False, default=False),
    Column("source", String(512)),
    Column("content", Text),
    UniqueConstraint("res_type", "res_id", "version_id", name="uq_version"),
    Index("ix_version_type_updated", "res_type", "last_updated"),
    Index("ix_version_updated", "last_updated"),
)


def _res_pk() -> Column:
    return Column(
        "res_pk", PrimaryKey, ForeignKey("resource.pk", ondelete="CASCADE"), nullable=False
    )


sp_token = Table(
    "sp_token",
    metadata,
    _res_pk(),
    Column("res_type", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("system", String(512)),
    Column("code", String(512)),
    Column("text", Text),
    Index("ix_sp_token_code", "res_type", "param", "code", "system"),
    Index("ix_sp_token_res", "res_pk"),
)

sp_string = Table(
    "sp_string",
    metadata,
    _res_pk(),
    Column("res_type", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("value", String(512), nullable=False),
    Column("exact", String(512), nullable=False),
    Index("ix_sp_string_value", "res_type", "param", "value"),
    Index("ix_sp_string_res", "res_pk"),
)

sp_date = Table(
    "sp_date",
    metadata,
    _res_pk(),
    Column("res_type", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("low", Double, nullable=False),
    Column("high", Double, nullable=False),
    Index("ix_sp_date_low", "res_type", "param", "low"),
    Index("ix_sp_date_high", "res_type", "param", "high"),
    Index("ix_sp_date_res", "res_pk"),
)

sp_number = Table(
    "sp_number",
    metadata,
    _res_pk(),
    Column("res_type", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("value", Double, nullable=False),
    Index("ix_sp_number_value", "res_type", "param", "value"),
    Index("ix_sp_number_res", "res_pk"),
)

sp_quantity = Table(
    "sp_quantity",
    metadata,
    _res_pk(),
    Column("res_type", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("value", Double, nullable=False),
    Column("system", String(512)),
    Column("code", String(128)),
    Index("ix_sp_quantity_value", "res_type", "param", "value"),
    Index("ix_sp_quantity_res", "res_pk"),
)

sp_reference = Table(
    "sp_reference",
    metadata,
    _res_pk(),
    Column("res_type", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("target_type", String(64)),
    Column("target_id", String(64)),
    Column("url", String(1024)),
    # Also the reverse look-ups (_revinclude, _has): they name the source type and parameter
    # too. Migration 0009 dropped a (target_type, target_id) index that nothing needed.
    Index("ix_sp_reference_target", "res_type", "param", "target_id", "target_type"),
    Index("ix_sp_reference_res", "res_pk"),
)

sp_uri = Table(
    "sp_uri",
    metadata,
    _res_pk(),
    Column("res_type", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("value", String(1024), nullable=False),
    Index("ix_sp_uri_value", "res_type", "param", "value"),
    Index("ix_sp_uri_res", "res_pk"),
)

compartment = Table(
    "compartment",
    metadata,
    _res_pk(),
    Column("patient_id", String(64), nullable=False),
    Index("ix_compartment_patient", "patient_id", "res_pk"),
    Index("ix_compartment_res", "res_pk"),
)

# Relationships between a patient and an organisation that resources state (an encounter, a
# registration, an episode of care...): the gate's "legitimate relationship" look-up. See
# carelight.fhir.relationships. start/end are epoch seconds; NULL end = still open.
care_relationship = Table(
    "care_relationship",
    metadata,
    _res_pk(),
    Column("patient_id", String(64), nullable=False),
    Column("org", String(128), nullable=False),  # "Organization/<id>" or "ods:<code>"
    Column("kind", String(16), nullable=False),
    Column("period_start", Double),
    Column("period_end", Double),
    Index("ix_care_relationship_patient", "patient_id", "org"),
    Index("ix_care_relationship_org", "org", "patient_id"),
    Index("ix_care_relationship_res", "res_pk"),
)

# Which Patient records are the same person: one row per current Patient record, written by the
# master patient index (carelight.identity.mpi) in the record's write transaction. ``person``
# is the person's id (a FHIR id: the Person resource the index serves).
person_link = Table(
    "person_link",
    metadata,
    _res_pk(),
    Column("patient_id", String(64), nullable=False),
    Column("person", String(128), nullable=False),
    Index("ix_person_link_patient", "patient_id", "person"),
    Index("ix_person_link_person", "person", "patient_id"),
    Index("ix_person_link_res", "res_pk"),
)

INDEX_TABLES = (sp_token, sp_string, sp_date, sp_number, sp_quantity, sp_reference, sp_uri)
# Written with the search index, in the same transaction, and rebuilt the same way.
DERIVED_TABLES = (compartment, care_relationship)


def keys_condition(keys):
    """``(res_type, res_id) IN keys`` written so both planners use the unique index.

    A row-value IN list makes SQLite scan the whole table; one ``res_type = ? AND res_id IN
    (…)`` per type is an index look-up per key.
    """
    from sqlalchemy import and_, false, or_

    by_type: dict[str, list[str]] = {}
    for res_type, res_id in keys:
        by_type.setdefault(res_type, []).append(res_id)
    if not by_type:
        return false()
    return or_(
        *(and_(resource.c.res_type == t, resource.c.res_id.in_(ids)) for t, ids in by_type.items())
    )


# Bulk Data export jobs ($export). The job's state lives here, not in the process that runs it,
# so that with several server processes any of them can answer a poll or a cancellation.
export_job = Table(
    "export_job",
    metadata,
    Column("id", String(64), primary_key=True),  # random, unguessable: it is the poll URL
    Column("kind", String(16), nullable=False),  # system | patient | group
    Column("request_url", Text, nullable=False),  # the kick-off URL, for the manifest
    Column("params", Text, nullable=False),  # JSON: types, since, group id, type filters
    Column("status", String(16), nullable=False),  # accepted | in-progress | completed | failed
    Column("transaction_time", Double),  # epoch seconds, once the snapshot is taken
    Column("progress", String(100)),  # the X-Progress text
    Column("manifest", Text),  # the completion manifest, JSON, served as stored
    Column("error", Text),  # why it failed; never patient data
    Column("created", Double, nullable=False),
    Column("updated", Double, nullable=False),  # heartbeat: a stale running job has died
)
