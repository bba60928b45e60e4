"""The transparency log over HTTP (pinned in ARCHITECTURE.md): /audit/…

Public: the latest signed checkpoint and the log's public key. Any signed-in principal:
inclusion and consistency proofs (hashes only). The patient concerned and auditors (role
admin): an entry's exact bytes, and the list of entries about a patient. Reading entries is
itself an access and is recorded first; if that fails, nothing is returned.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from carelight.access.principal import Principal, Purpose, Role
from carelight.audit.events import AccessEvent, patients_in_entry
from carelight.audit.log import LogError
from carelight.audit.trail import AuditUnavailable, Trail
from carelight.fhir.errors import FhirError, bad_request, error

router = APIRouter()
log = logging.getLogger("carelight.audit")

FHIR_JSON = "application/fhir+json"
TEXT = "text/plain; charset=utf-8"
MAX_PAGE = 200
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def principal_of(request: Request) -> Principal | None:
    """Who is asking, as the sign-in middleware left it (None: anonymous)."""
    return getattr(request.state, "principal", None)


def _signed_in(request: Request) -> Principal:
    principal = principal_of(request)
    if principal is None:
        err = error(401, "login", "Sign in to use this part of the transparency log.")
        err.headers["WWW-Authenticate"] = "Bearer"
        raise err
    return principal


def _trail(request: Request) -> Trail:
    trail = getattr(request.app.state, "trail", None)
    if trail is None:
        raise _unavailable()
    return trail


def _unavailable() -> FhirError:
    return error(
        503,
        "transient",
        "The transparency log is not available, so nothing that would be recorded in it "
        "can be answered; try again later.",
    )


def _whole_number(name: str, value: str | None, *, low: int = 0, default: int | None = None):
    if value is None or value == "":
        if default is not None:
            return default
        raise bad_request(f"The parameter {name} is required (a whole number ≥ {low}).", name)
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise bad_request(f"{name} must be a whole number ≥ {low}, not '{value[:40]}'.", name)
    number = int(value)
    if number < low:
        raise bad_request(f"{name} must be at least {low}.", name)
    return number


def _json(body: dict, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _hashes(hashes: list[bytes]) -> Response:
    return _json({"hashes": [base64.b64encode(h).decode() for h in hashes]})


async def _in_thread(fn: Callable, *args):
    try:
        return await run_in_threadpool(fn, *args)
    except LogError as exc:
        raise bad_request(str(exc)) from None


# -- public ----------------------------------------------------------------------------------


@router.get("/checkpoint")
async def checkpoint(request: Request) -> Response:
    """The latest checkpoint: a C2SP tlog-checkpoint signed note (text/plain)."""
    trail = _trail(request)
    try:
        cp = await run_in_threadpool(trail.log.latest_checkpoint)
    except Exception:
        log.exception("transparency log: no checkpoint could be read or signed")
        raise _unavailable() from None
    return Response(cp.note, media_type=TEXT, headers={"Cache-Control": "no-cache"})


@router.get("/public-key")
async def public_key(request: Request, type: str | None = None) -> Response:
    """The log's verifier key (vkey). ``?type=cosignature`` gives the timestamped one."""
    signer = _trail(request).log.signer
    if type in (None, "", "ed25519"):
        key = signer.vkey
    elif type == "cosignature":
        key = signer.cosignature_vkey
    else:
        raise bad_request(f"type must be ed25519 or cosignature, not '{type[:40]}'.", "type")
    return Response(key, media_type=TEXT)


# -- signed in -------------------------------------------------------------------------------


@router.get("/proof/inclusion")
async def inclusion_proof(request: Request) -> Response:
    """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` entries."""
    _signed_in(request)
    trail = _trail(request)
    index = _whole_number("index", request.query_params.get("index"))
    size = _whole_number("size", request.query_params.get("size"), low=1)
    if index >= size:
        raise bad_request(f"index ({index}) must be below size ({size}).", "index")
    return _hashes(await _in_thread(trail.log.inclusion_proof, index, size))


