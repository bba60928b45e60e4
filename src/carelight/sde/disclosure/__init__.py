"""Statistical disclosure control of aggregate outputs (docs/disclosure-control.md).

The job runner calls ``check_output`` on every file a job writes; researchers' scripts write
their tables with ``outputs`` so the checks have what they need.
"""

from carelight.sde.disclosure.check import CheckResult, check_output, released_tables
from carelight.sde.disclosure.evidence import Evidence, read_evidence
from carelight.sde.disclosure.policy import (
    ACRO,
    NHS_ENGLAND,
    Policy,
    PolicyError,
    get_policy,
    load_policy,
)
from carelight.sde.disclosure.published import PublishedTable

__all__ = [
    "ACRO",
    "NHS_ENGLAND",
    "CheckResult",
    "Evidence",
    "Policy",
    "PolicyError",
    "PublishedTable",
    "check_output",
    "get_policy",
    "load_policy",
    "read_evidence",
    "released_tables",
]
