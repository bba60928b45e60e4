"""Jobs: researchers' code run inside the secure data environment, isolated.

A job's dataset definition and analysis script run in a sandbox (Linux namespaces via
bubblewrap or unshare; a flagged fallback without them), first on dummy data and then on real
data with the same code by SHA-256; what they write is classified as row-level (never leaves),
aggregate (goes to disclosure control) or disallowed. See docs/sde-jobs.md.
"""

from carelight.sde.jobs.capabilities import Capabilities, detect_capabilities
from carelight.sde.jobs.dataset import DEFAULT_PRODUCER, ProduceDataset
from carelight.sde.jobs.outputs import (
    DisallowedOutputError,
    Manifest,
    OutputFile,
    OutputRefused,
    OutputRules,
    RowLevelOutputError,
    UnknownOutputError,
    classify_outputs,
    read_for_checking,
    read_manifest,
)
from carelight.sde.jobs.runner import (
    CodeChangedError,
    JobBusy,
    JobError,
    JobResult,
    RealRunRefused,
    StepResult,
    job_state,
    load_result,
    run_job,
)
from carelight.sde.jobs.sandbox import Limits, Mount, Outcome, Sandbox, SandboxUnavailable

__all__ = [
    "DEFAULT_PRODUCER",
    "Capabilities",
    "CodeChangedError",
    "DisallowedOutputError",
    "JobBusy",
    "JobError",
    "JobResult",
    "Limits",
    "Manifest",
    "Mount",
    "Outcome",
    "OutputFile",
    "OutputRefused",
    "OutputRules",
    "ProduceDataset",
    "RealRunRefused",
    "RowLevelOutputError",
    "Sandbox",
    "SandboxUnavailable",
    "StepResult",
    "UnknownOutputError",
    "classify_outputs",
    "detect_capabilities",
    "job_state",
    "load_result",
    "read_for_checking",
    "read_manifest",
    "run_job",
]
