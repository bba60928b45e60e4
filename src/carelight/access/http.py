"""The gate and the log on an HTTP request: who, why, and the record of what happened.

``guard(request, action)`` is how every route that touches identifiable data starts::

    with guard(request, "read", query=...) as g:
        stored = store.read(res_type, res_id, access=g.ctx)
        g.done([stored])            # appended to the transparency log *before* returning
    return response

A refusal (401/403) inside the block is logged as ``refused`` and re-raised; if the log cannot
be written the request fails with 503 and no data (audit first, fail closed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import orjson
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import select

from carelight.access.gate import AccessContext, Gate
from carelight.access.grants import parse_scope
from carelight.access.principal import Principal
from carelight.audit.events import AccessEvent
from carelight.audit.trail import AuditUnavailable
from carelight.fhir import schema
from carelight.fhir.errors import FhirError, bad_request, error

if TYPE_CHECKING:
    from carelight.fhir.store import StoredResource

PURPOSE_HEADER = "x-purpose-of-use"
MAX_LOGGED_RESOURCES = 100  # the entry names at most this many; the patients are all named


def gate_of(request: Request) -> Gate:
    gate = getattr(request.app.state, "gate", None)
    if gate is None:
        gate = request.app.state.gate = Gate(request.app.state.store)
    return gate


def principal_of(request: Request) -> Principal | None:
    return getattr(request.state, "principal", None)


def record(request: Request, event: AccessEvent) -> int:
    """Append to the transparency log; 503 (and no data) if that fails."""
    trail = getattr(request.app.state, "trail", None)
    if trail is None:
        raise error(
            503, "transient", "The transparency log is not available, so no data is returned."
        )
    try:
        return trail.record(event)
    except AuditUnavailable as exc:
        raise error(
            503,
            "transient",
            "The access could not be recorded in the transparency log, so no data is returned. "
            "Try again shortly.",
        ) from exc


class Guarded:
    def __init__(
        self, request: Request, action: str, query: str | None, purpose: str | None = None
    ) -> None:
        self.request = request
        self.action = action
        self.query = query
        # The web apps choose the purpose per page (break-glass); API callers send the header.
        self.purpose = purpose or request.headers.get(PURPOSE_HEADER)
        self.ctx: AccessContext | None = None
        self.recorded = False

    def __enter__(self) -> Guarded:
        principal = principal_of(self.request)
        try:
            self.ctx = gate_of(self.request).context(principal, self.purpose)
            check_scope(principal, self.action, self.query)
        except FhirError as exc:
            if principal is not None and exc.status == 403:
                self._refused(principal, None, exc)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if isinstance(exc, FhirError) and exc.status == 403 and not self.recorded:
            assert self.ctx is not None
            self._refused(self.ctx.principal, self.ctx, exc)

    def _refused(self, principal: Principal, ctx: AccessContext | None, exc: FhirError) -> None:
        self.recorded = True
        record(
            self.request,
            AccessEvent(
                action=self.action,
                outcome="refused",
                username=principal.username,
                principal=principal,
                purpose=str(ctx.purpose) if ctx else self.purpose,
                query=self.query,
                reason=exc.message[:300],
                break_glass=bool(ctx and ctx.break_glass),
            ),
        )

    def done(
        self,
        stored: Iterable[StoredResource] = (),
        *,
        patients: Iterable[str] | None = None,
        outcome: str = "success",
    ) -> int:
        """Log what is about to be returned (or was written); call before responding."""
        ctx = self.ctx
        assert ctx is not None
        stored = list(stored)
        if patients is None:
            patients = self.patients(stored)
        self.recorded = True
        return record(
            self.request,
            AccessEvent(
                action=self.action,
                outcome=outcome,
                username=ctx.principal.username,
                principal=ctx.principal,
                purpose=str(ctx.purpose),
                patients=tuple(dict.fromkeys(patients)),
                resources=tuple(f"{s.res_type}/{s.res_id}" for s in stored[:MAX_LOGGED_RESOURCES]),
                query=self.query,
                break_glass=ctx.break_glass,
            ),
        )

    def require_record(self, patient_id: str) -> None:
        """Refuse (403) unless the caller may see this person's record, not only who they are."""
        assert self.ctx is not None
        if self.ctx.principal.is_professional:
            try:
                gate_of(self.request).require_patients(self.ctx, [patient_id])
            except FhirError:
                raise self.ctx.refused(f"Patient/{patient_id}") from None

    def patients(self, stored: list[StoredResource]) -> list[str]:
        """Whose records these are: the Patients whose compartments hold them (now)."""
        direct = [s.res_id for s in stored if s.res_type == "Patient"]
        others = []
        for s in stored:
            if s.res_type == "Patient":
                continue
            known = self.ctx.patients_seen(s.pk) if self.ctx is not None else None
            if known is None:
                others.append(s)
            else:
                direct += known  # looked up with the read's access check
        if not others:
            return direct
        store = self.request.app.state.store
        with store.engine.connect() as conn:
            pks = [s.pk for s in others if s.pk is not None]
            keys = sorted({(s.res_type, s.res_id) for s in others if s.pk is None})
            if keys:
                R = schema.resource
                pks += list(
                    conn.execute(select(R.c.pk).where(schema.keys_condition(keys))).scalars()
                )
            return direct + Gate.patients_of(conn, pks)


_LETTERS = {
    "read": "r",
    "search": "s",
    "history": "r",
    "everything": "r",
    "export": "r",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
    "opt-out": "u",
}


def check_scope(principal: Principal, action: str, query: str | None) -> None:
    """The token's SMART scopes are a ceiling: refuse what none of them covers (403)."""
    res_type = (query or "").split("?")[0].split("/")[0] or "*"
    if action in ("transaction", "batch"):
        wanted, res_type = set("cud"), "*"  # each entry is decided by the gate
    else:
        wanted = set(_LETTERS.get(action, "r"))
    if action == "opt-out":
        res_type = "Consent"
    for scope in principal.scopes:
        try:
            _, scope_type, letters = parse_scope(scope)
        except ValueError:
            continue
        if (scope_type == "*" or res_type == "*" or scope_type == res_type) and (
            wanted & letters if action in ("transaction", "batch") else wanted <= letters
        ):
            return
    raise error(
        403,
        "forbidden",
        f"Your token's scopes ({' '.join(sorted(principal.scopes)) or 'none'}) do not allow "
        f"{action} on {res_type}.",
    )


def guard(
    request: Request, action: str, query: str | None = None, purpose: str | None = None
) -> Guarded:
    """The gate and the log for one request; ``purpose`` overrides X-Purpose-Of-Use."""
    return Guarded(request, action, query, purpose)


def query_names(res_type: str | None, pairs: Iterable[tuple[str, str]]) -> str:
    """``Type?name1,name2``: the parameter names of a request, never their values."""
    names = ",".join(dict.fromkeys(k for k, _ in pairs if k))
    return f"{res_type or ''}?{names}" if names else (res_type or "")


def json_response(body: object, status: int = 200) -> Response:
    """A plain JSON answer (for Carelight's own, non-FHIR routes)."""
    return Response(orjson.dumps(body), status, media_type="application/json")


async def json_object(request: Request) -> dict:
    """The request body as a JSON object, or 400 saying what was wrong."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"The body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise bad_request("The body must be a JSON object.")
    return body
