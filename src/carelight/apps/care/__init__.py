"""The shared care record for professionals, and social care at the point of care (``/care``).

- ``routes``: the pages (find a person, summary, timeline, a page per category, break-glass,
  the social care forms);
- ``record``: a person's record, read through the gate from every source;
- ``present``: FHIR resources as the lines people read (what, when, which system);
- ``charts``: trend charts for repeated measures, as inline SVG;
- ``find``: finding a person by NHS number, or by name, date of birth and postcode;
- ``forms``: the needs assessment (rendered from the Questionnaire), care plan and visit note.
"""

from carelight.apps.care.routes import router

__all__ = ["router"]
