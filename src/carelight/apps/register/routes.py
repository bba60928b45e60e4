"""The register's pages and JSON. Public: no sign-in, nothing about any patient."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from carelight.access.http import json_response
from carelight.apps.web import page, templates
from carelight.sde.register import public_entry, public_register

router = APIRouter(prefix="/register", include_in_schema=False)
ENV = templates("carelight.apps.register")
SERVICE = "Carelight research register"


def _render(template: str, status: int = 200, **context) -> Response:
    return page(
        ENV, template, status, me=None, service_name=SERVICE, home_path="/register", **context
    )


def _engine(request: Request):
    return request.app.state.store.engine


@router.get("")
@router.get("/")
async def register_page(request: Request) -> Response:
    projects = await run_in_threadpool(public_register, _engine(request))
    return _render("register.html", title="Research projects", projects=projects)


@router.get("/projects.json")
async def register_json(request: Request) -> Response:
    projects = await run_in_threadpool(public_register, _engine(request))
    return json_response({"projects": projects})


@router.get("/projects/{project_id}.json")
async def project_json(request: Request, project_id: str) -> Response:
    entry = await run_in_threadpool(public_entry, _engine(request), project_id)
    if entry is None:
        return json_response({"error": f"There is no public project {project_id}."}, 404)
    return json_response(entry)


@router.get("/projects/{project_id}")
async def project_page(request: Request, project_id: str) -> Response:
    entry = await run_in_threadpool(public_entry, _engine(request), project_id)
    if entry is None:
        return _render(
            "message.html", 404, title="Project not found",
            message=f"There is no public project {project_id}. Drafts are not published.",
        )  # fmt: skip
    return _render("project.html", title=entry["title"], p=entry)
