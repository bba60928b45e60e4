"""Query engines: each runs the query model (``nodes.py``) on one kind of store.

``inmemory`` is the reference (plain Python over rows); ``duckdb`` and ``spark`` compile the
query model to one SQL query through sqlglot syntax trees (``sql.py``).
"""

from carelight.sde.query.engines.base import Engine, measure_rows

ENGINES = ("memory", "duckdb", "spark")

__all__ = ["ENGINES", "Engine", "measure_rows"]
