"""The master patient index: every current Patient record belongs to exactly one person.

The store calls it inside the write transaction of every Patient create, update, patch,
delete and bulk-loaded line (``before_write`` / ``after_write`` / ``forget``), so the person
is decided in the same transaction as the record and the gate, opt-outs and ``$everything``
(which read ``person_link``) never see a record without its person.

How a record is decided (``decide``), the linkage engine's ``match_one`` over candidates found
in the database by the engine's blocking rules (``mpi_block``):

* a trained model is active (``mpi_model``): NHS number links, conflicts and Fellegi-Sunter
  scores; at or above the upper threshold the record joins the candidate's person, between
  the thresholds it becomes its own person and a review item, below it is a new person;
* no model yet: NHS number links only (a record without a usable number is a new person).

A record linked to a person that has an NHS number, but which arrived without one, is given
that number (``assign_number``) with the UK Core verification status ``02`` ("number present
but not traced": it came from the index, not from a trace against the national demographics
service), marked with the index as its assigner so it is never mistaken for the source's own
(``strip_assigned`` removes it before anything compares or matches the record).

Decisions made by a person (accepting or rejecting a review item, splitting a record off) are
kept: automatic matching never moves a ``reviewed`` or ``split`` record, and never links a
record to a person a reviewer said it is not.
"""

from __future__ import annotations

import copy
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import delete, func, insert, select, update

from carelight.fhir import schema
from carelight.fhir.resource_types import NHS_NUMBER_SYSTEM
from carelight.identity.linkage.comparisons import PREDICTION_BLOCKING
from carelight.identity.linkage.decisions import Decision, Thresholds
from carelight.identity.linkage.deterministic import conflicting, usable_nhs_number
from carelight.identity.linkage.features import (
    COLUMNS,
    NHS_VERIFICATION_EXTENSION,
    LinkageRecord,
    features,
)
from carelight.identity.linkage.model import FORMAT, FORMAT_VERSION, LinkageModel
from carelight.identity.mpi.tables import mpi_block, mpi_model, mpi_record, mpi_review

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from carelight.audit.events import AccessEvent

PL = schema.person_link
MR, MB, RV, MM = mpi_record, mpi_block, mpi_review, mpi_model

ASSIGNER = "Carelight master patient index"
VERIFICATION_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
NOT_TRACED = ("02", "Number present but not traced")
MANUAL = frozenset({"reviewed", "split"})
MODEL_CHECK_SECONDS = 2.0
NHS_RULE = "nhs_number"


# -- the NHS number the index gives a linked record ------------------------------------------
def is_assigned(identifier: object) -> bool:
    """True for an NHS number identifier the index added (not the source's own)."""
    return (
        type(identifier) is dict
        and identifier.get("system") == NHS_NUMBER_SYSTEM
        and type(identifier.get("assigner")) is dict
        and identifier["assigner"].get("display") == ASSIGNER
    )


def strip_assigned(resource: dict) -> dict:
    """The resource as its source wrote it: without an NHS number the index assigned."""
    identifiers = resource.get("identifier")
    if type(identifiers) is not list or not any(is_assigned(i) for i in identifiers):
        return resource
    out = dict(resource)
    kept = [i for i in identifiers if not is_assigned(i)]
    if kept:
        out["identifier"] = kept
    else:
        del out["identifier"]
    return out


def has_nhs_identifier(resource: dict) -> bool:
    identifiers = resource.get("identifier")
    return type(identifiers) is list and any(
        type(i) is dict and i.get("system") == NHS_NUMBER_SYSTEM for i in identifiers
    )


