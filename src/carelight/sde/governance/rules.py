"""The project lifecycle as data: which transitions exist, from which states, and who may make
them. Everything else in governance reads this table, so the rules are in one place.

    draft ──submit──► submitted ──approve──► approved ──activate──► active ──close──► closed
                          │                      │
                          └──reject──► rejected  └──close──► closed (never started)
"""

from __future__ import annotations

from dataclasses import dataclass

from carelight.access.principal import Role

STATUSES = ("draft", "submitted", "approved", "rejected", "active", "closed")
PUBLIC_STATUSES = frozenset(STATUSES) - {"draft"}  # a draft is the researchers' own
EXTRACT_STATUSES = frozenset({"approved", "active"})  # may have a research store made


@dataclass(frozen=True)
class Transition:
    name: str
    sources: tuple[str, ...]
    target: str
    roles: frozenset[Role]
    members_only: bool = False  # a researcher must be a member of the project
    reason_required: bool = False


TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in (
        Transition("submit", ("draft",), "submitted", frozenset({Role.RESEARCHER}), True),
        Transition("approve", ("submitted",), "approved", frozenset({Role.DATA_ACCESS_COMMITTEE})),
        Transition(
            "reject",
            ("submitted",),
            "rejected",
            frozenset({Role.DATA_ACCESS_COMMITTEE}),
            reason_required=True,
        ),
        Transition(
            "activate",
            ("approved",),
            "active",
            frozenset({Role.DATA_ACCESS_COMMITTEE, Role.ADMIN}),
        ),
        Transition(
            "close",
            ("approved", "active"),
            "closed",
            frozenset({Role.DATA_ACCESS_COMMITTEE, Role.ADMIN, Role.RESEARCHER}),
            members_only=True,
        ),
    )
}

# Who may create projects and who may record accreditation.
CREATE_ROLES = frozenset({Role.RESEARCHER})
ACCREDIT_ROLES = frozenset({Role.DATA_ACCESS_COMMITTEE, Role.ADMIN})
# Who sees every project through the API (drafts included); researchers see their own.
OVERSIGHT_ROLES = frozenset({Role.DATA_ACCESS_COMMITTEE, Role.ADMIN, Role.OUTPUT_CHECKER})

# The common-law duty of confidentiality: the basis on which confidential data may be used
# without breaching it. Explicit consent and a legal requirement exempt a use from national
# data opt-outs (carelight.access.optout.EXEMPT_BASES); section 251 support does not.
CONFIDENTIALITY_BASES = frozenset(
    {"explicit-consent", "legal-requirement", "section-251", "overriding-public-interest"}
)
