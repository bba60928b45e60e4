"""FHIR search: parse a query (``query``), compile it to SQL (``sql``), run it (``store``)."""
