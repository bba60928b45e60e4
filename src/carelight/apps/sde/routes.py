"""The pages of the secure data environment at ``/sde``, and the register's job and release
feeds (``/register/jobs.json``, ``/register/releases.json``: public, no sign-in).

Handlers are plain ``def`` (database work and file reads run in the thread pool) except those
reading forms. A refusal from the rules is shown as a page with its message and status.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from carelight.access.http import json_response, principal_of
from carelight.access.optout import LEGAL_BASES
from carelight.access.principal import Principal, Role
from carelight.access.sessions import SESSION_COOKIE, csrf_ok
from carelight.apps.sde.services import jobs_of, queue_of
from carelight.apps.web import page, session_csrf, templates
from carelight.sde import model
from carelight.sde.governance import GovernanceError, accredit, accreditations
from carelight.sde.governance.rules import CONFIDENTIALITY_BASES
from carelight.sde.review import checking, release
from carelight.sde.review.api import released_file
from carelight.sde.review.public import public_jobs, public_releases

router = APIRouter(prefix="/sde", include_in_schema=False)
public_router = APIRouter(prefix="/register", include_in_schema=False)
ENV = templates("carelight.apps.sde")
SERVICE = "Carelight secure data environment"
SDE_ROLES = frozenset(
    {Role.RESEARCHER, Role.OUTPUT_CHECKER, Role.DATA_ACCESS_COMMITTEE, Role.ADMIN}
)
MAX_FORM = 512 * 1024  # a job's code comes in a form


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


ENV.filters["when"] = _iso


def _render(request: Request, template: str, status: int = 200, **context) -> Response:
    return page(
        ENV, template, status, me=principal_of(request), csrf=session_csrf(request),
        service_name=SERVICE, home_path="/sde", signout_next="/sde", **context,
    )  # fmt: skip


def _message(request: Request, status: int, title: str, message: str) -> Response:
    return _render(request, "message.html", status, title=title, message=message)


class _Stop(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _me(request: Request) -> Principal:
    principal = principal_of(request)
    if principal is None or request.state.auth != "session":
        target = request.url.path
        raise _Stop(RedirectResponse("/signin?" + urlencode({"next": target}), status_code=303))
    if principal.role not in SDE_ROLES:
        raise _Stop(
            _message(
                request,
                403,
                "The secure data environment is for researchers and its staff",
                f"Your account ({principal.role}) does not use the secure data environment.",
            )
        )
    return principal


def _guarded(handler):
    """Sign-in first, then the handler; a rule's refusal becomes a page with its status."""
    import functools
    import inspect

    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def run_async(request: Request, *args, **kwargs):
            try:
                return await handler(request, _me(request), *args, **kwargs)
            except _Stop as stop:
                return stop.response
            except GovernanceError as exc:
                return _message(request, exc.status, "That was not done", exc.message)

        return run_async

    @functools.wraps(handler)
    def run(request: Request, *args, **kwargs):
        try:
            return handler(request, _me(request), *args, **kwargs)
        except _Stop as stop:
            return stop.response
        except GovernanceError as exc:
            return _message(request, exc.status, "That was not done", exc.message)

    return run


def _strip_me(fn):
    """FastAPI must not see the ``me`` parameter the guard passes."""
    import inspect

    sig = inspect.signature(fn)
    params = [p for name, p in sig.parameters.items() if name != "me"]
    fn.__signature__ = sig.replace(parameters=params)
    return fn


def route(method: str, path: str, on=None):
    def wrap(handler):
        guarded = _strip_me(_guarded(handler))
        (on or router).add_api_route(path, guarded, methods=[method])
        return handler

    return wrap


