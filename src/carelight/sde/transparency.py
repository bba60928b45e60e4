"""The secure data environment's entries in the transparency log: project decisions,
accreditation and extracts. Each names what it is about (a project, an extract, a researcher's
username), who acted and what happened; never a patient. Written inside the change's
transaction, so if the log cannot be written nothing changes (audit first, fail closed)."""

from __future__ import annotations

import time

from carelight.access.principal import Principal, Purpose
from carelight.audit.events import AccessEvent
from carelight.sde.governance.errors import GovernanceError


def project_reference(project_id: int) -> str:
    return f"ResearchStudy/sde-project-{project_id}"


def record_sde_event(
    trail,
    who: Principal,
    action: str,
    resources: tuple[str, ...],
    what: str,
    reason: str | None = None,
    now: float | None = None,
) -> int:
    """Append one entry (``action``: sde-project, sde-accredit or sde-extract); its leaf index."""
    if trail is None:
        raise GovernanceError("The transparency log is not available, so nothing was changed.")
    from carelight.audit.trail import AuditUnavailable

    try:
        return trail.record(
            AccessEvent(
                action=action,
                outcome="success",
                username=who.username,
                principal=who,
                purpose=Purpose.HRESCH.value,
                resources=resources,
                query=what,
                reason=reason[:300] if reason else None,
                recorded=time.time() if now is None else now,
            )
        )
    except AuditUnavailable as exc:
        raise GovernanceError(
            "The change could not be recorded in the transparency log, so nothing was changed."
        ) from exc
