"""HTTP for the gate's own actions: break-glass, and a patient's data choices (opt-out).

* ``POST /access/break-glass`` ``{"patient": "Patient/<id>", "reason": "…"}``: a professional
  opens a person's record without a care relationship; then requests with
  ``X-Purpose-Of-Use: ETREAT`` see it. ``GET /access/break-glass``: a professional's own grants;
  an administrator (the privacy officer) sees every grant, or one organisation's with
  ``?organization=<ODS code>``.
* ``GET /access/opt-out`` and ``PUT /access/opt-out`` ``{"research": true, "planning": false}``:
  the signed-in patient's national data opt-out, recorded as a Consent through the same gate
  as any FHIR write (a patient may also POST or DELETE the Consent through ``/fhir``).
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from fastapi.responses import Response

from carelight.access import breakglass
from carelight.access.gate import PATIENT_APP_SOURCE, PRIVACY_SCOPE
from carelight.access.http import gate_of, guard, json_object, json_response, principal_of, record
from carelight.access.optout import opt_out_consent, opted_out_purposes
from carelight.access.principal import PROFESSIONAL_ROLES, Principal, Purpose, Role
from carelight.audit.events import AccessEvent
from carelight.fhir.errors import bad_request, error
from carelight.fhir.search.execute import match_ids

router = APIRouter(prefix="/access")


# -- break-glass --------------------------------------------------------------------------
@router.post("/break-glass")
async def open_break_glass(request: Request) -> Response:
    body = await json_object(request)
    principal = principal_of(request)
    gate = gate_of(request)
    gate.context(principal, Purpose.TREAT if principal and principal.is_professional else None)
    assert principal is not None
    if principal.role not in PROFESSIONAL_ROLES:
        raise error(403, "forbidden", "Only health and care professionals may break glass.")
    ref = body.get("patient")
    if not isinstance(ref, str) or not ref.removeprefix("Patient/"):
        raise bad_request('Name the person: {"patient": "Patient/<id>", "reason": "…"}.', "patient")
    patient_id = ref.removeprefix("Patient/")
    grant, index = break_glass(request, principal, patient_id, body.get("reason"))
    return json_response(
        {
            "id": grant["id"],
            "patient": f"Patient/{patient_id}",
            "reason": grant["reason"],
            "expires": _instant(grant["expires"]),
            "purposeOfUse": Purpose.ETREAT.value,
            "auditIndex": index,
            "note": "Send X-Purpose-Of-Use: ETREAT with requests for this record; every access "
            "is logged, shown to the patient and listed for your privacy officer.",
        },
        201,
    )


def break_glass(
    request: Request, principal: Principal, patient_id: str, reason: object
) -> tuple[dict, int]:
    """Open a break-glass grant and record it in the log (the API's and the web apps' way)."""
    reason = breakglass.check_reason(reason)
    store = request.app.state.store
    store.read("Patient", patient_id)  # 404 / 410 for no such person
    grant = breakglass.open_grant(store.engine, principal, patient_id, reason)
    index = record(
        request,
        AccessEvent(
            action="break-glass",
            outcome="success",
            username=principal.username,
            principal=principal,
            purpose=Purpose.ETREAT.value,
            patients=(patient_id,),
            resources=(f"Patient/{patient_id}",),
            reason=grant["reason"],
            break_glass=True,
        ),
    )
    breakglass.set_audit_index(store.engine, grant["id"], index)
    return grant, index


@router.get("/break-glass")
def list_break_glass(request: Request, organization: str | None = None) -> Response:
    principal = principal_of(request)
    if principal is None:
        gate_of(request).context(None)
    assert principal is not None
    store = request.app.state.store
    if principal.role is Role.ADMIN:
        grants = breakglass.list_grants(store.engine, organization)
    elif principal.role in PROFESSIONAL_ROLES:
        grants = [
            g
            for g in breakglass.list_grants(store.engine, principal.organization_code)
            if g["username"] == principal.username
        ]
    else:
        raise error(
            403, "forbidden", "Break-glass grants are listed for professionals and auditors."
        )
    # The list names patients and reasons: reading it is itself logged.
    record(
        request,
        AccessEvent(
            action="audit-read",
            outcome="success",
            username=principal.username,
            principal=principal,
            purpose=Purpose.HSYSADMIN.value
            if principal.role is Role.ADMIN
            else Purpose.TREAT.value,
            patients=tuple(dict.fromkeys(g["patient_id"] for g in grants)),
            query="access/break-glass",
        ),
    )
    return json_response(
        {
            "grants": [
                {
                    "id": g["id"],
                    "username": g["username"],
                    "role": g["role"],
                    "organization": g["organization_code"],
                    "patient": f"Patient/{g['patient_id']}",
                    "reason": g["reason"],
                    "created": _instant(g["created"]),
                    "expires": _instant(g["expires"]),
                    "auditIndex": g["audit_index"],
                }
                for g in grants
            ]
        }
    )


# -- opt-out ------------------------------------------------------------------------------
def _choices(purposes: set[str]) -> dict:
    return {
        "research": Purpose.HRESCH.value in purposes,
        "planning": Purpose.HOPERAT.value in purposes,
        "covers": "Research and planning (uses beyond your own care). Your direct care is never "
        "affected: the people caring for you still see your record.",
    }


@router.get("/opt-out")
def get_opt_out(request: Request) -> Response:
    with guard(request, "read", "opt-out") as g:
        _patient_only(g.ctx.principal)
        store = request.app.state.store
        with store.engine.connect() as conn:
            purposes = opted_out_purposes(conn, g.ctx.principal.patient_id)
        g.done(patients=[g.ctx.principal.patient_id])
    return json_response(_choices(purposes))


@router.put("/opt-out")
async def put_opt_out(request: Request) -> Response:
    body = await json_object(request)
    for key in ("research", "planning"):
        if not isinstance(body.get(key), bool):
            raise bad_request(f'"{key}" must be true or false.', key)
    purposes = set_opt_out(request, research=body["research"], planning=body["planning"])
    return json_response(_choices(purposes))


def set_opt_out(request: Request, *, research: bool, planning: bool) -> set[str]:
    """Record the signed-in patient's choices (the API's and the patient app's way): retire
    their active privacy Consents and write one for what they opt out of, as the patient,
    through the gate, logged. Returns the purposes they are now opted out of (from any of
    their records: their GP practice may have recorded one too)."""
    with guard(request, "opt-out", "research,planning") as g:
        principal = g.ctx.principal
        _patient_only(principal)
        store = request.app.state.store
        wanted = [
            p for p, chosen in ((Purpose.HRESCH, research), (Purpose.HOPERAT, planning)) if chosen
        ]
        written = []
        with store.write() as conn:
            # Retire every active privacy Consent the patient may change, then record the choice.
            mine = match_ids(
                store,
                conn,
                "Consent",
                [
                    ("patient", f"Patient/{principal.patient_id}"),
                    ("status", "active"),
                    ("scope", f"{PRIVACY_SCOPE[0]}|{PRIVACY_SCOPE[1]}"),
                ],
                limit=100,
                access=g.ctx,
            )
            for consent_id in mine:
                store.delete("Consent", consent_id, conn=conn, access=g.ctx)
            if wanted:
                now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
                outcome = store.create(
                    opt_out_consent(principal.patient_id, wanted, now),
                    conn=conn,
                    access=g.ctx,
                    source=PATIENT_APP_SOURCE,
                )
                written.append(outcome.stored)
            purposes = opted_out_purposes(conn, principal.patient_id)
        g.done(written, patients=[principal.patient_id])
    return purposes


def _patient_only(principal) -> None:
    if principal.role is not Role.PATIENT:
        raise error(
            403, "forbidden", "Data choices are made by the patient, signed in as themselves."
        )


def _instant(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")
