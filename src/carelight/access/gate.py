"""The gate: the one policy decision point for identifiable data. Deny by default.

Every request to the data layer (the REST API, the web apps, the export) comes here first:
:meth:`Gate.context` turns a principal and a stated purpose of use into an
:class:`AccessContext`, or refuses. The context is the ``carelight.fhir.scope.Access`` the data
layer applies *inside* its SQL, so a total, a page, an include, a chain, a ``_has``, a history
entry or a bundle entry can only ever hold rows the caller may see.

The policy, role by role (purpose in brackets, the first is the default):

* **Professionals** (GP, nurse, doctor, social worker, care home staff) [TREAT, ETREAT]: a
  person's record only with a *legitimate relationship* between the person and their
  organisation: registered at it, or an encounter, episode of care, referral or care team with
  it that is open or ended within the relationship window (``CARELIGHT_RELATIONSHIP_DAYS``,
  default 365). A relationship with one of a person's records covers all of them (see
  ``carelight.fhir.relationships``). Otherwise *break-glass*: a stated reason opens the record
  for a few hours (``carelight.access.breakglass``), every access is flagged, listed for the
  organisation's privacy officer and shown to the patient. Patient (demographic) resources are
  visible for tracing, as the national demographics service is; directory resources
  (organisations, staff, locations, forms) to everyone who may see records. Writes: clinical
  and care records about people they may see, in their organisation's name; changes only to
  what their organisation wrote.
* **Patients** [PATRQT]: their own record (all their records, from every source); writes only
  their own privacy Consent (the national data opt-out).
* **Source systems** [INGEST]: write as their own organisation only (``meta.source``); read only
  what they wrote.
* **Researchers, output checkers, the data access committee, analysts**: nothing identifiable.
* **Administrators** (auditors): no clinical records; the log and accounts instead.
* **The research-store extract** [HRESCH]: a service principal only
  ``carelight.access.research.extract_access`` makes, for one approved or active project; no
  account or token can hold it (``Gate.context`` refuses it). It sees the records of people
  who have not opted out of research (unless the project's basis exempts it), with
  security-labelled resources withheld as for every non-direct-care use.
* **Security labels**: a resource labelled with a code withheld from the role (the table
  ``WITHHELD_LABELS``) is invisible, as if absent.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import and_, bindparam, exists, false, func, literal, literal_column, or_, select

from carelight.access.principal import (
    NON_IDENTIFIABLE_ROLES,
    PROFESSIONAL_ROLES,
    SERVICE_ROLES,
    Principal,
    Purpose,
    Role,
)
from carelight.fhir import schema
from carelight.fhir.errors import FhirError, error

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Connection, FromClause

    from carelight.fhir.store import Store, StoredResource

R = schema.resource
C = schema.compartment
CR = schema.care_relationship
PL = schema.person_link
TOKEN = schema.sp_token

# Resources about no one: visible to every role that may see records.
DIRECTORY_TYPES = frozenset(
    {"Organization", "Location", "Practitioner", "PractitionerRole", "Questionnaire"}
)

PURPOSES: dict[Role, tuple[Purpose, ...]] = {
    **{r: (Purpose.TREAT, Purpose.ETREAT) for r in PROFESSIONAL_ROLES},
    Role.PATIENT: (Purpose.PATRQT,),
    Role.SYSTEM: (Purpose.INGEST,),
    Role.ADMIN: (Purpose.HSYSADMIN,),
    Role.DATA_QUALITY: (Purpose.HOPERAT,),
    Role.RESEARCHER: (Purpose.HRESCH,),
    Role.OUTPUT_CHECKER: (Purpose.HRESCH,),
    Role.DATA_ACCESS_COMMITTEE: (Purpose.HRESCH,),
    Role.ANALYST: (Purpose.HOPERAT,),
}

# Security labels (meta.security codes): v3-Confidentiality R (restricted) and V (very
# restricted), and v3-ActCode sensitivity codes.
SENSITIVITY = ("PSY", "HIV", "SDV", "ETH", "STD", "SEX")
_CLINICIANS = (Role.GP, Role.DOCTOR, Role.NURSE)
WITHHELD_LABELS: dict[Role, tuple[str, ...]] = {
    **{r: ("V",) for r in _CLINICIANS},
    Role.SOCIAL_WORKER: ("R", "V", *SENSITIVITY),
    Role.CARE_HOME: ("R", "V", *SENSITIVITY),
    Role.PATIENT: ("R", "V"),  # third-party or safeguarding information
    Role.RESEARCH_EXTRACT: ("R", "V", *SENSITIVITY),  # not direct care: withhold all of them
}

PATIENT_APP_SOURCE = "urn:carelight:patient-access"  # meta.source of a patient's own Consent
PRIVACY_SCOPE = ("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy")
_VISIBLE: dict[tuple, tuple[str, tuple | None, dict]] = {}  # compiled single-resource checks


def relationship_window() -> float:
    return float(os.environ.get("CARELIGHT_RELATIONSHIP_DAYS", "365")) * 86400.0


def org_source(principal: Principal) -> str | None:
    """The ``meta.source`` a principal writes as: a system's own, or its organisation's."""
    if principal.source:
        return principal.source
    if principal.organization_code:
        base = os.environ.get("CARELIGHT_SOURCE_BASE", "https://fhir.carelight.example")
        return f"{base.rstrip('/')}/{principal.organization_code}/fhir"
    return None


def forbidden(message: str) -> FhirError:
    return error(403, "forbidden", message)


# -- the row condition (SQL) ----------------------------------------------------------------
# Aliases made once: building them per request costs more than running the query.
_C = C.alias("gate_c")  # the compartment row of a candidate resource
_PA, _PB = PL.alias("gate_pa"), PL.alias("gate_pb")  # person look-up for relationships
_GA, _GB = PL.alias("gate_ga"), PL.alias("gate_gb")  # person look-up for break-glass
_MA, _MB = PL.alias("gate_ma"), PL.alias("gate_mb")  # person look-up for a patient's own
_CR = CR.alias("gate_cr")
_T = TOKEN.alias("gate_t")


class _Bound:
    """Makes the values of a condition bound parameters: anonymous ones carrying their value
    (a condition used inside a search), or named ones filled in at execution (the compiled-once
    single-resource check)."""

    def __init__(self, named: bool) -> None:
        self.named = named

    def __call__(self, name: str, value: object):
        return bindparam(name) if self.named else bindparam(None, value, unique=True)


def same_person(patient_ids: list[str] | tuple[str, ...]):
    """Sub-query: every Patient id of the people these Patient ids belong to."""
    a, b = PL.alias(), PL.alias()
    return (
        select(b.c.patient_id)
        .select_from(a.join(b, b.c.person == a.c.person))
        .where(a.c.patient_id.in_(list(patient_ids)))
    )


@dataclass
class AccessContext:
    """One request's principal, purpose and what follows from them (a ``fhir.scope.Access``)."""

    principal: Principal
    purpose: Purpose
    gate: Gate
    now: float = field(default_factory=time.time)
    seen: dict[int, list[str]] = field(default_factory=dict)  # pk -> compartment holders

    # -- what the data layer asks ----------------------------------------------------------
    @property
    def source(self) -> str | None:
        if self.principal.role is Role.PATIENT:
            return PATIENT_APP_SOURCE
        return org_source(self.principal)

    @property
    def break_glass(self) -> bool:
        return self.purpose is Purpose.ETREAT

    def org_keys(self) -> list[str]:
        p = self.principal
        keys = []
        if p.organization_id:
            keys.append(f"Organization/{p.organization_id}")
        if p.organization_code:
            keys.append(f"ods:{p.organization_code}")
        return keys

    def _values(self) -> dict:
        orgs = [*self.org_keys(), "", ""]
        return {
            "gate_source": self.principal.source or "",
            "gate_me": self.principal.patient_id or "",
            "gate_org1": orgs[0],
            "gate_org2": orgs[1],
            "gate_since": self.now - relationship_window(),
            "gate_now": self.now,
            "gate_user": self.principal.username,
        }

    def patient_allowed(self, patient_col, bound: _Bound | None = None) -> ColumnElement:
        """Whether the Patient id in ``patient_col`` is one whose data this caller may see."""
        p = bound or _Bound(named=False)
        v = self._values()
        role = self.principal.role
        if role is Role.PATIENT:
            mine = (
                select(_MB.c.patient_id)
                .select_from(_MA.join(_MB, _MB.c.person == _MA.c.person))
                .where(_MA.c.patient_id == p("gate_me", v["gate_me"]))
            )
            return patient_col.in_(mine)
        if role not in PROFESSIONAL_ROLES:
            return false()
        allowed = exists(
            select(_CR.c.res_pk)
            .select_from(
                _PA.join(_PB, _PB.c.person == _PA.c.person).join(
                    _CR, _CR.c.patient_id == _PB.c.patient_id
                )
            )
            .where(
                _PA.c.patient_id == patient_col,
                _CR.c.org.in_([p("gate_org1", v["gate_org1"]), p("gate_org2", v["gate_org2"])]),
                or_(
                    _CR.c.period_end.is_(None), _CR.c.period_end >= p("gate_since", v["gate_since"])
                ),
                or_(
                    _CR.c.period_start.is_(None), _CR.c.period_start <= p("gate_now", v["gate_now"])
                ),
            )
        )
        if self.purpose is Purpose.ETREAT:
            from carelight.access.breakglass import break_glass as BG

            granted = select(BG.c.patient_id).where(
                BG.c.username == p("gate_user", v["gate_user"]),
                BG.c.expires > p("gate_now", v["gate_now"]),
            )
            opened = (
                select(_GB.c.patient_id)
                .select_from(_GA.join(_GB, _GB.c.person == _GA.c.person))
                .where(_GA.c.patient_id.in_(granted))
            )
            allowed = or_(allowed, patient_col.in_(opened))
        return allowed

    def condition(self, r: FromClause, bound: _Bound | None = None) -> ColumnElement[bool] | None:
        p = bound or _Bound(named=False)
        role = self.principal.role
        if role is Role.SYSTEM:
            return r.c.source == p("gate_source", self._values()["gate_source"])
        if role not in PROFESSIONAL_ROLES and role is not Role.PATIENT:
            return false()
        in_record = exists(
            select(_C.c.res_pk).where(
                _C.c.res_pk == r.c.pk, self.patient_allowed(_C.c.patient_id, p)
            )
        )
        open_types = DIRECTORY_TYPES | ({"Patient"} if role in PROFESSIONAL_ROLES else set())
        cond = or_(
            r.c.res_type.in_([literal_column(f"'{t}'") for t in sorted(open_types)]), in_record
        )
        withheld = WITHHELD_LABELS.get(role, ())
        if withheld:
            labelled = exists(
                select(_T.c.res_pk).where(
                    _T.c.res_pk == r.c.pk,
                    _T.c.param == literal_column("'_security'"),
                    _T.c.code.in_([literal_column(f"'{code}'") for code in withheld]),
                )
            )
            cond = and_(cond, ~labelled)
        return cond

    def visible(self, conn: Connection, pk: int) -> bool:
        """The row condition for one resource: a statement compiled once per kind of caller.

        The same round trip fetches whose compartments hold the resource, for the log
        (:meth:`patients_seen`).
        """
        key = (conn.dialect.name, self.principal.role, self.purpose)
        compiled = _VISIBLE.get(key)
        if compiled is None:
            ok = exists(
                select(R.c.pk).where(
                    R.c.pk == bindparam("gate_pk"), self.condition(R, _Bound(named=True))
                )
            )
            holders = (
                select(
                    (func.group_concat if conn.dialect.name == "sqlite" else func.string_agg)(
                        C.c.patient_id, literal_column("','")
                    )
                )
                .where(C.c.res_pk == bindparam("gate_pk"))
                .scalar_subquery()
            )
            c = select(ok, holders).compile(dialect=conn.dialect)
            compiled = _VISIBLE[key] = (c.string, c.positiontup, dict(c.params))
        sql, order, defaults = compiled
        values = {**defaults, **self._values(), "gate_pk": pk}
        args = tuple(values[name] for name in order) if order else values
        allowed, holders = conn.exec_driver_sql(sql, args).one()
        if allowed:
            self.seen[pk] = holders.split(",") if holders else []
        return bool(allowed)

    def patients_seen(self, pk: int | None) -> list[str] | None:
        """The compartment holders of a resource this context already checked, if any."""
        return self.seen.get(pk) if pk is not None else None

    def may_see_deleted(self, current: StoredResource) -> bool:
        return current.source is not None and current.source == self.source

    def refused(self, what: str) -> FhirError:
        role = self.principal.role
        if role is Role.PATIENT:
            return forbidden(f"{what} is not part of your record; you can see your own only.")
        if role is Role.SYSTEM:
            return forbidden(
                f"{what} was not written by your system; a source system reads only its own records."
            )
        if role in PROFESSIONAL_ROLES:
            return forbidden(
                f"{what} belongs to a person your organisation has no care relationship with "
                "(or is withheld from your role). In an emergency you may break glass with a "
                "stated reason: POST /access/break-glass."
            )
        return forbidden(f"Your role ({role}) gives no access to identifiable records.")

    def before_write(self, content: dict, current: StoredResource | None, rows) -> None:
        p = self.principal
        what = f"{content.get('resourceType')}/{content.get('id')}"
        written_as = (content.get("meta") or {}).get("source")
        if written_as != self.source:
            raise forbidden(
                f"{what}: meta.source must be your system's ({self.source}); you may write only "
                "in your own organisation's name."
            )
        if p.role is Role.SYSTEM:
            return  # its own records (an existing one was checked visible, so its own)
        if self.purpose not in (Purpose.TREAT, Purpose.ETREAT, Purpose.PATRQT):
            raise forbidden(f"Writing is not allowed for the purpose {self.purpose}.")
        res_type = content.get("resourceType")
        if p.role is Role.PATIENT:
            if res_type != "Consent" or not _is_privacy_consent(content):
                raise forbidden(
                    "A patient may record only their own data choices (a Consent with scope "
                    "patient-privacy); everything else comes from the services that care for you."
                )
        elif p.role in PROFESSIONAL_ROLES:
            if res_type in DIRECTORY_TYPES or res_type in ("Patient", "Group"):
                raise forbidden(
                    f"{res_type} records come from source systems; professionals record care."
                )
            if current is not None and current.source != self.source:
                raise forbidden(
                    f"{what} was written by another organisation; you may not change it."
                )
        else:
            raise self.refused(what)
        patients = [pid for (pid,) in rows[7]]
        if not patients:
            raise forbidden(f"{what} is about no patient; you may record only care about a person.")
        self.gate.require_patients(self, patients)

    def before_delete(self, current: StoredResource) -> None:
        p = self.principal
        what = f"{current.res_type}/{current.res_id}"
        if p.role is Role.SYSTEM:
            return
        if p.role is Role.PATIENT:
            if current.res_type == "Consent" and _is_privacy_consent(current.json()):
                return
            raise forbidden(f"{what}: a patient may remove only their own data choices.")
        if p.role in PROFESSIONAL_ROLES and current.source == self.source:
            return
        raise forbidden(f"{what} was written by another organisation; you may not delete it.")


