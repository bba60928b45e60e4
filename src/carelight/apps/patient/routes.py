"""The pages of the patient app at ``/patient``.

Every page is for the signed-in patient and about them alone: no page takes a person's id, so
there is no other person's id to try. Their record is read through the gate as the patient
(purpose PATRQT), and each read is appended to the transparency log before the page is sent,
as the shared care record's are. Entries of the log are shown only when they are about one of
the person's own records, and verified on the server with the log's public key.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from carelight.access.gate import PATIENT_APP_SOURCE
from carelight.access.gate_api import set_opt_out
from carelight.access.http import gate_of, guard, principal_of, record
from carelight.access.optout import choices_of
from carelight.access.principal import Principal, Purpose, Role
from carelight.access.routes import (
    CSRF_COOKIE,
    SIGNIN_FAILED,
    FormError,
    check_password,
    csrf_for_form,
    failed_event,
    form_csrf_ok,
    open_session,
    read_form,
    secure,
)
from carelight.access.routes import record as record_signin
from carelight.access.services import access_services
from carelight.access.sessions import SESSION_COOKIE, csrf_ok
from carelight.apps.care.charts import series_of, svg
from carelight.apps.care.record import PersonRecord, load_record
from carelight.apps.care.routes import _demographics, _namer, _source_names
from carelight.apps.patient import download
from carelight.apps.patient.accesses import AccessList, access_of, accesses_by_others
from carelight.apps.patient.record import PARTS, items, results
from carelight.apps.patient.verification import verify_entry
from carelight.apps.web import SECURITY_HEADERS, page, session_csrf, templates
from carelight.audit.events import AccessEvent, patients_in_entry
from carelight.audit.log import LogError
from carelight.identity.nhs_number import is_valid_nhs_number
from carelight.sde.data_use import projects_including

router = APIRouter(prefix="/patient", include_in_schema=False)
ENV = templates("carelight.apps.patient", "carelight.apps.care")  # care: the chart macro
SERVICE = "Your health and care record"
ACCESS_PAGE = 25
# The summary document is opened from disk, away from the site: its styles are inline.
DOCUMENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"


class SignIn(Exception):
    """Nobody is signed in (through a web session)."""


def _me(request: Request) -> Principal:
    principal = principal_of(request)
    if principal is None or request.state.auth != "session":
        raise SignIn()
    return principal


def _render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    return page(
        ENV,
        template,
        status,
        me=principal_of(request),
        csrf=session_csrf(request),
        service_name=SERVICE,
        home_path="/patient",
        signout_next="/patient/signin",
        parts=PARTS,
        **context,
    )


def _patient(request: Request) -> Principal | Response:
    """The signed-in patient, or the response that sends anyone else on their way."""
    try:
        principal = _me(request)
    except SignIn:
        return RedirectResponse(
            "/patient/signin?" + urlencode({"next": request.url.path}), status_code=303
        )
    if principal.role is not Role.PATIENT or not principal.patient_id:
        return _render(
            request,
            "message.html",
            403,
            title="This is for patients",
            message="This part of Carelight is where people see their own record. Health and "
            "care professionals use the shared care record.",
            link=("/care", "Go to the shared care record"),
        )
    return principal


def _names(request: Request, ctx):
    names = _namer(_source_names(request, ctx))

    def name(source: str | None) -> str:
        return "You, in this app" if source == PATIENT_APP_SOURCE else names(source)

    return name


def _my_record(request: Request, principal: Principal, what: str):
    """The whole record of the signed-in person (all their records, every source), through
    the gate as the patient, logged before it is shown."""
    store = request.app.state.store
    with guard(request, "everything", f"Patient/$everything?patient-{what}", Purpose.PATRQT) as g:
        found = load_record(store, g.ctx, principal.patient_id)
        namer = _names(request, g.ctx)
        g.done(found.stored)
    return found, namer


def _my_ids(request: Request, principal: Principal) -> list[str]:
    """Every Patient id of the signed-in person (their records at each source)."""
    return gate_of(request).records_of_person(principal.patient_id)


# -- sign-in ------------------------------------------------------------------------------
def _signin_page(request: Request, status=200, errors=None, nhs="", next_path="/patient"):
    csrf = csrf_for_form(request)
    response = page(
        ENV,
        "signin.html",
        status,
        me=None,
        csrf=csrf,
        service_name=SERVICE,
        home_path="/patient",
        title="Sign in",
        errors=errors or [],
        nhs=nhs,
        next_path=next_path,
    )
    response.set_cookie(
        CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=secure(request), path="/"
    )
    return response


def _next(value: str | None) -> str:
    """Only the patient app's own pages: anything else is the app's start."""
    if value and value.startswith("/patient") and value.isprintable() and "//" not in value:
        return value
    return "/patient"


@router.get("/signin")
def signin_form(request: Request) -> Response:
    return _signin_page(request, next_path=_next(request.query_params.get("next")))


@router.post("/signin")
async def signin_submit(request: Request) -> Response:
    try:
        form = await read_form(request)
    except FormError as exc:
        return _signin_page(request, 400, [{"field": "nhs", "text": str(exc)}])
    next_path = _next(form.get("next"))
    nhs = "".join(c for c in form.get("nhs", "") if not c.isspace() and c != "-")
    password = form.get("password", "")
    errors = []
    if not form_csrf_ok(request, form):
        errors.append({"field": "nhs", "text": "The page had expired. Sign in again."})
    elif not nhs:
        errors.append({"field": "nhs", "text": "Enter your NHS number"})
    elif not (nhs.isdigit() and len(nhs) == 10):
        errors.append({"field": "nhs", "text": "Your NHS number is 10 digits, like 943 476 5919"})
    elif not is_valid_nhs_number(nhs):
        errors.append({"field": "nhs", "text": "This is not a valid NHS number: check the digits"})
    if not errors and not password:
        errors.append({"field": "password", "text": "Enter your password"})
    if errors:
        return _signin_page(request, 400, errors, form.get("nhs", ""), next_path)
    services = access_services(request.app)
    attempt = await check_password(request, services, nhs, password)
    if attempt.account is None or attempt.account.role is not Role.PATIENT:
        if attempt.account is None:
            await record_signin(request, failed_event(attempt))
        text = SIGNIN_FAILED.replace("username", "NHS number")
        return _signin_page(request, 400, [{"field": "nhs", "text": text}], nhs, next_path)
    return await open_session(request, services, attempt.account, next_path)


# -- home and my record -------------------------------------------------------------------
@router.get("")
@router.get("/")
def home(request: Request) -> Response:
    me = _patient(request)
    if isinstance(me, Response):
        return me
    return _render(request, "home.html", title="Your health and care record")


@router.get("/record")
def my_record(request: Request) -> Response:
    me = _patient(request)
    if isinstance(me, Response):
        return me
    found, namer = _my_record(request, me, "record")
    lines = items(found.resources, namer)
    counts = {slug: 0 for slug in PARTS}
    for item in lines:
        counts[item.part] += 1
    sources: dict[str, int] = {}
    for item in lines:
        sources[item.line.source] = sources.get(item.line.source, 0) + 1
    return _render(
        request,
        "record.html",
        title="Your record",
        patient=_demographics(found.patient),
        counts=counts,
        sources=sorted(sources.items(), key=lambda kv: -kv[1]),
        latest=results(found.of_type("Observation"), namer)[:5],
        truncated=found.truncated,
    )


@router.get("/record/{part}")
def record_part(request: Request, part: str) -> Response:
    me = _patient(request)
    if isinstance(me, Response):
        return me
    if part not in PARTS:
        return _render(
            request, "message.html", 404, title="Page not found",
            message="There is no such part of your record.", link=("/patient/record", "Go to your record"),
        )  # fmt: skip
    found, namer = _my_record(request, me, part)
    shown = [i.line for i in items(found.resources, namer) if i.part == part]
    context: dict = {"current": [], "past": [], "shown": shown, "results": [], "charts": []}
    if part == "medicines":
        context["current"] = [e for e in shown if e.active]
        context["past"] = [e for e in shown if not e.active]
    if part == "results":
        observations = found.of_type("Observation")
        context["results"] = results(observations, namer)
        context["charts"] = [
            (s, svg(s, f"chart-{i}")) for i, s in enumerate(series_of(observations, namer))
        ]
        context["shown"] = [e for e in shown if e.ref.startswith("DiagnosticReport/")]
    heading, about, _ = PARTS[part]
    return _render(
        request,
        "part.html",
        title=heading,
        part=part,
        heading=heading,
        about=about,
        truncated=found.truncated,
        **context,
    )


# -- download -----------------------------------------------------------------------------
@router.get("/download")
def download_page(request: Request) -> Response:
    me = _patient(request)
    if isinstance(me, Response):
        return me
    return _render(request, "download.html", title="Download your record")


def _exported(request: Request, me: Principal, kind: str) -> tuple[PersonRecord, object]:
    store = request.app.state.store
    query = f"Patient/$everything?patient-download-{kind}"
    with guard(request, "export", query, Purpose.PATRQT) as g:
        found = load_record(store, g.ctx, me.patient_id)
        namer = _names(request, g.ctx)
        g.done(found.stored)
    return found, namer


def _attachment(name: str) -> dict[str, str]:
    return {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}


@router.get("/download/record.json")
def download_bundle(request: Request) -> Response:
    me = _patient(request)
    if isinstance(me, Response):
        return me
    found, _ = _exported(request, me, "json")
    body = download.bundle(found.stored, request.app.state.settings.base_url)
    return Response(
        body,
        media_type="application/fhir+json",
        headers=_attachment(download.filename("json")),
    )


@router.get("/download/record.html")
def download_document(request: Request) -> Response:
    me = _patient(request)
    if isinstance(me, Response):
        return me
    found, namer = _exported(request, me, "html")
    lines = items(found.resources, namer)
    by_part = {slug: [i.line for i in lines if i.part == slug] for slug in PARTS}
    body = ENV.get_template("document.html").render(
        title="Your health and care record",
        patient=_demographics(found.patient),
        parts=PARTS,
        by_part=by_part,
        results=results(found.of_type("Observation"), namer),
        made=dt.datetime.now(dt.UTC).strftime("%d %B %Y at %H:%M UTC"),
        truncated=found.truncated,
    )
    headers = _attachment(download.filename("html"))
    headers["Content-Security-Policy"] = DOCUMENT_CSP
    return HTMLResponse(body, headers=headers)


# -- who has looked at my record ----------------------------------------------------------
def _log_own_look(
    request: Request, me: Principal, patients: list[str], outcome="success", why=None
):
    """Reading log entries is itself an access (as on /audit): recorded first."""
    record(
        request,
        AccessEvent(
            action="audit-read",
            outcome=outcome,
            username=me.username,
            principal=me,
            purpose=Purpose.PATRQT.value,
            patients=tuple(patients),
            query="audit/patient-app",
            reason=why,
        ),
    )


@router.get("/accesses")
def accesses(request: Request) -> Response:
    me = _patient(request)
    if isinstance(me, Response):
        return me
    try:
        page_no = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page_no = 1
    mine = _my_ids(request, me)
    _log_own_look(request, me, mine)
    listing: AccessList = accesses_by_others(
        request.app.state.trail.log, mine, (page_no - 1) * ACCESS_PAGE, ACCESS_PAGE
    )
    pages = max(1, -(-listing.total // ACCESS_PAGE))
    return _render(
        request,
        "accesses.html",
        title="Who has looked at your record",
        listing=listing,
        page_no=page_no,
        pages=pages,
    )


@router.get("/accesses/{index}")
def access_detail(request: Request, index: str) -> Response:
    me = _patient(request)
    if isinstance(me, Response):
        return me
    not_found = _render(
        request, "message.html", 404, title="This is not in your list",
        message="There is no entry with that number about your record. Go back to the list of "
        "who has looked at your record.", link=("/patient/accesses", "Who has looked at your record"),
    )  # fmt: skip
    if not (index.isascii() and index.isdigit() and len(index) <= 18):
        return not_found
    log = request.app.state.trail.log
    try:
        entry = log.leaf(int(index))
    except LogError:
        return not_found
    mine = _my_ids(request, me)
    about = patients_in_entry(entry)
    if not set(about) & set(mine):
        # Someone else's entry: refused, and the refusal is logged about them, as on /audit.
        _log_own_look(request, me, about, "refused", "the entry is about someone else")
        return not_found
    _log_own_look(request, me, [p for p in about if p in mine])
    checked = verify_entry(log, int(index), entry)
    return _render(
        request,
        "access.html",
        title="Check an entry",
        access=access_of(int(index), entry),
        check=checked,
        signed_at=dt.datetime.fromtimestamp(checked.signed_at, dt.UTC).strftime(
            "%d %B %Y at %H:%M:%S UTC"
        ),
    )


# -- my data choices ----------------------------------------------------------------------
def _current_choices(request: Request, me: Principal) -> set[str]:
    with guard(request, "read", "opt-out", Purpose.PATRQT) as g:
        purposes = choices_of(request.app.state.store.engine, me.patient_id)
        g.done(patients=[me.patient_id])
    return purposes


@router.get("/choices")
def choices(request: Request) -> Response:
    me = _patient(request)
    if isinstance(me, Response):
        return me
    purposes = _current_choices(request, me)
    return _render(
        request,
        "choices.html",
        title="Your data choices",
        research_out=Purpose.HRESCH.value in purposes,
        planning_out=Purpose.HOPERAT.value in purposes,
        saved=request.query_params.get("saved") == "1",
    )


@router.post("/choices")
async def choices_submit(request: Request) -> Response:
    me = _patient(request)
    if isinstance(me, Response):
        return me
    try:
        form = await read_form(request)
    except FormError as exc:
        return _render(request, "message.html", 400, title="The form was not accepted",
                       message=str(exc), link=("/patient/choices", "Your data choices"))  # fmt: skip
    if not csrf_ok(request.cookies.get(SESSION_COOKIE), form.get("csrf")):
        return _render(
            request, "message.html", 400, title="The page had expired",
            message="Go back, reload the page and make your choice again.",
            link=("/patient/choices", "Your data choices"),
        )  # fmt: skip
    research, planning = form.get("research"), form.get("planning")
    errors = [
        {"field": name, "text": f"Choose whether your data may be used for {name}"}
        for name, value in (("research", research), ("planning", planning))
        if value not in ("allow", "opt-out")
    ]
    if errors:
        return _render(
            request,
            "choices.html",
            400,
            title="Your data choices",
            errors=errors,
            research_out=research == "opt-out",
            planning_out=planning == "opt-out",
            saved=False,
        )
    await run_in_threadpool(
        set_opt_out, request, research=research == "opt-out", planning=planning == "opt-out"
    )
    return RedirectResponse("/patient/choices?saved=1", status_code=303)


@router.get("/data-use")
def data_use(request: Request) -> Response:
    me = _patient(request)
    if isinstance(me, Response):
        return me
    with guard(request, "read", "sde-data-use", Purpose.PATRQT) as g:
        ids = _my_ids(request, me)
        projects = projects_including(request.app.state.store.engine, ids)
        research_out = Purpose.HRESCH.value in choices_of(
            request.app.state.store.engine, me.patient_id
        )
        g.done(patients=[me.patient_id])
    for p in projects:
        p["latest_text"] = _date_text(p["latest_extract"])
    return _render(
        request, "data_use.html", title="How your data is used", projects=projects,
        research_out=research_out,
    )  # fmt: skip


def _date_text(epoch: float) -> str:
    day = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return f"{day.day} {day:%B %Y}"
