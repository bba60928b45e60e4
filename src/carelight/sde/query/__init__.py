"""Carelight's query language for the secure data environment (see docs/sde-query.md).

    from carelight.sde.query import create_dataset, codelist_from_csv, tables, years

A definition builds the query model (``nodes``); an engine (``engines``) runs it on the
research store: ``memory`` (the reference), ``duckdb`` or ``spark``.
"""

from carelight.sde.query import tables
from carelight.sde.query.codelists import Codelist, CodelistError, codelist, codelist_from_csv
from carelight.sde.query.dataset import Dataset, create_dataset
from carelight.sde.query.language import QueryError, Series, case, days, months, when, years
from carelight.sde.query.measures import INTERVAL, Measures, create_measures

__all__ = [
    "INTERVAL",
    "Codelist",
    "CodelistError",
    "Dataset",
    "Measures",
    "QueryError",
    "Series",
    "case",
    "codelist",
    "codelist_from_csv",
    "create_dataset",
    "create_measures",
    "days",
    "months",
    "tables",
    "when",
    "years",
]
