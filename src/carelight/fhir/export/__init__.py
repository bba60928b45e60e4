"""FHIR Bulk Data export (``$export``, Bulk Data Access IG v2.0.0); see docs/export.md.

``spec`` checks the kick-off parameters, ``writer`` streams the resources to NDJSON files,
``jobs`` keeps each job's state in the ``export_job`` table and runs it in a thread, ``api``
holds the routes.
"""

from __future__ import annotations

from carelight.fhir.export.spec import ExportSpec, parse_kickoff
from carelight.fhir.export.writer import ExportResult, OutputFile, write_export

__all__ = ["ExportResult", "ExportSpec", "OutputFile", "parse_kickoff", "write_export"]
