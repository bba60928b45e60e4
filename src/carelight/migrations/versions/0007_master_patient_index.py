"""The master patient index: persons, linkage features, blocking keys, review queue, models.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25

``person_link`` stops being derived from each Patient's NHS number and is written by the index
(``carelight.identity.mpi``). Existing Patients keep the grouping they had (same NHS number,
else alone), under person ids the index can use as FHIR ids, and get their features and
blocking keys so new records are matched against them.
"""

from __future__ import annotations

import time
import uuid

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Double = sa.Float(precision=53)
PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Person ids for the groupings person_link held before (uuid5 of the old key: repeatable).
NAMESPACE = uuid.UUID("6f1c1f7e-3d52-4b8e-9a57-2d1f0c9e5a11")


def upgrade() -> None:
    op.create_table(
        "mpi_record",
        sa.Column("patient_id", sa.String(64), primary_key=True),
        sa.Column("res_pk", PK, nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("nhs_number", sa.String(10)),
        sa.Column("how", sa.String(16), nullable=False),
        sa.Column("probability", Double),
        sa.Column("match_weight", Double),
        sa.Column("matched_id", sa.String(64)),
        sa.Column("model_version", sa.Integer),
        sa.Column("decided_at", Double, nullable=False),
        sa.Column("decided_by", sa.String(128)),
    )
    op.create_index("ix_mpi_record_person", "mpi_record", ["person", "patient_id"])
    op.create_table(
        "mpi_block",
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("rule", "key", "patient_id"),
    )
    op.create_index("ix_mpi_block_patient", "mpi_block", ["patient_id"])
    op.create_table(
        "mpi_review",
        sa.Column("id", PK, primary_key=True, autoincrement=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("candidate_person", sa.String(64), nullable=False),
        sa.Column("matched_id", sa.String(64)),
        sa.Column("probability", Double),
        sa.Column("match_weight", Double),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", Double, nullable=False),
        sa.Column("decided_by", sa.String(128)),
        sa.Column("decided_at", Double),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_mpi_review_status", "mpi_review", ["status", "id"])
    op.create_index("ix_mpi_review_patient", "mpi_review", ["patient_id", "candidate_person"])
    op.create_table(
        "mpi_model",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("trained_at", sa.String(32), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    _backfill()


def _backfill() -> None:
    from carelight.identity.linkage.deterministic import usable_nhs_number
    from carelight.identity.linkage.features import features
    from carelight.identity.mpi.core import block_keys, record_json, strip_assigned

    conn = op.get_bind()
    resource = sa.table(
        "resource", *(sa.column(c) for c in ("pk", "res_type", "res_id", "deleted", "content"))
    )
    link = sa.table("person_link", *(sa.column(c) for c in ("res_pk", "patient_id", "person")))
    record = sa.table(
        "mpi_record",
        *(
            sa.column(c)
            for c in ("patient_id", "res_pk", "person", "features", "nhs_number", "how",
                      "decided_at")
        ),
    )  # fmt: skip
    block = sa.table("mpi_block", *(sa.column(c) for c in ("rule", "key", "patient_id")))
    old = dict(conn.execute(sa.select(link.c.patient_id, link.c.person)).all())
    sizes: dict[str, int] = {}
    for key in old.values():
        sizes[key] = sizes.get(key, 0) + 1
    now = time.time()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(resource.c.pk, resource.c.res_id, resource.c.content)
            .where(
                resource.c.pk > last,
                resource.c.res_type == "Patient",
                resource.c.deleted == sa.false(),
            )
            .order_by(resource.c.pk)
            .limit(5000)
        ).all()
        if not rows:
            break
        records, blocks, links = [], [], []
        for pk, res_id, content in rows:
            rec = features(strip_assigned(orjson.loads(content)))
            key = old.get(res_id, f"patient:{res_id}")
            person = str(uuid.uuid5(NAMESPACE, key))
            records.append(
                {
                    "patient_id": res_id,
                    "res_pk": pk,
                    "person": person,
                    "features": record_json(rec),
                    "nhs_number": usable_nhs_number(rec),
                    "how": "nhs-number" if sizes.get(key, 1) > 1 else "new",
                    "decided_at": now,
                }
            )
            blocks += [{"rule": r, "key": k, "patient_id": res_id} for r, k in block_keys(rec)]
            links.append({"res_pk": pk, "patient_id": res_id, "person": person})
        conn.execute(record.insert(), records)
        if blocks:
            conn.execute(block.insert(), blocks)
        conn.execute(link.delete().where(link.c.patient_id.in_([r["patient_id"] for r in records])))
        conn.execute(link.insert(), links)
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_table("mpi_model")
    op.drop_table("mpi_review")
    op.drop_table("mpi_block")
    op.drop_table("mpi_record")
