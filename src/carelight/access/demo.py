"""The demo accounts (``carelight users seed-demo``), bound to the synthetic population.

Professionals and source-system clients belong to organisations of the fictional ICS as the
store holds them: the first GP practice, the first hospital trust, the council's adult social
care and the first care home. Three patients of that GP practice get accounts too, those with
the most records elsewhere (the trust, the council, the care home), so the shared record has
something to show. Every demo account has the password ``carelight-demo``, which is also the
source clients' secret. Seeding again changes nothing: existing accounts are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from carelight.access.accounts import AccountStore, Organization
from carelight.access.directory import display_name, nhs_number_of, organization, search
from carelight.access.oauth import OAuthApps
from carelight.access.principal import Role
from carelight.fhir.store import Store
from carelight.identity.nhs_number import is_valid_nhs_number
from carelight.synth.sources import CARE_HOMES, COUNCIL, GP_PRACTICES, TRUSTS

DEMO_PASSWORD = "carelight-demo"
DEMO_PATIENTS = 3
DEMO_APP = "demo-app"
DEMO_APP_REDIRECT = "http://127.0.0.1/callback"  # any port (RFC 8252 loopback redirect)
GP, TRUST, COUNCIL_CODE, CARE_HOME = (
    GP_PRACTICES[0].code,
    TRUSTS[0].code,
    COUNCIL.code,
    CARE_HOMES[0].code,
)
# username, role, display name, ODS code of the organisation (None: not bound to one)
PEOPLE = (
    ("gp", Role.GP, "Demo GP", GP),
    ("nurse", Role.NURSE, "Demo nurse", TRUST),
    ("socialworker", Role.SOCIAL_WORKER, "Demo social worker", COUNCIL_CODE),
    ("carehome", Role.CARE_HOME, "Demo care home staff", CARE_HOME),
    ("researcher", Role.RESEARCHER, "Demo researcher", None),
    ("checker1", Role.OUTPUT_CHECKER, "Demo output checker 1", None),
    ("checker2", Role.OUTPUT_CHECKER, "Demo output checker 2", None),
    ("dac", Role.DATA_ACCESS_COMMITTEE, "Demo data access committee", None),
    ("analyst", Role.ANALYST, "Demo analyst", None),
    ("admin", Role.ADMIN, "Demo administrator and auditor", None),
    ("dataquality", Role.DATA_QUALITY, "Demo data-quality officer (linkage review)", None),
)
SYSTEMS = (("source-gp", GP), ("source-trust", TRUST), ("source-council", COUNCIL_CODE))


class DemoSeedError(RuntimeError):
    """The demo accounts cannot be made (the synthetic population is not loaded)."""


@dataclass(frozen=True, slots=True)
class Seeded:
    username: str
    role: Role
    display: str
    organization: str | None  # the organisation's ODS code
    created: bool  # False: it was already there and was left alone


def seed_demo(
    accounts: AccountStore,
    store: Store,
    *,
    apps: OAuthApps | None = None,
    password: str = DEMO_PASSWORD,
) -> list[Seeded]:
    """Create the demo accounts and the demo app that are missing; report on every one."""
    orgs = {}
    for code in (GP, TRUST, COUNCIL_CODE, CARE_HOME):
        found = organization(store, code)
        if found is None:
            raise DemoSeedError(
                f"Organization {code} is not in the store, so the demo accounts have no "
                "organisations to belong to. Load the synthetic population first: "
                "`carelight synth --out DIR` then `carelight load DIR` (`make demo` does both)."
            )
        orgs[code] = found
    patients = demo_patients(store, orgs[GP], [orgs[c] for c in (TRUST, COUNCIL_CODE, CARE_HOME)])
    if not patients:
        raise DemoSeedError(
            f"No patient of {orgs[GP].name} ({GP}) with a valid NHS number is in the store; "
            "load the synthetic population first (`make demo` does)."
        )
    report = []

    def add(username: str, role: Role, display: str, org: Organization | None, **kw) -> None:
        existing = accounts.get(username)
        if existing is None:
            accounts.create(
                username, role, password=password, display=display, organization=org, **kw
            )
        report.append(Seeded(username, role, display, org.code if org else None, not existing))

    for username, role, display, code in PEOPLE:
        add(username, role, display, orgs[code] if code else None)
    for username, code in SYSTEMS:
        add(username, Role.SYSTEM, f"{orgs[code].name} (source system)", orgs[code])
    for nhs_number, patient_id, name in patients:
        add(nhs_number, Role.PATIENT, name, None, patient_id=patient_id)
    apps = apps or OAuthApps(accounts.engine)
    if apps.get(DEMO_APP) is None:
        apps.register(DEMO_APP, "Carelight demo app", [DEMO_APP_REDIRECT])
    return report


def demo_patients(
    store: Store, gp: Organization, elsewhere: list[Organization], n: int = DEMO_PATIENTS
) -> list[tuple[str, str, str]]:
    """(NHS number, Patient id, name) of ``n`` patients registered at ``gp``, those known to
    the most of the ``elsewhere`` organisations first (then by Patient id, so the choice is
    the same every time for the same data)."""
    # Written by the practice itself: other systems name the practice only by ODS code.
    criteria = [("general-practitioner", f"Organization/{gp.id}")]
    if gp.source:
        criteria.append(("_source", gp.source))
    registered = {}
    for patient in search(store, "Patient", criteria):
        nhs = nhs_number_of(patient)
        if nhs and is_valid_nhs_number(nhs) and patient.get("active", True):
            registered.setdefault(nhs, patient)
    known_to = {nhs: 0 for nhs in registered}
    for org in elsewhere:
        if not org.source:
            continue
        seen = set()
        for patient in search(store, "Patient", [("_source", org.source)], pages=20):
            nhs = nhs_number_of(patient)
            if nhs in known_to and nhs not in seen:
                seen.add(nhs)
                known_to[nhs] += 1
    ranked = sorted(registered, key=lambda nhs: (-known_to[nhs], registered[nhs]["id"]))
    return [(nhs, registered[nhs]["id"], display_name(registered[nhs])) for nhs in ranked[:n]]