def _is_privacy_consent(content: dict) -> bool:
    scope = content.get("scope") or {}
    return any((c.get("system"), c.get("code")) == PRIVACY_SCOPE for c in scope.get("coding") or [])


class Gate:
    """Decides, for one store. One per app (``app.state.gate``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def context(self, principal: Principal | None, purpose: str | None = None) -> AccessContext:
        """The access context for a request to identifiable data, or a refusal (401/403)."""
        if principal is None:
            err = error(
                401,
                "login",
                "Sign in first: send Authorization: Bearer <token> "
                "(see /.well-known/smart-configuration).",
            )
            err.headers["WWW-Authenticate"] = 'Bearer realm="carelight"'
            raise err
        if principal.role in SERVICE_ROLES:
            raise forbidden(
                f"The {principal.role} role is Carelight's own service; it is not available "
                "to requests."
            )
        allowed = PURPOSES.get(principal.role, ())
        if not purpose or not purpose.strip():
            chosen = allowed[0] if allowed else None
        else:
            try:
                chosen = Purpose(purpose.strip().upper())
            except ValueError:
                raise error(
                    400,
                    "value",
                    f"Unknown purpose of use '{purpose}'; use one of "
                    f"{', '.join(p.value for p in allowed) or 'none (your role has none)'}.",
                ) from None
        if chosen is None or chosen not in allowed:
            raise forbidden(
                f"Your role ({principal.role}) may not act for the purpose {chosen or purpose}."
            )
        if principal.role in NON_IDENTIFIABLE_ROLES or principal.role in (
            Role.ADMIN,
            Role.DATA_QUALITY,
        ):
            raise forbidden(
                f"Your role ({principal.role}) gives no access to identifiable records; "
                "de-identified data is in the secure data environment."
            )
        if principal.role is Role.PATIENT and not principal.patient_id:
            raise forbidden("Your account is not linked to a patient record yet.")
        if principal.role is Role.SYSTEM and not principal.source:
            raise forbidden("Your client is not bound to a source system (meta.source).")
        if chosen is Purpose.ETREAT:
            from carelight.access.breakglass import has_active_grant

            if not has_active_grant(self.store.engine, principal.username):
                raise forbidden(
                    "Break-glass access (ETREAT) needs an open break-glass with a stated reason: "
                    "POST /access/break-glass first."
                )
        return AccessContext(principal, chosen, self)

    def require_patients(self, ctx: AccessContext, patient_ids: list[str]) -> None:
        """Refuse unless ``ctx`` may see every one of these patients' records."""
        with self.store.engine.connect() as conn:
            for pid in dict.fromkeys(patient_ids):
                # A Patient not (yet) in the store belongs to no one the caller may see.
                ok = conn.execute(select(ctx.patient_allowed(literal(pid)))).scalar()
                if not ok:
                    raise forbidden(
                        f"Patient/{pid}: you may write only about people whose record you may see."
                    )

    def records_of_person(self, patient_id: str) -> list[str]:
        """Every Patient id of the person this Patient record belongs to (their records at
        each source, as the master patient index links them), this one first: whose log
        entries a patient may read."""
        with self.store.engine.connect() as conn:
            linked = conn.execute(same_person([patient_id])).scalars()
            return list(dict.fromkeys([patient_id, *linked]))

    @staticmethod
    def patients_of(conn: Connection, pks: list[int]) -> list[str]:
        """The Patient ids whose compartments hold these resources (for the log)."""
        pks = [pk for pk in pks if pk is not None]
        mark = "?" if conn.dialect.name == "sqlite" else "%s"
        found: dict[str, None] = {}
        for i in range(0, len(pks), 500):
            chunk = pks[i : i + 500]
            sql = (
                "SELECT DISTINCT patient_id FROM compartment "
                f"WHERE res_pk IN ({', '.join(mark for _ in chunk)})"
            )
            for (pid,) in conn.exec_driver_sql(sql, tuple(chunk)):
                found[pid] = None
        return list(found)
