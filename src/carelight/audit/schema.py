"""The transparency log's tables, in the store's database (SQLite or PostgreSQL).

``audit_leaf`` holds every entry's exact bytes (the canonical AuditEvent JSON) by leaf index;
``audit_node`` holds the hash of every complete subtree, leaves included, numbered in the
order they are written (``carelight.audit.merkle.stored_index``); ``audit_patient`` says which
entries are about which Patient, for "who looked at my record"; ``audit_checkpoint`` keeps every
signed checkpoint. All four are append-only: nothing in Carelight updates or deletes a row, and
``carelight audit verify`` notices if anything else did.

Created by migration 0004 (``carelight/migrations/versions/0004_transparency_log.py``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

# INTEGER PRIMARY KEY is SQLite's rowid (the cheapest key there); BIGINT on PostgreSQL.
Position = BigInteger().with_variant(Integer(), "sqlite")

audit_leaf = Table(
    "audit_leaf",
    metadata,
    Column("idx", Position, primary_key=True, autoincrement=False),  # leaf index, from 0
    Column("entry", LargeBinary, nullable=False),  # the leaf bytes, exactly as hashed
)

audit_node = Table(
    "audit_node",
    metadata,
    Column("id", Position, primary_key=True, autoincrement=False),  # merkle.stored_index
    Column("hash", LargeBinary, nullable=False),  # 32 bytes
)

audit_patient = Table(
    "audit_patient",
    metadata,
    Column("patient_id", String(64), primary_key=True),  # a Patient's logical id
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

audit_checkpoint = Table(
    "audit_checkpoint",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary, nullable=False),
    Column("timestamp", BigInteger, nullable=False),  # POSIX seconds, in the signed note
    Column("note", Text, nullable=False),  # the signed note, exactly as served
)

TABLES = (audit_leaf, audit_node, audit_patient, audit_checkpoint)