def assign_number(resource: dict, number: str) -> dict:
    """A copy of ``resource`` carrying the person's NHS number, marked as the index's."""
    out = dict(resource)
    out["identifier"] = [
        *copy.deepcopy(resource.get("identifier") or []),
        {
            "extension": [
                {
                    "url": NHS_VERIFICATION_EXTENSION,
                    "valueCodeableConcept": {
                        "coding": [
                            {
                                "system": VERIFICATION_SYSTEM,
                                "code": NOT_TRACED[0],
                                "display": NOT_TRACED[1],
                            }
                        ]
                    },
                }
            ],
            "system": NHS_NUMBER_SYSTEM,
            "value": number,
            "assigner": {"display": ASSIGNER},
        },
    ]
    return out


# -- blocking keys ---------------------------------------------------------------------------
def rule_name(rule: tuple[str, ...]) -> str:
    return "+".join(rule)


def block_keys(record: LinkageRecord, rules=PREDICTION_BLOCKING) -> list[tuple[str, str]]:
    """(rule, key) for each blocking rule whose columns are all present on the record."""
    out = []
    for rule in rules:
        values = [getattr(record, column) for column in rule]
        if all(v is not None for v in values):
            out.append((rule_name(rule), "\x1f".join(values)))
    return out


def record_from_json(text: str) -> LinkageRecord:
    return LinkageRecord(**orjson.loads(text))


def record_json(record: LinkageRecord) -> str:
    # Not dataclasses.asdict: it deep-copies every field, ten times slower.
    return orjson.dumps({c: getattr(record, c) for c in COLUMNS}).decode()


class StoreCandidates:
    """The engine's index interface (``candidates``, ``person``) over the database."""

    def __init__(
        self,
        conn: Connection,
        sql: _Sql,
        *,
        exclude_persons: frozenset[str] = frozenset(),
        rules=None,
    ) -> None:
        self.conn = conn
        self.sql = sql
        self.exclude = exclude_persons
        self.rules = PREDICTION_BLOCKING if rules is None else rules
        self.person: dict[str, str] = {}

    def candidates(self, record: LinkageRecord) -> list[LinkageRecord]:
        keys = block_keys(record, self.rules)
        if not keys:
            return []
        params = tuple(v for pair in keys for v in pair)
        rows = self.conn.exec_driver_sql(self.sql.candidates(len(keys)), params).all()
        out = []
        seen: set[str] = set()
        for pid, person, text in rows:
            if pid == record.unique_id or pid in seen or person in self.exclude:
                continue
            seen.add(pid)
            self.person[pid] = person
            out.append(record_from_json(text))
        return out


