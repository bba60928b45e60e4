"""Search parameters answered from other parameters' index rows: their own rows go.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25

``combo-code`` is ``code`` or ``component-code``, ``patient`` is ``subject`` rows that point
at a Patient, and so on (``carelight.fhir.searchparams.DERIVED``): the search compiler now reads
those rows, and extraction no longer writes copies of them (about a fifth of an Observation's
index rows). This removes the copies already stored; a downgrade writes them back from the rows
they are derived from. The list is frozen here as it stood when the migration was written.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# (resource type, derived parameter, the parameters whose rows answer it, target type or None)
DERIVED = (
    ("Encounter", "patient", ("subject",), "Patient"),
    ("Encounter", "practitioner", ("participant",), "Practitioner"),
    ("Condition", "patient", ("subject",), "Patient"),
    ("Observation", "combo-code", ("code", "component-code"), None),
    (
        "Observation",
        "combo-data-absent-reason",
        ("data-absent-reason", "component-data-absent-reason"),
        None,
    ),
    ("Observation", "combo-value-concept", ("value-concept", "component-value-concept"), None),
    ("Observation", "combo-value-quantity", ("value-quantity", "component-value-quantity"), None),
    ("Observation", "patient", ("subject",), "Patient"),
    ("DiagnosticReport", "patient", ("subject",), "Patient"),
    ("MedicationRequest", "patient", ("subject",), "Patient"),
    ("MedicationStatement", "patient", ("subject",), "Patient"),
    ("Procedure", "patient", ("subject",), "Patient"),
    ("CarePlan", "patient", ("subject",), "Patient"),
    ("CareTeam", "patient", ("subject",), "Patient"),
    ("Goal", "patient", ("subject",), "Patient"),
    ("QuestionnaireResponse", "patient", ("subject",), "Patient"),
    ("ServiceRequest", "patient", ("subject",), "Patient"),
    ("Flag", "patient", ("subject",), "Patient"),
    ("DocumentReference", "patient", ("subject",), "Patient"),
    ("Provenance", "patient", ("target",), "Patient"),
    ("Task", "patient", ("subject",), "Patient"),
)

# The index table of each derived parameter, by the columns it carries besides res_pk,
# res_type and param.
TABLES = {
    "sp_token": ("system", "code", "text"),
    "sp_quantity": ("value", "system", "code"),
    "sp_reference": ("target_type", "target_id", "url"),
}
TABLE_OF = {
    "combo-code": "sp_token",
    "combo-data-absent-reason": "sp_token",
    "combo-value-concept": "sp_token",
    "combo-value-quantity": "sp_quantity",
}


def _table(param: str) -> str:
    return TABLE_OF.get(param, "sp_reference")


def upgrade() -> None:
    for res_type, param, _names, _target in DERIVED:
        op.execute(
            sa.text(f"DELETE FROM {_table(param)} WHERE res_type = :t AND param = :p").bindparams(
                t=res_type, p=param
            )
        )


def downgrade() -> None:
    for res_type, param, names, target in DERIVED:
        table = _table(param)
        cols = ", ".join(TABLES[table])
        where = "res_type = :t AND param IN :names"
        if target is not None:
            where += " AND target_type = :target"
        stmt = sa.text(
            f"INSERT INTO {table} (res_pk, res_type, param, {cols}) "
            f"SELECT DISTINCT res_pk, res_type, :p, {cols} FROM {table} WHERE {where}"
        ).bindparams(sa.bindparam("names", expanding=True), t=res_type, p=param, names=list(names))
        if target is not None:
            stmt = stmt.bindparams(target=target)
        op.execute(stmt)
