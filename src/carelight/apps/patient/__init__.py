"""The patient app at ``/patient``: a person's own record, who has looked at it, and their
choices about how their data is used.

- ``routes``: the pages (sign-in by NHS number, my record, download, who has looked, data
  choices, how my data is used);
- ``record``: the parts of the record a patient looks for, and test results in plain words;
- ``accesses``: the transparency log's entries about the person, as lines a patient reads;
- ``verification``: checking an entry against a signed checkpoint, explained plainly;
- ``download``: the whole record as a FHIR Bundle (the summary document is a template).

It reuses the shared care record's reading (``apps.care.record``), presentation and charts,
and the shared layout and assets in ``apps.web``.
"""

from carelight.apps.patient.routes import router

__all__ = ["router"]
