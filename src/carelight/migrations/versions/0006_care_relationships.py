"""Care relationships, person links and break-glass grants, for the gate.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24

Existing resources get their relationship and person-link rows here (a pass over Patients,
Encounters, EpisodesOfCare, ServiceRequests and CareTeams), so an upgraded store answers the
gate exactly as a freshly loaded one.
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Double = sa.Float(precision=53)
PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TYPES = ("Patient", "Encounter", "EpisodeOfCare", "ServiceRequest", "CareTeam")


def _res_pk() -> sa.Column:
    return sa.Column("res_pk", PK, sa.ForeignKey("resource.pk", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "care_relationship",
        _res_pk(),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("org", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("period_start", Double),
        sa.Column("period_end", Double),
    )
    op.create_index("ix_care_relationship_patient", "care_relationship", ["patient_id", "org"])
    op.create_index("ix_care_relationship_org", "care_relationship", ["org", "patient_id"])
    op.create_index("ix_care_relationship_res", "care_relationship", ["res_pk"])
    op.create_table(
        "person_link",
        _res_pk(),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("person", sa.String(128), nullable=False),
    )
    op.create_index("ix_person_link_patient", "person_link", ["patient_id", "person"])
    op.create_index("ix_person_link_person", "person_link", ["person", "patient_id"])
    op.create_index("ix_person_link_res", "person_link", ["res_pk"])
    op.create_table(
        "break_glass",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("organization_id", sa.String(64)),
        sa.Column("organization_code", sa.String(16)),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created", Double, nullable=False),
        sa.Column("expires", Double, nullable=False),
        sa.Column("audit_index", sa.BigInteger()),
    )
    op.create_index("ix_break_glass_user", "break_glass", ["username", "expires"])
    op.create_index("ix_break_glass_org", "break_glass", ["organization_code", "created"])
    _backfill()


def _backfill() -> None:
    from carelight.fhir.relationships import care_relationships, person_keys

    conn = op.get_bind()
    resource = sa.table(
        "resource",
        sa.column("pk"),
        sa.column("res_type"),
        sa.column("deleted"),
        sa.column("content"),
    )
    care = sa.table(
        "care_relationship",
        *(
            sa.column(c)
            for c in ("res_pk", "patient_id", "org", "kind", "period_start", "period_end")
        ),
    )
    person = sa.table("person_link", *(sa.column(c) for c in ("res_pk", "patient_id", "person")))
    last = 0
    while True:
        rows = conn.execute(
            sa.select(resource.c.pk, resource.c.content)
            .where(
                resource.c.pk > last,
                resource.c.res_type.in_(TYPES),
                resource.c.deleted == sa.false(),
            )
            .order_by(resource.c.pk)
            .limit(5000)
        ).all()
        if not rows:
            return
        care_rows, person_rows = [], []
        for pk, content in rows:
            doc = orjson.loads(content)
            care_rows += [
                dict(
                    zip(
                        ("res_pk", "patient_id", "org", "kind", "period_start", "period_end"),
                        (pk, *r),
                        strict=True,
                    )
                )
                for r in care_relationships(doc)
            ]
            person_rows += [
                {"res_pk": pk, "patient_id": p, "person": k} for p, k in person_keys(doc)
            ]
        if care_rows:
            conn.execute(care.insert(), care_rows)
        if person_rows:
            conn.execute(person.insert(), person_rows)
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_table("break_glass")
    op.drop_table("person_link")
    op.drop_table("care_relationship")
