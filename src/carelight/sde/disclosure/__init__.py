"""Statistical disclosure control of aggregate outputs (docs/disclosure-control.md).

The job runner calls ``check_outputs`` on a job's output folder (``check_output`` per file); researchers' scripts write
their tables with ``outputs`` so the checks have what they need.
"""

from carelight.sde.disclosure.check import (
    CheckResult,
    check_output,
    check_outputs,
    released_tables,
)
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
    "check_outputs",
    "get_policy",
    "load_policy",
    "read_evidence",
    "released_tables",
]
