"""The transparency log: every access decision as an AuditEvent in an RFC 9162 Merkle tree.

Modules: ``events`` (AccessEvent → IHE BALP AuditEvent → leaf bytes), ``merkle`` (RFC 9162
hashing and proof shapes), ``schema`` (tables), ``log`` (TransparencyLog: append, roots,
proofs, checkpoints), ``checkpoint`` (C2SP signed notes, the Ed25519 key), ``trail`` (Trail:
what the gate calls, failing closed), ``verify`` (the whole-log check), ``api`` (/audit) and
``cli`` (``carelight audit``). See docs/audit.md.
"""

from carelight.audit.checkpoint import Checkpoint, CheckpointError, LogSigner, open_checkpoint
from carelight.audit.events import AccessEvent, audit_event, entry_bytes, patients_in_entry
from carelight.audit.log import LogCorrupted, LogError, TransparencyLog
from carelight.audit.trail import AuditUnavailable, Trail, open_trail
from carelight.audit.verify import VerifyReport, verify_log

__all__ = [
    "AccessEvent",
    "AuditUnavailable",
    "Checkpoint",
    "CheckpointError",
    "LogCorrupted",
    "LogError",
    "LogSigner",
    "Trail",
    "TransparencyLog",
    "VerifyReport",
    "audit_event",
    "entry_bytes",
    "open_checkpoint",
    "open_trail",
    "patients_in_entry",
    "verify_log",
]
