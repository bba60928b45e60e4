"""Who is asking (a :class:`Principal`) and why (a :class:`Purpose` of use).

A principal is built from a verified token or web session; nothing in it comes from the
request body. Roles are the demo accounts' roles in ``../shared/ARCHITECTURE.md``; purposes are
HL7 v3 PurposeOfUse codes where one exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CARELIGHT_PURPOSE_SYSTEM = "https://fhir.carelight.example/CodeSystem/purpose-of-use"


class Role(StrEnum):
    GP = "gp"  # general practitioner at a practice
    NURSE = "nurse"  # nurse at a trust
    DOCTOR = "doctor"  # hospital doctor at a trust
    SOCIAL_WORKER = "social-worker"  # at the council's adult social care department
    CARE_HOME = "care-home-staff"
    PATIENT = "patient"
    RESEARCHER = "researcher"
    OUTPUT_CHECKER = "output-checker"
    DATA_ACCESS_COMMITTEE = "data-access-committee"
    ANALYST = "analyst"
    DATA_QUALITY = "data-quality"  # works the record-linkage review queue
    ADMIN = "admin"  # administrator and auditor (the organisation's privacy officer too)
    SYSTEM = "system"  # a source system's client, bound to one organisation
    # The research-store extract (carelight.access.research): a service, never an account.
    RESEARCH_EXTRACT = "research-extract"


PROFESSIONAL_ROLES = frozenset(
    {Role.GP, Role.NURSE, Role.DOCTOR, Role.SOCIAL_WORKER, Role.CARE_HOME}
)
# Roles that only Carelight's own code acts as: no account, token or sign-in can hold them.
SERVICE_ROLES = frozenset({Role.RESEARCH_EXTRACT})
# Roles that never see identifiable data (the secure data environment's people).
NON_IDENTIFIABLE_ROLES = frozenset(
    {Role.RESEARCHER, Role.OUTPUT_CHECKER, Role.DATA_ACCESS_COMMITTEE, Role.ANALYST}
)


class Purpose(StrEnum):
    """Purpose of use. Values are v3-ActReason codes, except INGEST (ours)."""

    TREAT = "TREAT"  # direct care
    ETREAT = "ETREAT"  # emergency treatment: break-glass
    PATRQT = "PATRQT"  # the patient's own request: patient access
    HRESCH = "HRESCH"  # research
    HOPERAT = "HOPERAT"  # healthcare operations: planning
    HSYSADMIN = "HSYSADMIN"  # system administration
    INGEST = "INGEST"  # a source system writing its own records

    @property
    def system(self) -> str:
        return CARELIGHT_PURPOSE_SYSTEM if self is Purpose.INGEST else PURPOSE_SYSTEM


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    role: Role
    display: str = ""
    organization_id: str | None = None  # the Organization's logical id, e.g. "Y99101-org"
    organization_code: str | None = None  # its ODS code, e.g. "Y99101"
    organization_name: str | None = None
    patient_id: str | None = None  # patients: the Patient their account is linked to
    nhs_number: str | None = None  # patients
    source: str | None = None  # system clients: the meta.source URI they write as
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_professional(self) -> bool:
        return self.role in PROFESSIONAL_ROLES

    @property
    def organization_ref(self) -> str | None:
        return f"Organization/{self.organization_id}" if self.organization_id else None
