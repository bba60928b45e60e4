"""The Bulk Data routes: kick-off, status (poll and cancel), and the files.

    GET|POST /fhir/$export                     every resource
    GET|POST /fhir/Patient/$export             the Patients and their compartments
    GET|POST /fhir/Group/{id}/$export          the Group's member Patients and their compartments
    GET|DELETE /fhir/$export-poll-status/{job}
    GET /fhir/$export-file/{job}/{file}

This router must be included before the main FHIR router, whose ``/{type}`` and
``/{type}/{id}`` routes would otherwise take these paths.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from carelight.access.http import gate_of, guard, principal_of, query_names, record
from carelight.access.principal import Role
from carelight.audit.events import AccessEvent
from carelight.fhir.api import fhir_response
from carelight.fhir.errors import bad_request, error, not_found
from carelight.fhir.export.jobs import RETRY_AFTER, ExportJobs
from carelight.fhir.export.spec import parameters_to_pairs, parse_kickoff

FHIR_JSON = "application/fhir+json"
NDJSON = "application/fhir+ndjson"
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
FILE_NAME = re.compile(r"^[A-Z][A-Za-z]+\.ndjson$")

router = APIRouter()
_jobs_lock = threading.Lock()


def jobs_of(request: Request) -> ExportJobs:
    """The app's export jobs (created on first use; files under CARELIGHT_HOME/exports)."""
    state = request.app.state
    with _jobs_lock:
        jobs = getattr(state, "export_jobs", None)
        if jobs is None:
            jobs = ExportJobs(state.store, Path(state.settings.home) / "exports")
            state.export_jobs = jobs
    return jobs


def _outcome(status: int, severity: str, code: str, text: str, headers=None) -> Response:
    oo = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": text}],
    }
    return fhir_response(orjson.dumps(oo), status, headers)


# -- kick-off -----------------------------------------------------------------------------
@router.get("/$export")
def export_system(request: Request) -> Response:
    return _kickoff(request, "system", _query_pairs(request))


@router.post("/$export")
async def export_system_post(request: Request) -> Response:
    pairs = await _post_pairs(request)
    return await run_in_threadpool(_kickoff, request, "system", pairs)


@router.get("/Patient/$export")
def export_patients(request: Request) -> Response:
    return _kickoff(request, "patient", _query_pairs(request))


@router.post("/Patient/$export")
async def export_patients_post(request: Request) -> Response:
    pairs = await _post_pairs(request)
    return await run_in_threadpool(_kickoff, request, "patient", pairs)


@router.get("/Group/{group_id}/$export")
def export_group(request: Request, group_id: str) -> Response:
    return _kickoff(request, "group", _query_pairs(request), group_id)


@router.post("/Group/{group_id}/$export")
async def export_group_post(request: Request, group_id: str) -> Response:
    pairs = await _post_pairs(request)
    return await run_in_threadpool(_kickoff, request, "group", pairs, group_id)


def _kickoff(
    request: Request, kind: str, pairs: list[tuple[str, str]], group_id: str | None = None
) -> Response:
    if "respond-async" not in request.headers.get("prefer", "").lower():
        raise bad_request("$export runs asynchronously: send the header Prefer: respond-async.")
    accept = request.headers.get("accept", "")
    if accept and not any(t in accept for t in ("json", "*/*")):
        raise error(406, "not-supported", f"Cannot answer with {accept}; use {FHIR_JSON}.")
    spec = parse_kickoff(kind, pairs, group_id)
    store = request.app.state.store
    with guard(request, "export", query_names(f"{kind}/$export", pairs)) as g:
        principal = g.ctx.principal
        if principal.role is not Role.SYSTEM:
            raise error(
                403,
                "forbidden",
                "Bulk export is for source systems (their own records). Professionals use the "
                "shared care record; patients download their record from the patient app.",
            )
        # The export holds only what this system wrote, and only it may collect the files.
        spec = replace(spec, source=principal.source, owner=principal.username)
        if group_id is not None:
            # 404, 410 or 403 now rather than a failed job later
            store.read("Group", group_id, access=g.ctx)
        base = store.base_url
        path = request.url.path.split("/fhir", 1)[-1]
        query = f"?{request.url.query}" if request.url.query else ""
        job_id = jobs_of(request).start(spec, f"{base}{path}{query}")
        g.done()
    return _outcome(
        202,
        "information",
        "informational",
        "The export has started; poll the URL in Content-Location for its status.",
        {"Content-Location": f"{base}/$export-poll-status/{job_id}"},
    )


def _query_pairs(request: Request) -> list[tuple[str, str]]:
    return parse_qsl(request.url.query, keep_blank_values=True)


async def _post_pairs(request: Request) -> list[tuple[str, str]]:
    raw = await request.body()
    if not raw:
        return _query_pairs(request)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"The body is not valid JSON: {exc}") from exc
    return _query_pairs(request) + parameters_to_pairs(body)


# -- status -------------------------------------------------------------------------------
@router.get("/$export-poll-status/{job_id}")
def export_status(request: Request, job_id: str) -> Response:
    job = _own_job(request, job_id)
    if job is None:
        raise not_found(f"There is no export job '{job_id}'.")
    if job.stale:
        return _outcome(
            500,
            "error",
            "incomplete",
            "The export stopped unfinished: the server process running it ended. "
            "Delete this job and start a new export.",
        )
    if job.status == "failed":
        return _outcome(500, "error", "exception", f"The export failed: {job.error}")
    if job.status == "completed":
        return Response(job.manifest, 200, media_type="application/json")
    headers = {"X-Progress": job.progress or "starting", "Retry-After": RETRY_AFTER}
    return Response(None, 202, headers)


@router.delete("/$export-poll-status/{job_id}")
def export_delete(request: Request, job_id: str) -> Response:
    if _own_job(request, job_id) is None or not jobs_of(request).delete(job_id):
        raise not_found(f"There is no export job '{job_id}'.")
    return _outcome(202, "information", "informational", "The export and its files are deleted.")


# -- files --------------------------------------------------------------------------------
@router.get("/$export-file/{job_id}/{file_name}")
def export_file(request: Request, job_id: str, file_name: str) -> Response:
    jobs = jobs_of(request)
    # Both names are checked against strict patterns, so no path can leave the exports folder.
    if JOB_ID.match(job_id) and FILE_NAME.match(file_name):
        job = _own_job(request, job_id)
        path = jobs.job_dir(job_id) / file_name
        if job is not None and job.status == "completed" and path.is_file():
            # Data leaves here: logged (fail closed) like every other access.
            principal = principal_of(request)
            record(
                request,
                AccessEvent(
                    action="export",
                    outcome="success",
                    username=principal.username,
                    principal=principal,
                    purpose=str(gate_of(request).context(principal).purpose),
                    query=f"$export-file/{file_name}",
                ),
            )
            return FileResponse(path, media_type=NDJSON)
    raise not_found(f"There is no export file '{job_id}/{file_name}'.")


def _own_job(request: Request, job_id: str):
    """The job if the caller started it; else None (a 404: others' jobs are not revealed)."""
    principal = principal_of(request)
    if principal is None:
        gate_of(request).context(None)  # 401 with the sign-in hint
    job = jobs_of(request).get(job_id) if JOB_ID.match(job_id) else None
    if job is None or job.owner != principal.username:
        return None
    return job


__all__ = ["jobs_of", "router"]
