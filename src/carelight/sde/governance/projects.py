"""Research projects: created by researchers, decided by the data access committee, and every
change appended to the transparency log.

``Governance(engine, trail)`` is the one place projects change. Each change is checked against
``rules.TRANSITIONS`` (who may, from which state), made in one transaction that also writes the
project's event history, and recorded in the log *inside* that transaction: if the log cannot be
written, nothing changes. A refusal raises a :class:`GovernanceError` before anything is written.
Log entries name the project (``ResearchStudy/<id>``), the transition and the actor; never
patient data.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import orjson
from sqlalchemy import Connection, Engine, delete, insert, select, update

from carelight.access.accounts import write_transaction
from carelight.access.optout import EXEMPT_BASES, LEGAL_BASES
from carelight.access.principal import Principal, Role
from carelight.access.schema import account
from carelight.sde import model
from carelight.sde.governance.accreditation import accredited_on
from carelight.sde.governance.errors import Conflict, GovernanceError, NotAllowed, NotFound
from carelight.sde.governance.rules import (
    CONFIDENTIALITY_BASES,
    CREATE_ROLES,
    OVERSIGHT_ROLES,
    PUBLIC_STATUSES,
    TRANSITIONS,
)
from carelight.sde.tables import sde_project as P
from carelight.sde.tables import sde_project_event as E
from carelight.sde.tables import sde_project_member as M
from carelight.sde.transparency import project_reference, record_sde_event

EDITABLE = (
    "title",
    "lay_summary",
    "purpose",
    "legal_basis",
    "confidentiality_basis",
    "organisation",
    "commercial",
    "tables",
    "start_date",
    "end_date",
)


@dataclass(frozen=True)
class ProjectEvent:
    transition: str
    from_status: str | None
    to_status: str
    actor: str
    at: float
    reason: str | None
    log_index: int | None


@dataclass(frozen=True)
class Project:
    id: int
    title: str
    lay_summary: str
    purpose: str
    legal_basis: str
    confidentiality_basis: str
    organisation: str
    commercial: bool
    tables: tuple[str, ...]
    start_date: dt.date
    end_date: dt.date
    status: str
    owner: str
    created: float
    updated: float
    decision_reason: str | None
    members: tuple[str, ...] = ()
    events: tuple[ProjectEvent, ...] = field(default=())

    @property
    def opt_outs_apply(self) -> bool:
        """National data opt-outs apply unless the basis exempts the use."""
        return not (self.legal_basis in EXEMPT_BASES or self.confidentiality_basis in EXEMPT_BASES)

    @property
    def public(self) -> bool:
        return self.status in PUBLIC_STATUSES

    def decided(self, transition: str) -> ProjectEvent | None:
        """The latest event of this kind (say, when it was approved)."""
        return next((e for e in reversed(self.events) if e.transition == transition), None)


def _date(value: object, what: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise GovernanceError(f"{what} must be a date as YYYY-MM-DD, not {value!r}.") from None


def _text(fields: Mapping, name: str, limit: int) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value.strip():
        raise GovernanceError(f"The project needs a {name.replace('_', ' ')} (text).")
    value = value.strip()
    if len(value) > limit:
        raise GovernanceError(f"The {name.replace('_', ' ')} is longer than {limit} characters.")
    return value


def check_fields(fields: Mapping) -> dict:
    """The project's fields, checked and normalised; :class:`GovernanceError` names the first
    problem."""
    unknown = sorted(set(fields) - set(EDITABLE) - {"members"})
    if unknown:
        raise GovernanceError(
            f"Unknown project field {unknown[0]!r}; the fields are: {', '.join(EDITABLE)}, members."
        )
    out = {
        "title": _text(fields, "title", 300),
        "lay_summary": _text(fields, "lay_summary", 5000),
        "purpose": _text(fields, "purpose", 5000),
        "organisation": _text(fields, "organisation", 200),
    }
    legal = fields.get("legal_basis")
    if legal not in LEGAL_BASES:
        raise GovernanceError(
            f"Unknown legal basis {legal!r}; use one of {', '.join(sorted(LEGAL_BASES))}."
        )
    confidentiality = fields.get("confidentiality_basis")
    if confidentiality not in CONFIDENTIALITY_BASES:
        raise GovernanceError(
            f"Unknown common-law duty of confidentiality basis {confidentiality!r}; use one of "
            f"{', '.join(sorted(CONFIDENTIALITY_BASES))}."
        )
    out["legal_basis"], out["confidentiality_basis"] = legal, confidentiality
    commercial = fields.get("commercial", False)
    if not isinstance(commercial, bool):
        raise GovernanceError("commercial must be true or false.")
    out["commercial"] = commercial
    tables = fields.get("tables")
    if isinstance(tables, str):
        tables = [t.strip() for t in tables.split(",") if t.strip()]
    if not isinstance(tables, list | tuple) or not tables:
        raise GovernanceError(
            "The project must request at least one table; the tables are: "
            f"{', '.join(model.BY_NAME)}."
        )
    for name in tables:
        if name not in model.BY_NAME:
            raise GovernanceError(
                f"There is no research table {name!r}; the tables are: {', '.join(model.BY_NAME)}."
            )
    # The patients table always comes: every other table's patient_id refers to it.
    out["tables"] = ["patients", *(t for t in dict.fromkeys(tables) if t != "patients")]
    start = _date(fields.get("start_date"), "start_date")
    end = _date(fields.get("end_date"), "end_date")
    if end < start:
        raise GovernanceError(f"end_date ({end}) is before start_date ({start}).")
    out["start_date"], out["end_date"] = start, end
    return out


class Governance:
    """Projects and their decisions, over the operational database and the transparency log."""

    def __init__(self, engine: Engine, trail, clock=time.time) -> None:
        self.engine = engine
        self.trail = trail
        self.clock = clock

    # -- reading ----------------------------------------------------------------------------
    def get(self, project_id: int, conn: Connection | None = None) -> Project:
        if conn is None:
            with self.engine.connect() as c:
                return self.get(project_id, c)
        row = conn.execute(select(P).where(P.c.id == _id(project_id))).mappings().first()
        if row is None:
            raise NotFound(f"There is no project {project_id}.")
        members = conn.execute(
            select(M.c.username).where(M.c.project_id == row["id"]).order_by(M.c.username)
        ).scalars()
        events = conn.execute(
            select(E).where(E.c.project_id == row["id"]).order_by(E.c.id)
        ).mappings()
        return _project(row, tuple(members), tuple(_event(e) for e in events))

    def list(self, *, statuses: Iterable[str] | None = None) -> list[Project]:
        with self.engine.connect() as conn:
            stmt = select(P.c.id).order_by(P.c.id)
            if statuses is not None:
                stmt = stmt.where(P.c.status.in_(list(statuses)))
            return [self.get(pid, conn) for pid in conn.execute(stmt).scalars()]

    def visible_to(self, who: Principal) -> list[Project]:
        """The projects a signed-in person may see through the API: every project for the
        committee, checkers and administrators; their own (and the public ones) for
        researchers."""
        projects = self.list()
        if who.role in OVERSIGHT_ROLES:
            return projects
        return [p for p in projects if p.public or who.username in p.members]

    def require_visible(self, who: Principal, project_id: int) -> Project:
        project = self.get(project_id)
        if project.public or who.role in OVERSIGHT_ROLES or who.username in project.members:
            return project
        raise NotFound(f"There is no project {project_id}.")  # a draft is not announced

    # -- changing ---------------------------------------------------------------------------
    def create(self, who: Principal, fields: Mapping) -> Project:
        """A new draft project; ``who`` (a researcher) is its owner and first member."""
        if who.role not in CREATE_ROLES:
            raise NotAllowed(f"Only researchers create projects; your role is {who.role}.")
        values = check_fields(fields)
        members = _members(fields.get("members"), who.username)
        now = self.clock()
        with write_transaction(self.engine) as conn:
            self._require_researchers(conn, members)
            row = {**values, "tables": orjson.dumps(values["tables"]).decode()}
            pid = conn.execute(
                insert(P).values(
                    **row, status="draft", owner=who.username, created=now, updated=now
                )
            ).inserted_primary_key[0]
            conn.execute(
                insert(M), [{"project_id": pid, "username": u, "added": now} for u in members]
            )
            self._event(conn, pid, "create", None, "draft", who, now, None)
        return self.get(pid)

    def edit(self, who: Principal, project_id: int, fields: Mapping) -> Project:
        """Change a draft's fields (its members may); a submitted project is frozen."""
        now = self.clock()
        with write_transaction(self.engine) as conn:
            project = self._locked(conn, project_id)
            if who.username not in project.members or who.role is not Role.RESEARCHER:
                raise NotAllowed("Only the project's own researchers may change it.")
            if project.status != "draft":
                raise Conflict(
                    f"Project {project.id} is {project.status}; only a draft can be changed."
                )
            merged = {k: getattr(project, k) for k in EDITABLE} | dict(fields)
            members = fields.get("members")
            values = check_fields({k: v for k, v in merged.items() if k != "members"})
            values["tables"] = orjson.dumps(values["tables"]).decode()
            conn.execute(update(P).where(P.c.id == project.id).values(**values, updated=now))
            if members is not None:
                names = _members(members, project.owner)
                self._require_researchers(conn, names)
                conn.execute(delete(M).where(M.c.project_id == project.id))
                conn.execute(
                    insert(M),
                    [{"project_id": project.id, "username": u, "added": now} for u in names],
                )
            self._event(conn, project.id, "edit", "draft", "draft", who, now, None)
        return self.get(project.id)

    def transition(
        self, who: Principal, project_id: int, name: str, reason: str | None = None
    ) -> Project:
        """Make one lifecycle transition, or refuse it with nothing changed."""
        rule = TRANSITIONS.get(name)
        if rule is None:
            raise GovernanceError(
                f"Unknown transition {name!r}; the transitions are: {', '.join(TRANSITIONS)}."
            )
        reason = (reason or "").strip() or None
        if reason is not None and len(reason) > 5000:
            raise GovernanceError("The reason is longer than 5000 characters.")
        now = self.clock()
        with write_transaction(self.engine) as conn:
            project = self._locked(conn, project_id)
            if who.role not in rule.roles:
                allowed = " or ".join(sorted(r.value for r in rule.roles))
                raise NotAllowed(
                    f"Only the {allowed} may {name} a project; your role is {who.role}."
                )
            if (
                rule.members_only
                and who.role is Role.RESEARCHER
                and who.username not in project.members
            ):
                raise NotAllowed(f"You are not a member of project {project.id}.")
            if project.status not in rule.sources:
                raise Conflict(
                    f"Project {project.id} is {project.status}; it can be {name}"
                    f"{'d' if name.endswith('e') else 'ed'} only when "
                    f"{' or '.join(rule.sources)}."
                )
            if rule.reason_required and not reason:
                raise GovernanceError(f"To {name} a project, give a reason (it is published).")
            if name == "activate":
                self._require_accredited(conn, project.members, dt.date.today())
                if dt.date.today() > project.end_date:
                    raise Conflict(
                        f"Project {project.id} ended on {project.end_date}; it cannot start."
                    )
            values: dict = {"status": rule.target, "updated": now}
            if name in ("approve", "reject"):
                values["decision_reason"] = reason
            conn.execute(update(P).where(P.c.id == project.id).values(**values))
            self._event(conn, project.id, name, project.status, rule.target, who, now, reason)
        return self.get(project.id)

    def add_member(self, who: Principal, project_id: int, username: str) -> Project:
        """Add a researcher. Only an accredited researcher joins an active project."""
        now = self.clock()
        username = username.strip().lower()
        with write_transaction(self.engine) as conn:
            project = self._locked(conn, project_id)
            if not (
                who.role is Role.DATA_ACCESS_COMMITTEE
                or (who.role is Role.RESEARCHER and who.username == project.owner)
            ):
                raise NotAllowed("Only the project's owner or the committee may add members.")
            if project.status in ("rejected", "closed"):
                raise Conflict(f"Project {project.id} is {project.status}; it takes no members.")
            if username in project.members:
                raise Conflict(f"{username} is already a member of project {project.id}.")
            self._require_researchers(conn, [username])
            if project.status == "active":
                self._require_accredited(conn, [username], dt.date.today())
            conn.execute(insert(M).values(project_id=project.id, username=username, added=now))
            self._event(
                conn, project.id, "add-member", project.status, project.status, who, now, username
            )
        return self.get(project.id)

    # -- helpers ----------------------------------------------------------------------------
    def _locked(self, conn: Connection, project_id: int) -> Project:
        """The project, its row locked for this transaction (PostgreSQL; SQLite's write
        transaction already excludes other writers)."""
        stmt = select(P.c.id).where(P.c.id == _id(project_id))
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        if conn.execute(stmt).first() is None:
            raise NotFound(f"There is no project {project_id}.")
        return self.get(project_id, conn)

    @staticmethod
    def _require_researchers(conn: Connection, usernames: Iterable[str]) -> None:
        for name in usernames:
            role = conn.execute(select(account.c.role).where(account.c.username == name)).scalar()
            if role is None:
                raise GovernanceError(f"There is no account {name!r}.")
            if role != Role.RESEARCHER.value:
                raise GovernanceError(
                    f"{name} is a {role}, not a researcher; only researchers are members."
                )

    @staticmethod
    def _require_accredited(conn: Connection, usernames: Iterable[str], on: dt.date) -> None:
        missing = [u for u in usernames if not accredited_on(conn, u, on)]
        if missing:
            raise Conflict(
                f"Not accredited on {on}: {', '.join(missing)}. Only accredited researchers may "
                "be members of an active project: record accreditation with "
                "`carelight sde accredit USER`."
            )

    def _event(
        self,
        conn: Connection,
        project_id: int,
        transition: str,
        before: str | None,
        after: str,
        who: Principal,
        now: float,
        reason: str | None,
    ) -> None:
        """The history row and the log entry, in the change's transaction (fail closed)."""
        index = record_sde_event(
            self.trail, who, "sde-project", (project_reference(project_id),), transition,
            reason, now,
        )  # fmt: skip
        conn.execute(
            insert(E).values(
                project_id=project_id,
                transition=transition,
                from_status=before,
                to_status=after,
                actor=who.username,
                at=now,
                reason=reason,
                log_index=index,
            )
        )


def _id(project_id: object) -> int:
    try:
        return int(str(project_id).strip())
    except ValueError:
        raise NotFound(f"There is no project {project_id!r}; projects are numbered.") from None


def _members(value: object, owner: str) -> list[str]:
    if value is None:
        value = []
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise GovernanceError("members must be a list of usernames.")
    return list(dict.fromkeys([owner, *(v.strip().lower() for v in value if v.strip())]))


def _project(row, members: tuple[str, ...], events: tuple[ProjectEvent, ...]) -> Project:
    values = dict(row)
    values["tables"] = tuple(orjson.loads(values["tables"]))
    values["commercial"] = bool(values["commercial"])
    for key in ("start_date", "end_date"):
        if isinstance(values[key], str):
            values[key] = dt.date.fromisoformat(values[key])
    return Project(**values, members=members, events=events)


def _event(row) -> ProjectEvent:
    return ProjectEvent(
        row["transition"], row["from_status"], row["to_status"], row["actor"], row["at"],
        row["reason"], row["log_index"],
    )  # fmt: skip