class _Sql:
    """The write path's statements as driver SQL for the store's dialect: a Patient write
    runs half a dozen, and building SQLAlchemy statements cost more than running them."""

    def __init__(self, dialect: str) -> None:
        m = "?" if dialect == "sqlite" else "%s"
        self.m = m
        self.current = f"SELECT person, how FROM mpi_record WHERE patient_id = {m}"
        self.rejected = (
            "SELECT candidate_person FROM mpi_review "
            f"WHERE patient_id = {m} AND status = 'rejected'"
        )
        self.person_numbers = (
            "SELECT DISTINCT nhs_number FROM mpi_record WHERE person = "
            f"{m} AND patient_id <> {m} AND nhs_number IS NOT NULL LIMIT 2"
        )
        self.shared = f"SELECT 1 FROM mpi_record WHERE person = {m} AND patient_id <> {m} LIMIT 1"
        columns = (
            "patient_id", "res_pk", "person", "features", "nhs_number", "how", "probability",
            "match_weight", "matched_id", "model_version", "decided_at", "decided_by",
        )  # fmt: skip
        self.upsert = (
            f"INSERT INTO mpi_record ({', '.join(columns)}) "
            f"VALUES ({', '.join(m for _ in columns)}) ON CONFLICT (patient_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        )
        self.upsert_details = (
            f"UPDATE mpi_record SET res_pk = {m}, features = {m}, nhs_number = {m} "
            f"WHERE patient_id = {m}"
        )
        self.delete_blocks = f"DELETE FROM mpi_block WHERE patient_id = {m}"
        self.insert_block = f"INSERT INTO mpi_block (rule, key, patient_id) VALUES ({m}, {m}, {m})"
        self.delete_link = f"DELETE FROM person_link WHERE patient_id = {m}"
        self.insert_link = (
            f"INSERT INTO person_link (res_pk, patient_id, person) VALUES ({m}, {m}, {m})"
        )
        self.supersede = (
            f"UPDATE mpi_review SET status = 'superseded', decided_at = {m} "
            f"WHERE patient_id = {m} AND status = 'open'"
        )
        self._candidates: dict[int, str] = {}

    def candidates(self, n: int) -> str:
        """Records sharing any of ``n`` (rule, key) pairs, with their person and features."""
        sql = self._candidates.get(n)
        if sql is None:
            m = self.m
            terms = " OR ".join(f"(b.rule = {m} AND b.key = {m})" for _ in range(n))
            sql = self._candidates[n] = (
                "SELECT r.patient_id, r.person, r.features FROM mpi_block b "
                f"JOIN mpi_record r ON r.patient_id = b.patient_id WHERE {terms}"
            )
        return sql


def deterministic_decision(record: LinkageRecord, index: StoreCandidates) -> Decision:
    """Without a trained model: link on a usable NHS number, else a new person."""
    uid = record.unique_id
    number = usable_nhs_number(record)
    if number is None:
        return Decision(uid, "new", uid, reason="no usable NHS number (no model trained yet)")
    review = None
    for candidate in index.candidates(record):
        if usable_nhs_number(candidate) != number:
            continue
        if not conflicting(record, candidate):
            return Decision(
                uid, "auto", index.person[candidate.unique_id], 1.0, None,
                candidate.unique_id, None, "nhs-number",
            )  # fmt: skip
        review = review or Decision(
            uid, "review", uid, None, None, candidate.unique_id,
            index.person[candidate.unique_id], "nhs-number-conflict",
        )  # fmt: skip
    return review or Decision(uid, "new", uid, reason="no other record with this NHS number")


# -- decisions and what they write -----------------------------------------------------------
@dataclass
class Pending:
    """A decision made before the record is written, applied after (``after_write``)."""

    record: LinkageRecord
    decision: Decision
    person: str
    how: str
    resource: dict  # the resource to store (with an assigned NHS number, perhaps)
    model_version: int | None = None
    decided_by: str | None = None
    known: bool = True  # the index held this record before (False: nothing to delete first)
    events: list = field(default_factory=list)


def model_from_dict(data: dict) -> LinkageModel:
    """A model from its saved document (``LinkageModel.to_dict``), as ``LinkageModel.load``."""
    if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"not a version {FORMAT_VERSION} {FORMAT} document")
    model = LinkageModel(
        settings=data["splink_settings"],
        thresholds=Thresholds(**data["thresholds"]),
        trained_at=data.get("trained_at"),
        version=data.get("version"),
        training=data.get("training") or {},
    )
    _ = model.scorer  # refuse now if the comparisons changed since it was trained
    return model


def how_of(decision: Decision) -> str:
    if decision.route == "auto":
        return "nhs-number" if decision.reason == "nhs-number" else "probabilistic"
    return decision.route  # review | new


def new_person_id() -> str:
    return str(uuid.uuid4())