@router.get("/proof/consistency")
async def consistency_proof(request: Request) -> Response:
    """RFC 9162 consistency proof between the trees of ``from`` and ``to`` entries."""
    _signed_in(request)
    trail = _trail(request)
    old = _whole_number("from", request.query_params.get("from"))
    new = _whole_number("to", request.query_params.get("to"))
    if old > new:
        raise bad_request(f"from ({old}) must not be larger than to ({new}).", "from")
    return _hashes(await _in_thread(trail.log.consistency_proof, old, new))


# -- the patient concerned and auditors -----------------------------------------------------


def _audit_read(
    trail: Trail, principal: Principal, patients: tuple[str, ...], outcome: str, reason=None
) -> None:
    purpose = Purpose.PATRQT if principal.role is Role.PATIENT else Purpose.HSYSADMIN
    event = AccessEvent(
        action="audit-read",
        outcome=outcome,
        username=principal.username,
        principal=principal,
        purpose=str(purpose),
        patients=patients,
        reason=reason,
    )
    try:
        trail.record(event)
    except AuditUnavailable:
        raise _unavailable() from None


def _may_read(request: Request, principal: Principal, patients: list[str]) -> bool:
    if principal.role is Role.ADMIN:
        return True
    if principal.role is not Role.PATIENT or not principal.patient_id:
        return False
    if principal.patient_id in patients:
        return True
    # Any of the person's records (a hospital's, the council's): they are all about them.
    from carelight.access.gate import same_person

    store = getattr(request.app.state, "store", None)
    if store is None:
        return False
    with store.engine.connect() as conn:
        mine = set(conn.execute(same_person([principal.patient_id])).scalars())
    return bool(mine.intersection(patients))


def _forbidden(trail: Trail, principal: Principal, patients: tuple[str, ...]) -> FhirError:
    reason = "only the patient concerned and auditors may read these log entries"
    _audit_read(trail, principal, patients, "refused", reason)
    return error(403, "forbidden", f"Not allowed: {reason}.")


@router.get("/entries/{index}")
def entry(index: str, request: Request) -> Response:
    """The exact leaf bytes of one entry (application/fhir+json)."""
    principal = _signed_in(request)
    trail = _trail(request)
    number = _whole_number("index", index)
    try:
        leaf = trail.log.leaf(number)
    except LogError:
        raise error(404, "not-found", f"There is no log entry {number}.") from None
    patients = patients_in_entry(leaf)
    if not _may_read(request, principal, patients):
        # The refusal is about those patients too: they see that someone tried.
        raise _forbidden(trail, principal, tuple(patients))
    _audit_read(trail, principal, tuple(patients), "success")
    return Response(leaf, media_type=FHIR_JSON)


@router.get("/patient/{patient_id}/entries")
def patient_entries(patient_id: str, request: Request) -> Response:
    """The entries about one Patient, newest first: ``{"total", "entries": [{index, entry}]}``."""
    principal = _signed_in(request)
    trail = _trail(request)
    offset = _whole_number("offset", request.query_params.get("offset"), default=0)
    count = _whole_number("_count", request.query_params.get("_count"), low=1, default=50)
    count = min(count, MAX_PAGE)
    if not _FHIR_ID.fullmatch(patient_id):
        raise bad_request("A Patient id is 1-64 letters, digits, '-' or '.'.", "patient_id")
    if not _may_read(request, principal, [patient_id]):
        raise _forbidden(trail, principal, (patient_id,))
    # Recorded before the listing is read, so the listing includes this very look.
    _audit_read(trail, principal, (patient_id,), "success")
    total = trail.log.count_for_patient(patient_id)
    rows = trail.log.entries_for_patient(patient_id, offset, count)
    body = {
        "patient": f"Patient/{patient_id}",
        "total": total,
        "offset": offset,
        "entries": [{"index": i, "entry": orjson.Fragment(leaf)} for i, leaf in rows],
    }
    return _json(body)
