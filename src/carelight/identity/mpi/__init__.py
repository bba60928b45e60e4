"""The master patient index: which person each Patient record belongs to (issue 5).

``core.MasterPatientIndex`` decides on every Patient write (the store calls it); ``batch``
trains and links a whole store; ``api`` is the review queue, splitting and the model viewer;
``person`` serves the persons as FHIR Person resources. See docs/linkage.md.
"""

from carelight.identity.mpi.core import MasterPatientIndex, strip_assigned

__all__ = ["MasterPatientIndex", "strip_assigned"]
