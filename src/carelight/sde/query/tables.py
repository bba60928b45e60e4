"""The research tables as frames of the query language, made from the research data model.

    from carelight.sde.query import tables
    tables.clinical_events.where(tables.clinical_events.date.is_on_or_after("2024-01-01"))

One name per ``carelight.sde.model.TABLES`` entry; the columns are the model's, so a new
column in the model is a new attribute here with nothing else to change.
"""

from __future__ import annotations

from carelight.sde import model
from carelight.sde.query.language import frame_for

for _table in model.TABLES:
    globals()[_table.name] = frame_for(_table)

__all__ = [t.name for t in model.TABLES]
