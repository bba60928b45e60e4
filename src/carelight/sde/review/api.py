"""Jobs, output checking and releases over HTTP at ``/sde/api`` (bearer tokens, JSON), the
same rules as the pages and the CLI (they all call ``jobs.records`` and ``review``):

- ``GET  /sde/api/jobs`` (the jobs you may see), ``POST /sde/api/jobs`` with
  ``{"project", "title", "definition", "script"}``: runs on dummy data in the background
- ``GET  /sde/api/jobs/{id}``: the record and its outputs (kinds, disclosure evidence, review)
- ``POST /sde/api/jobs/{id}/real``: the same code on the real research store
- ``GET  /sde/api/review``: the checker's queue; ``GET /sde/api/review/{output}``: the safe
  file, its evidence and the votes you may see (blind); ``POST`` it with
  ``{"decision", "comment"}``
- ``GET  /sde/api/releases``; ``GET /sde/api/releases/{id}/download`` (project members)

No route returns an output's raw bytes; a row-level file has no route at all.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from carelight.access.http import json_object, json_response
from carelight.sde.api import _Refused, _who
from carelight.sde.governance import GovernanceError
from carelight.sde.jobs.records import Job, Output
from carelight.sde.review import checking, release
from carelight.sde.review.public import job_entry

router = APIRouter(prefix="/sde/api", tags=["secure data environment"])


def _jobs(request: Request):
    from carelight.apps.sde.services import jobs_of

    return jobs_of(request.app)


def job_view(job: Job, outputs: list[Output]) -> dict:
    return job_entry(job.__dict__ | {"project_id": job.project_id}) | {
        "error": job.error,
        "failed_step": job.failed_step,
        "backend": job.backend,
        "outputs": [output_view(o) for o in outputs],
    }


def output_view(o: Output) -> dict:
    return {
        "id": o.id, "path": o.path, "kind": o.kind, "size": o.size, "reasons": list(o.reasons),
        "disclosure": o.disclosure, "evidence": o.evidence, "review": o.review,
    }  # fmt: skip


async def _answer(request: Request, action, status: int = 200) -> Response:
    try:
        who = _who(request)
        result = await run_in_threadpool(action, who, _jobs(request))
    except _Refused as exc:
        return json_response({"error": exc.message}, exc.status)
    except GovernanceError as exc:
        return json_response({"error": exc.message}, exc.status)
    if isinstance(result, Response):
        return result
    return json_response(result, status)


@router.get("/jobs")
async def list_jobs(request: Request) -> Response:
    return await _answer(
        request,
        lambda who, jobs: {
            "jobs": [job_view(j, jobs.outputs_seen_by(who, j)) for j in jobs.visible_to(who)]
        },
    )


@router.post("/jobs")
async def submit_job(request: Request) -> Response:
    body = await json_object(request)
    from carelight.apps.sde.services import queue_of

    def action(who, jobs):
        job = jobs.submit(
            who, body.get("project"), str(body.get("title") or ""),
            body.get("definition"), body.get("script"),
            engine=str(body.get("engine") or "duckdb"),
        )  # fmt: skip
        queue_of(request.app).start(job.id)
        return job_view(job, [])

    return await _answer(request, action, 202)


@router.get("/jobs/{job_id}")
async def get_job(request: Request, job_id: str) -> Response:
    def action(who, jobs):
        job = jobs.require_visible(who, job_id)
        return job_view(job, jobs.outputs_seen_by(who, job))

    return await _answer(request, action)


@router.post("/jobs/{job_id}/real")
async def run_real(request: Request, job_id: str) -> Response:
    from carelight.apps.sde.services import queue_of

    def action(who, jobs):
        job = jobs.run_real(who, job_id)
        queue_of(request.app).start(job.id)
        return job_view(job, [])

    return await _answer(request, action, 202)


@router.get("/review")
async def review_queue(request: Request) -> Response:
    def action(who, jobs):
        found = checking.queue(jobs, who)
        return {
            "queue": [{"job": j.id, "project": j.project_id} | output_view(o) for j, o in found]
        }

    return await _answer(request, action)


@router.get("/review/{output_id}")
async def review_file(request: Request, output_id: str) -> Response:
    def action(who, jobs):
        job, out, data = checking.for_checking(jobs, who, output_id)
        return output_view(out) | {
            "job": job.id,
            "safe_content": data.decode("utf-8", "replace"),
            "votes": [v.__dict__ for v in checking.votes_seen_by(jobs, who, out.id)],
        }

    return await _answer(request, action)


@router.post("/review/{output_id}")
async def review_vote(request: Request, output_id: str) -> Response:
    body = await json_object(request)

    def action(who, jobs):
        out, vote = checking.vote(
            jobs, who, output_id, str(body.get("decision") or ""), str(body.get("comment") or "")
        )
        return {"output": out.id, "review": out.review, "vote": vote.__dict__}

    return await _answer(request, action, 201)


@router.get("/releases")
async def list_releases(request: Request) -> Response:
    return await _answer(
        request,
        lambda who, jobs: {"releases": [r.__dict__ for r in release.visible_releases(jobs, who)]},
    )


@router.get("/releases/{release_id}/download")
async def download(request: Request, release_id: str) -> Response:
    def action(who, jobs):
        r, data = release.download(jobs, who, release_id)
        return released_file(r.path, data)

    return await _answer(request, action)


def released_file(path: str, data: bytes) -> Response:
    name = path.rsplit("/", 1)[-1].replace('"', "")
    media = "text/csv" if name.endswith(".csv") else "application/octet-stream"
    return Response(
        data,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
