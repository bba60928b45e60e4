"""The lifecycle over HTTP at ``/sde/api``, for the signed-in SDE roles (bearer tokens, as the
rest of the API). The rules are ``carelight.sde.governance``'s, the same as the CLI's; a refusal
answers with its status (400, 403, 404, 409) and a JSON ``error`` saying what was wrong.

- ``GET  /sde/api/projects``: the projects you may see (the committee, checkers and
  administrators: all; researchers: their own and the public ones)
- ``POST /sde/api/projects``: create a draft (researchers)
- ``GET  /sde/api/projects/{id}``; ``PATCH`` it while a draft (its members)
- ``POST /sde/api/projects/{id}/{submit|approve|reject|activate|close}`` with ``{"reason": …}``
- ``POST /sde/api/projects/{id}/members`` with ``{"username": …}``
- ``POST /sde/api/accreditations`` with ``{"username", "body", "valid_from", "valid_to"}``
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from carelight.access.http import json_object, json_response, principal_of
from carelight.access.principal import NON_IDENTIFIABLE_ROLES, Principal, Role
from carelight.sde.governance import (
    Governance,
    GovernanceError,
    Project,
    accredit,
)
from carelight.sde.register import register_entry

router = APIRouter(prefix="/sde/api", tags=["secure data environment"])
SDE_ROLES = NON_IDENTIFIABLE_ROLES - {Role.ANALYST} | {Role.ADMIN}


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


def _governance(request: Request) -> Governance:
    g = getattr(request.app.state, "sde_governance", None)
    if g is None:
        g = request.app.state.sde_governance = Governance(
            request.app.state.store.engine, request.app.state.trail
        )
    return g


def _who(request: Request) -> Principal:
    principal = principal_of(request)
    if principal is None:
        raise _Refused(401, "Sign in first: send Authorization: Bearer <token>.")
    if principal.role not in SDE_ROLES:
        raise _Refused(
            403,
            f"The secure data environment is for researchers, output checkers, the data access "
            f"committee and administrators; your role is {principal.role}.",
        )
    return principal


def _view(g: Governance, p: Project) -> dict:
    with g.engine.connect() as conn:
        entry = register_entry(conn, p)
    return entry | {"members": list(p.members), "owner": p.owner}


async def _answer(request: Request, action, status: int = 200) -> Response:
    try:
        who = _who(request)
        result = await action(who, _governance(request))
    except _Refused as exc:
        return json_response({"error": exc.message}, exc.status)
    except GovernanceError as exc:
        return json_response({"error": exc.message}, exc.status)
    return json_response(result, status)


@router.get("/projects")
async def list_projects(request: Request) -> Response:
    async def action(who, g):
        projects = await run_in_threadpool(g.visible_to, who)
        return {"projects": [await run_in_threadpool(_view, g, p) for p in projects]}

    return await _answer(request, action)


@router.post("/projects")
async def create_project(request: Request) -> Response:
    body = await json_object(request)

    async def action(who, g):
        return _view(g, await run_in_threadpool(g.create, who, body))

    return await _answer(request, action, 201)


@router.get("/projects/{project_id}")
async def get_project(request: Request, project_id: str) -> Response:
    async def action(who, g):
        return _view(g, await run_in_threadpool(g.require_visible, who, project_id))

    return await _answer(request, action)


@router.patch("/projects/{project_id}")
async def edit_project(request: Request, project_id: str) -> Response:
    body = await json_object(request)

    async def action(who, g):
        g.require_visible(who, project_id)
        return _view(g, await run_in_threadpool(g.edit, who, project_id, body))

    return await _answer(request, action)


@router.post("/projects/{project_id}/members")
async def add_member(request: Request, project_id: str) -> Response:
    body = await json_object(request)

    async def action(who, g):
        username = body.get("username")
        if not isinstance(username, str) or not username.strip():
            raise GovernanceError('Send {"username": "<researcher>"}.')
        g.require_visible(who, project_id)
        return _view(g, await run_in_threadpool(g.add_member, who, project_id, username))

    return await _answer(request, action)


@router.post("/projects/{project_id}/{transition}")
async def transition(request: Request, project_id: str, transition: str) -> Response:
    body = await json_object(request) if await request.body() else {}

    async def action(who, g):
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise GovernanceError("reason must be text.")
        g.require_visible(who, project_id)
        p = await run_in_threadpool(g.transition, who, project_id, transition, reason)
        return _view(g, p)

    return await _answer(request, action)


@router.post("/accreditations")
async def accreditation(request: Request) -> Response:
    body = await json_object(request)

    async def action(who, g):
        a = await run_in_threadpool(
            accredit, g.engine, g.trail, who, str(body.get("username") or ""),
            str(body.get("body") or ""), body.get("valid_from"), body.get("valid_to"),
        )  # fmt: skip
        return {
            "id": a.id, "username": a.username, "body": a.body,
            "valid_from": a.valid_from.isoformat(), "valid_to": a.valid_to.isoformat(),
            "recorded_by": a.recorded_by, "log_index": a.log_index,
        }  # fmt: skip

    return await _answer(request, action, 201)
