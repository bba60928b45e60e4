"""Migration 0005 creates exactly the tables carelight.access.schema describes."""

from __future__ import annotations

from sqlalchemy import inspect

from carelight.access import schema


def test_the_migrated_tables_match_the_schema(store):
    found = inspect(store.engine)
    for table in schema.TABLES:
        columns = {c["name"]: c for c in found.get_columns(table.name)}
        assert list(columns) == [c.name for c in table.columns], table.name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, (table.name, column.name)
        assert found.get_pk_constraint(table.name)["constrained_columns"] == [
            c.name for c in table.primary_key
        ]
        indexes = {ix["name"]: ix["column_names"] for ix in found.get_indexes(table.name)}
        assert indexes == {ix.name: [c.name for c in ix.columns] for ix in table.indexes}
        fks = {
            (tuple(fk["constrained_columns"]), fk["referred_table"], fk["options"].get("ondelete"))
            for fk in found.get_foreign_keys(table.name)
        }
        assert fks == {
            ((fk.parent.name,), fk.column.table.name, fk.ondelete) for fk in table.foreign_keys
        }
