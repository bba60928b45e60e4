"""What the gate hands to the transparency log: one :class:`AccessEvent` per decision.

Never put patient data here beyond references: ``query`` holds parameter *names* only and
``reason`` is the professional's stated reason (shown to the patient concerned).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from carelight.access.principal import Principal

ACTIONS = frozenset(
    {
        "read",  # read, vread
        "search",
        "history",
        "create",
        "update",
        "patch",
        "delete",
        "export",
        "everything",
        "login",
        "login-failed",
        "logout",
        "token",
        "break-glass",
        "opt-out",  # a national data opt-out set or removed
        "audit-read",  # an auditor or patient reading log entries
        "link",  # record linkage decisions (issue 5)
    }
)
OUTCOMES = frozenset({"success", "refused", "failed"})


@dataclass(frozen=True, slots=True)
class AccessEvent:
    action: str
    outcome: str
    username: str  # who asked, even when sign-in failed (then there is no principal)
    principal: Principal | None = None
    purpose: str | None = None  # a Purpose value
    patients: tuple[str, ...] = ()  # Patient logical ids whose data was touched or asked for
    resources: tuple[str, ...] = ()  # "Type/id" of what was returned or written
    query: str | None = None  # e.g. "Observation?code,date": names only, never values
    reason: str | None = None  # break-glass reason, or why it was refused
    break_glass: bool = False
    recorded: float = field(default_factory=time.time)  # epoch seconds, UTC