async def _form(request: Request) -> dict[str, str]:
    """The posted form (up to 512 KB: a job's code), its CSRF token checked."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise _Stop(_message(request, 413, "The form is too large",
                                 f"Send at most {MAX_FORM:,} bytes."))  # fmt: skip
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=60)
    except (UnicodeDecodeError, ValueError):
        raise _Stop(_message(request, 400, "The form could not be read", "Send UTF-8.")) from None
    form = dict(pairs)
    if not csrf_ok(request.cookies.get(SESSION_COOKIE), form.get("csrf")):
        raise _Stop(
            _message(
                request,
                400,
                "The form had expired",
                "The page you sent it from had expired. Go back, reload the page and try again.",
            )
        )
    return form


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


# -- home ------------------------------------------------------------------------------------
@route("GET", "")
@route("GET", "/")
def home(request: Request, me: Principal) -> Response:
    jobs = jobs_of(request.app)
    g = jobs.governance
    context: dict = {"title": "Secure data environment"}
    if me.role is Role.RESEARCHER:
        context["projects"] = [p for p in g.list() if me.username in p.members]
        context["jobs"] = jobs.visible_to(me)[-20:][::-1]
        context["releases"] = release.visible_releases(jobs, me)
    elif me.role is Role.OUTPUT_CHECKER:
        context["queue"] = checking.queue(jobs, me)
    else:
        context["awaiting"] = g.list(statuses=["submitted"])
        context["approved"] = g.list(statuses=["approved"])
        context["active"] = g.list(statuses=["active"])
    return _render(request, "home.html", **context)


# -- projects --------------------------------------------------------------------------------
def _project_form(request, status=200, errors=(), values=None):
    return _render(
        request, "project_new.html", status, title="Apply for a research project",
        errors=list(errors), values=values or {}, legal_bases=sorted(LEGAL_BASES),
        confidentiality_bases=sorted(CONFIDENTIALITY_BASES), tables=model.TABLES,
    )  # fmt: skip


@route("GET", "/projects/new")
def new_project(request: Request, me: Principal) -> Response:
    return _project_form(request)


@route("POST", "/projects/new")
async def create_project(request: Request, me: Principal) -> Response:
    form = await _form(request)
    fields = {
        k: form.get(k, "")
        for k in ("title", "lay_summary", "purpose", "legal_basis", "confidentiality_basis",
                  "organisation", "start_date", "end_date", "members")
    }  # fmt: skip
    fields["commercial"] = form.get("commercial") == "yes"
    fields["tables"] = [t.name for t in model.TABLES if form.get(f"table_{t.name}") == "yes"]
    try:
        from starlette.concurrency import run_in_threadpool

        p = await run_in_threadpool(jobs_of(request.app).governance.create, me, fields)
    except GovernanceError as exc:
        return _project_form(
            request, exc.status if exc.status != 400 else 400,
            [{"field": "title", "text": exc.message}], form,
        )  # fmt: skip
    return _back(f"/sde/projects/{p.id}")


@route("GET", "/projects/{project_id}")
def project_page(request: Request, me: Principal, project_id: str) -> Response:
    jobs = jobs_of(request.app)
    p = jobs.governance.require_visible(me, project_id)
    member = me.username in p.members
    project_jobs = jobs.list(p.id) if (member or me.role is not Role.RESEARCHER) else []
    return _render(
        request, "project.html", title=p.title, p=p, member=member, jobs=project_jobs,
        extract=jobs.latest_extract(p.id),
    )  # fmt: skip


@route("POST", "/projects/{project_id}/{transition}")
async def project_transition(
    request: Request, me: Principal, project_id: str, transition: str
) -> Response:
    form = await _form(request)
    from starlette.concurrency import run_in_threadpool

    g = jobs_of(request.app).governance
    await run_in_threadpool(g.require_visible, me, project_id)
    if transition == "jobs":
        job = await run_in_threadpool(
            jobs_of(request.app).submit, me, project_id, form.get("title", ""),
            form.get("definition", ""), form.get("script", ""),
        )  # fmt: skip
        queue_of(request.app).start(job.id)
        return _back(f"/sde/jobs/{job.id}")
    await run_in_threadpool(g.transition, me, project_id, transition, form.get("reason"))
    return _back(f"/sde/projects/{project_id}")


# -- accreditation ---------------------------------------------------------------------------
@route("GET", "/accreditations")
def accreditation_page(request: Request, me: Principal) -> Response:
    return _render(
        request, "accreditations.html", title="Researchers' accreditation",
        accreditations=accreditations(request.app.state.store.engine), values={},
    )  # fmt: skip


@route("POST", "/accreditations")
async def accreditation_submit(request: Request, me: Principal) -> Response:
    form = await _form(request)
    from starlette.concurrency import run_in_threadpool

    await run_in_threadpool(
        accredit, request.app.state.store.engine, request.app.state.trail, me,
        form.get("username", ""), form.get("body", ""), form.get("valid_from"),
        form.get("valid_to"),
    )  # fmt: skip
    return _back("/sde/accreditations")


# -- jobs ------------------------------------------------------------------------------------
@route("GET", "/jobs/{job_id}")
def job_page(request: Request, me: Principal, job_id: str) -> Response:
    jobs = jobs_of(request.app)
    job = jobs.require_visible(me, job_id)
    outputs = jobs.outputs_seen_by(me, job)
    released = {r.output_id: r for r in release.releases(jobs.engine, job.project_id)}
    votes = {o.id: checking.votes_seen_by(jobs, me, o.id) for o in outputs}
    real_runs = [j for j in jobs.list(job.project_id) if j.code_of == job.id]
    member = me.username in jobs.governance.get(job.project_id).members
    definition, script = jobs.code(job)
    return _render(
        request, "job.html", title=f"Job {job.id}: {job.title}", job=job, outputs=outputs,
        definition=definition, script=script,
        released=released, votes=votes, real_runs=real_runs, member=member,
        project=jobs.governance.get(job.project_id),
    )  # fmt: skip


@route("POST", "/jobs/{job_id}/real")
async def job_real(request: Request, me: Principal, job_id: str) -> Response:
    await _form(request)
    from starlette.concurrency import run_in_threadpool

    job = await run_in_threadpool(jobs_of(request.app).run_real, me, job_id)
    queue_of(request.app).start(job.id)
    return _back(f"/sde/jobs/{job.id}")


@route("GET", "/releases/{release_id}/download")
def release_download(request: Request, me: Principal, release_id: str) -> Response:
    r, data = release.download(jobs_of(request.app), me, release_id)
    return released_file(r.path, data)


# -- output checking -------------------------------------------------------------------------
@route("GET", "/review")
def review_queue(request: Request, me: Principal) -> Response:
    found = checking.queue(jobs_of(request.app), me)
    return _render(request, "review_queue.html", title="Outputs to check", queue=found)


def _table(path: str, data: bytes) -> list[list[str]] | None:
    if not path.lower().endswith((".csv", ".tsv")):
        return None
    text = data.decode("utf-8", "replace")
    return list(csv.reader(io.StringIO(text), delimiter="\t" if path.endswith(".tsv") else ","))


@route("GET", "/review/{output_id}")
def review_file(request: Request, me: Principal, output_id: str) -> Response:
    return _review_page(request, me, output_id)


def _review_page(request: Request, me: Principal, output_id: str, errors=None) -> Response:
    jobs = jobs_of(request.app)
    job, out, data = checking.for_checking(jobs, me, output_id)
    return _render(
        request, "review_file.html", title=f"Check {out.path}", job=job, out=out,
        table=_table(out.path, data), text=data.decode("utf-8", "replace"),
        votes=checking.votes_seen_by(jobs, me, out.id), errors=errors or [],
    )  # fmt: skip


@route("POST", "/review/{output_id}")
async def review_vote(request: Request, me: Principal, output_id: str) -> Response:
    form = await _form(request)
    from starlette.concurrency import run_in_threadpool

    try:
        await run_in_threadpool(
            checking.vote, jobs_of(request.app), me, output_id, form.get("decision", ""),
            form.get("comment", ""),
        )  # fmt: skip
    except GovernanceError as exc:
        if exc.status != 400:
            raise
        errors = [{"field": "comment", "text": exc.message}]
        return await run_in_threadpool(_review_page, request, me, output_id, errors)
    return _back(f"/sde/review/{output_id}/voted")


@route("GET", "/review/{output_id}/voted")
def review_voted(request: Request, me: Principal, output_id: str) -> Response:
    jobs = jobs_of(request.app)
    job, out = checking.get_output(jobs, output_id)
    return _render(
        request, "review_voted.html", title="Your vote is recorded", out=out, job=job,
        votes=checking.votes_seen_by(jobs, me, out.id),
    )  # fmt: skip


# -- the public register's feeds -------------------------------------------------------------
@public_router.get("/jobs.json")
def register_jobs(request: Request) -> Response:
    return json_response({"jobs": public_jobs(request.app.state.store.engine)})


@public_router.get("/releases.json")
def register_releases(request: Request) -> Response:
    return json_response({"releases": public_releases(request.app.state.store.engine)})
