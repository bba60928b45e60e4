"""Synthetic population and source systems for Carelight (``carelight synth``).

One fictional integrated care system: ten GP practices, two hospital trusts, a council's adult
social care department and four care homes, each writing its own FHIR R4 records about the same
fictional people, with the imperfections real records have. See docs/synth.md.
"""

from carelight.synth.writer import GENERATOR_VERSION, Summary, generate, person, records

__all__ = ["GENERATOR_VERSION", "Summary", "generate", "person", "records"]
