"""Governance of the secure data environment: research projects and their lifecycle (draft →
submitted → approved | rejected → active → closed), researchers' accreditation, and the public
register's view of them. Every change is checked against ``rules`` and appended to the
transparency log."""

from carelight.sde.governance.accreditation import Accreditation, accredit, accreditations
from carelight.sde.governance.errors import Conflict, GovernanceError, NotAllowed, NotFound
from carelight.sde.governance.projects import Governance, Project, ProjectEvent, check_fields
from carelight.sde.governance.rules import STATUSES, TRANSITIONS

__all__ = [
    "STATUSES",
    "TRANSITIONS",
    "Accreditation",
    "Conflict",
    "Governance",
    "GovernanceError",
    "NotAllowed",
    "NotFound",
    "Project",
    "ProjectEvent",
    "accredit",
    "accreditations",
    "check_fields",
]