class MasterPatientIndex:
    """One per store; safe to share between threads (it keeps only the model cache)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.sql = _Sql(store.dialect)
        self._model: LinkageModel | None = None
        self._model_version: int | None = None
        self._model_checked = -1e9
        self.trail = None  # set by the server or the command line: decisions are logged

    # -- the model ---------------------------------------------------------------------------
    def model(self, conn: Connection) -> LinkageModel | None:
        """The active model, looked up at most every ``MODEL_CHECK_SECONDS`` (so a new
        version reaches every server worker within that)."""
        now = time.monotonic()
        if now - self._model_checked < MODEL_CHECK_SECONDS:
            return self._model
        self._model_checked = now
        version = conn.execute(select(func.max(MM.c.version)).where(MM.c.active)).scalar()
        if version is None:
            self._model, self._model_version = None, None
            return None
        if version != self._model_version:
            document = conn.execute(
                select(MM.c.document).where(MM.c.version == version)
            ).scalar_one()
            self._model = model_from_dict(orjson.loads(document))
            self._model_version = version
        return self._model

    def save_model(self, model: LinkageModel) -> int:
        """Store ``model`` as the next version and make it the active one."""
        with self.store.write() as conn:
            version = (conn.execute(select(func.max(MM.c.version))).scalar() or 0) + 1
            model.version = version
            conn.execute(
                insert(MM).values(
                    version=version,
                    trained_at=model.trained_at or "",
                    document=orjson.dumps(model.to_dict()).decode(),
                    active=True,
                )
            )
        self._model_checked = -1e9  # this process uses it from the next write
        return version

    def models(self) -> list[dict]:
        with self.store.read_conn() as conn:
            rows = conn.execute(
                select(MM.c.version, MM.c.trained_at, MM.c.active, MM.c.document).order_by(
                    MM.c.version
                )
            ).all()
        return [
            {
                "version": v,
                "trained_at": t,
                "active": bool(a),
                "training": orjson.loads(d).get("training") or {},
            }
            for v, t, a, d in rows
        ]

    # -- the write path ----------------------------------------------------------------------
    def before_write(
        self, conn: Connection, res_id: str, resource: dict, *, decided_by: str | None = None
    ) -> Pending:
        """Decide the person of a Patient about to be written; the resource to store."""
        clean = strip_assigned(resource)
        record = features({**clean, "id": res_id})
        sql = self.sql
        current = conn.exec_driver_sql(sql.current, (res_id,)).first()
        model = None
        if current is not None and current.how in MANUAL:
            # A person decided this record's person: keep it, whatever the details say now.
            decision = Decision(res_id, "auto", current.person, reason=current.how)
            person, how = current.person, current.how
        else:
            # A reviewer's "not this person" (a record never written before has none).
            rejected = (
                frozenset(conn.exec_driver_sql(sql.rejected, (res_id,)).scalars())
                if current is not None
                else frozenset()
            )
            index = StoreCandidates(conn, sql, exclude_persons=rejected)
            model = self.model(conn)
            if model is None:
                index.rules = tuple(r for r in PREDICTION_BLOCKING if r == (NHS_RULE,))
                decision = deterministic_decision(record, index)
            else:
                decision = model.match_one(record, index)
            how = how_of(decision)
            if decision.route == "auto":
                person = decision.person_id
            elif current is not None and not self._shared(conn, current.person, res_id, sql):
                person = current.person  # still its own person: keep the id
            else:
                person = new_person_id()
        stored = clean
        if not has_nhs_identifier(clean):
            number = self._person_number(conn, person, res_id, sql)
            if number is not None:
                stored = assign_number(clean, number)
        return Pending(
            record,
            decision,
            person,
            how,
            stored,
            model_version=self._model_version if model is not None else None,
            decided_by=decided_by,
            known=current is not None,
        )

    def after_write(self, conn: Connection, pk: int, pending: Pending) -> None:
        """Record the decision: the record's person, features, keys and any review item."""
        record, decision, sql = pending.record, pending.decision, self.sql
        pid = record.unique_id
        now = time.time()
        details = (record_json(record), usable_nhs_number(record))
        if pending.how in MANUAL:
            # Only the details change; the decision and who made it stay.
            conn.exec_driver_sql(sql.upsert_details, (pk, *details, pid))
        else:
            conn.exec_driver_sql(
                sql.upsert,
                (
                    pid, pk, pending.person, *details, pending.how, decision.match_probability,
                    decision.match_weight, decision.matched_id, pending.model_version, now,
                    pending.decided_by,
                ),
            )  # fmt: skip
        if pending.known:
            conn.exec_driver_sql(sql.delete_blocks, (pid,))
            conn.exec_driver_sql(sql.delete_link, (pid,))
        keys = block_keys(record)
        if keys:
            conn.exec_driver_sql(sql.insert_block, [(r, k, pid) for r, k in keys])
        conn.exec_driver_sql(sql.insert_link, (pk, pid, pending.person))
        if decision.route == "review" and pending.how == "review":
            self._open_review(conn, pid, decision, now)
        elif pending.known and pending.how not in MANUAL:
            conn.exec_driver_sql(sql.supersede, (now, pid))
        pending.events.append(self._event(pending))

    def forget(self, conn: Connection, res_id: str) -> None:
        """A Patient was deleted: it is no longer anyone's record or a candidate."""
        conn.execute(delete(MB).where(MB.c.patient_id == res_id))
        conn.execute(delete(MR).where(MR.c.patient_id == res_id))
        conn.execute(delete(PL).where(PL.c.patient_id == res_id))
        conn.execute(
            update(RV)
            .where(RV.c.patient_id == res_id, RV.c.status == "open")
            .values(status="superseded", decided_at=time.time())
        )

    def log(self, events: list[AccessEvent]) -> None:
        """Append decisions to the transparency log (when one is attached)."""
        if events and self.trail is not None:
            self.trail.record_many(events)

    # -- helpers -----------------------------------------------------------------------------
    def _shared(self, conn: Connection, person: str, patient_id: str, sql=None) -> bool:
        sql = sql or self.sql
        return conn.exec_driver_sql(sql.shared, (person, patient_id)).first() is not None

    def _person_number(self, conn: Connection, person: str, patient_id: str, sql=None):
        """The person's NHS number from their other records, if they agree on one."""
        sql = sql or self.sql
        numbers = conn.exec_driver_sql(sql.person_numbers, (person, patient_id)).scalars().all()
        return numbers[0] if len(numbers) == 1 else None

    @staticmethod
    def _open_review(conn: Connection, pid: str, decision: Decision, now: float) -> None:
        candidate = decision.candidate_person_id
        if candidate is None:
            return
        existing = conn.execute(
            select(RV.c.id, RV.c.status).where(
                RV.c.patient_id == pid,
                RV.c.candidate_person == candidate,
                RV.c.status.in_(("open", "rejected")),
            )
        ).first()
        if existing is not None:
            if existing.status == "open":
                conn.execute(
                    update(RV)
                    .where(RV.c.id == existing.id)
                    .values(
                        matched_id=decision.matched_id,
                        probability=decision.match_probability,
                        match_weight=decision.match_weight,
                        reason=decision.reason[:64],
                    )
                )
            return
        conn.execute(
            update(RV)
            .where(RV.c.patient_id == pid, RV.c.status == "open")
            .values(status="superseded", decided_at=now)
        )
        conn.execute(
            insert(RV).values(
                patient_id=pid,
                candidate_person=candidate,
                matched_id=decision.matched_id,
                probability=decision.match_probability,
                match_weight=decision.match_weight,
                reason=decision.reason[:64],
                status="open",
                created_at=now,
            )
        )

    @staticmethod
    def _event(pending: Pending) -> AccessEvent:
        from carelight.audit.events import AccessEvent

        d = pending.decision
        patients = tuple(dict.fromkeys(p for p in (d.unique_id, d.matched_id) if p))
        detail = f"{pending.how}"
        if d.match_probability is not None:
            detail += f", match probability {d.match_probability:.6f}"
        if pending.model_version is not None:
            detail += f", model {pending.model_version}"
        return AccessEvent(
            action="link",
            outcome="success",
            username=pending.decided_by or "master-patient-index",
            patients=patients,
            resources=(f"Patient/{d.unique_id}", f"Person/{pending.person}"),
            reason=detail,
        )
