"""The pages of the shared care record at ``/care``.

Each page that shows a person's data does it in one ``guard`` block: the gate's access context
for the purpose that applies (direct care, or break-glass when the user opened one for this
person), the reads through the store with that context, and the entry in the transparency log
before the page is sent. A refusal is logged too, and shown with the way out (break-glass).
Handlers are plain ``def`` (database work runs in the thread pool) except those reading forms.
"""

from __future__ import annotations

import datetime as dt
import time
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from carelight.access.breakglass import has_active_grant
from carelight.access.directory import display_name, nhs_number_of
from carelight.access.gate_api import break_glass
from carelight.access.http import gate_of, guard, principal_of, record
from carelight.access.principal import Principal, Purpose, Role
from carelight.access.routes import FormError, read_form
from carelight.access.sessions import SESSION_COOKIE, csrf_ok
from carelight.apps.care import find, forms
from carelight.apps.care.charts import MEASURES, series_of, svg
from carelight.apps.care.present import CATEGORIES, entry, human_date, newest_first, once_each
from carelight.apps.care.record import PersonRecord, load_record
from carelight.apps.web import page, session_csrf, templates
from carelight.audit.events import AccessEvent
from carelight.fhir import bundles
from carelight.fhir.errors import FhirError
from carelight.fhir.search.execute import run_search
from carelight.fhir.search.query import parse_search
from carelight.fhir.store import Store, StoredResource

router = APIRouter(prefix="/care", include_in_schema=False)
ENV = templates("carelight.apps.care")
RECORDERS = frozenset({Role.SOCIAL_WORKER, Role.CARE_HOME})  # social care at the point of care
QUESTIONNAIRE_ID = "X99LB-q-care-act-needs-assessment"  # the council's needs assessment form
SOURCE_NAMES_TTL = 300.0
TIMELINE_PAGE = 100


class SignIn(Exception):
    """Nobody (or nobody who may use this app) is signed in."""


def _store(request: Request) -> Store:
    return request.app.state.store


def _me(request: Request) -> Principal:
    principal = principal_of(request)
    if principal is None or request.state.auth != "session":
        raise SignIn()
    return principal


def _signin(request: Request) -> RedirectResponse:
    return RedirectResponse("/signin?" + urlencode({"next": request.url.path}), status_code=303)


def _render(request: Request, template: str, status: int = 200, **context) -> Response:
    principal = principal_of(request)
    return page(
        ENV,
        template,
        status,
        me=principal,
        csrf=session_csrf(request),
        may_record=principal is not None and principal.role in RECORDERS,
        categories=CATEGORIES,
        **context,
    )


def _professional(request: Request) -> Principal | Response:
    """The signed-in professional, or the page to answer with instead (sign-in, not for you)."""
    try:
        principal = _me(request)
    except SignIn:
        return _signin(request)
    if not principal.is_professional:
        return _not_for_role(request, principal)
    return principal


def _not_for_role(request: Request, principal: Principal) -> Response:
    return _render(
        request,
        "message.html",
        403,
        title="The shared care record is for health and care professionals",
        message=f"Your account ({principal.role}) cannot open people's records here. "
        "Researchers and analysts use the secure data environment; patients see their own "
        "record in the patient app.",
    )


def _source_names(request: Request, ctx) -> dict[str, str]:
    """meta.source URI -> the name of the organisation whose system it is (a directory read,
    logged like any other, cached for a few minutes)."""
    cached = getattr(request.app.state, "care_source_names", None)
    if cached and time.monotonic() - cached[0] < SOURCE_NAMES_TTL:
        return cached[1]
    names: dict[str, str] = {}
    with guard(request, "search", "Organization?_count", purpose=str(ctx.purpose)) as g:
        result = run_search(
            _store(request), parse_search("Organization", [("_count", "1000")]), access=g.ctx
        )
        g.done(result.matches)
    for stored in result.matches:
        org = orjson.loads(stored.content)
        source = (org.get("meta") or {}).get("source")
        codes = [i.get("value") for i in org.get("identifier") or () if i.get("value")]
        if source and org.get("name") and any(f"/{c}/" in source for c in codes):
            names[source] = org["name"]
    request.app.state.care_source_names = (time.monotonic(), names)
    return names


def _namer(names: dict[str, str]):
    def name(source: str | None) -> str:
        if not source:
            return "Unknown system"
        return names.get(source, source)

    return name


def _purpose_for(request: Request, principal: Principal, patient_id: str) -> Purpose | None:
    """Direct care when the user's organisation cares for the person; break-glass when the
    user opened it for them; otherwise None (refused)."""
    gate = gate_of(request)
    try:
        gate.require_patients(gate.context(principal, Purpose.TREAT), [patient_id])
        return Purpose.TREAT
    except FhirError:
        pass
    if has_active_grant(_store(request).engine, principal.username):
        try:
            gate.require_patients(gate.context(principal, Purpose.ETREAT), [patient_id])
            return Purpose.ETREAT
        except FhirError:
            return None
    return None


# -- home and finding a person ------------------------------------------------------------
@router.get("")
@router.get("/")
def home(request: Request) -> Response:
    principal = _professional(request)
    if isinstance(principal, Response):
        return principal
    return _render(request, "home.html", title="Find a person", values={}, errors=[])


@router.get("/find")
def find_person(request: Request) -> Response:
    principal = _professional(request)
    if isinstance(principal, Response):
        return principal
    q = request.query_params
    values = {k: q.get(k, "").strip() for k in ("nhs", "name", "day", "month", "year", "postcode")}
    store = _store(request)
    try:
        if values["nhs"]:
            nhs = find.clean_nhs_number(values["nhs"])
            by = "NHS number"
            with guard(request, "search", "Patient?identifier", purpose=Purpose.TREAT) as g:
                matches, found = find.by_nhs_number(store, g.ctx, nhs)
                g.done(found)
        else:
            if not values["name"]:
                raise find.FindError("name", "Enter the person's name, or search by NHS number")
            birth = find.parse_birth_date(values["day"], values["month"], values["year"])
            if not values["postcode"]:
                raise find.FindError("postcode", "Enter the person's postcode")
            by = "name, date of birth and postcode"
            with guard(request, "search", "Patient?birthdate", purpose=Purpose.TREAT) as g:
                matches, found = find.by_demographics(
                    store, g.ctx, values["name"], birth, values["postcode"]
                )
                g.done([s for s in found if any(m.patient["id"] == s.res_id for m in matches)])
    except find.FindError as exc:
        return _render(
            request,
            "home.html",
            400,
            title="Find a person",
            values=values,
            errors=[{"field": exc.field, "text": exc.message}],
        )
    return _render(request, "found.html", title="People found", matches=matches, by=by)


# -- a person's record --------------------------------------------------------------------
def _open(request: Request, patient_id: str, what: str):
    """(principal, purpose, record) or a Response (sign-in, refusal)."""
    principal = _professional(request)
    if isinstance(principal, Response):
        return principal
    purpose = _purpose_for(request, principal, patient_id)
    store = _store(request)
    if purpose is None:
        return _refused(request, patient_id)
    with guard(request, "everything", f"Patient/$everything?care-{what}", purpose=purpose) as g:
        g.require_record(patient_id)
        record = load_record(store, g.ctx, patient_id)
        names = _source_names(request, g.ctx)
        g.done(record.stored)
    return principal, purpose, record, names


def _refused(request: Request, patient_id: str, errors: list | None = None, reason: str = ""):
    store = _store(request)
    with guard(request, "read", "Patient", purpose=Purpose.TREAT) as g:
        stored = store.read("Patient", patient_id, access=g.ctx)  # demographics: tracing
        g.done([stored])
    # The refusal names the person, so they see that someone was turned away.
    principal = g.ctx.principal
    record(
        request,
        AccessEvent(
            action="everything",
            outcome="refused",
            username=principal.username,
            principal=principal,
            purpose=Purpose.TREAT.value,
            patients=(patient_id,),
            query="Patient/$everything?care",
            reason="no care relationship",
        ),
    )
    patient = stored.json()
    return _render(
        request,
        "refused.html",
        400 if errors else 403,
        title="You do not have a care relationship with this person",
        patient=_demographics(patient),
        patient_id=patient_id,
        errors=errors or [],
        reason=reason,
    )


def _demographics(patient: dict) -> dict:
    address = next(iter(patient.get("address") or ()), {})
    phone = next(
        (t.get("value") for t in patient.get("telecom") or () if t.get("system") == "phone"), ""
    )
    gp = next(iter(patient.get("generalPractitioner") or ()), {})
    return {
        "id": patient["id"],
        "name": display_name(patient),
        "nhs": _spaced(nhs_number_of(patient) or ""),
        "birth": human_date(patient.get("birthDate")),
        "age": _age(patient.get("birthDate")),
        "gender": (patient.get("gender") or "").capitalize(),
        "address": ", ".join(
            [*address.get("line", ()), address.get("city", ""), address.get("postalCode", "")]
        ).strip(", "),
        "phone": phone,
        "gp": gp.get("display", ""),
        "deceased": bool(patient.get("deceasedBoolean") or patient.get("deceasedDateTime")),
    }


def _spaced(nhs: str) -> str:
    return f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}" if len(nhs) == 10 else nhs


def _age(birth: str | None) -> str:
    try:
        born = dt.date.fromisoformat(birth or "")
    except ValueError:
        return ""
    today = dt.date.today()
    return str(today.year - born.year - ((today.month, today.day) < (born.month, born.day)))


def _entries(record: PersonRecord, names: dict[str, str]):
    namer = _namer(names)
    found = [entry(r, namer) for r in record.resources]
    return [e for e in found if e is not None], namer


def _context(record: PersonRecord, purpose: Purpose, names: dict[str, str]) -> dict:
    entries, namer = _entries(record, names)
    patient = _demographics(record.patient)
    gp_record = next(
        (
            p
            for p in record.patients
            if p.get("generalPractitioner")
            and (p.get("managingOrganization") or {}).get("reference")
            in {g.get("reference") for g in p["generalPractitioner"]}
        ),
        record.patient,
    )
    patient["gp"] = _demographics(gp_record)["gp"] or patient["gp"]
    sources: dict[str, int] = {}
    for e in entries:
        sources[e.source] = sources.get(e.source, 0) + 1
    return {
        "patient": patient,
        "patient_id": record.patient["id"],
        "break_glass": purpose is Purpose.ETREAT,
        "entries": entries,
        "sources": sorted(sources.items(), key=lambda kv: -kv[1]),
        "namer": namer,
        "truncated": record.truncated,
    }


def _by(
    entries, category: str, *, active: bool | None = None, limit: int | None = None, once=False
):
    chosen = [
        e for e in entries if e.category == category and (active is None or e.active == active)
    ]
    chosen = once_each(chosen) if once else newest_first(chosen)
    return chosen[:limit] if limit else chosen


@router.get("/patient/{patient_id}")
def summary(request: Request, patient_id: str) -> Response:
    opened = _open(request, patient_id, "summary")
    if isinstance(opened, Response):
        return opened
    _, purpose, record, names = opened
    ctx = _context(record, purpose, names)
    entries = ctx["entries"]
    observations = record.of_type("Observation")
    charts = [
        (s, svg(s, f"chart-{i}"))
        for i, s in enumerate(series_of(observations, ctx["namer"]))
        if s.name in set(MEASURES.values())
    ]
    allergies = _by(entries, "allergies", active=True, once=True)
    flags = _by(entries, "alerts", active=True)
    alerts = [e for e in allergies if "criticality high" in e.detail]
    # GP registrations are episodes of care too; they show as the registered GP.
    care = [e for e in _by(entries, "care", active=True) if "registration" not in e.title.lower()]
    contacts = _by(entries, "contacts", active=True)
    return _render(
        request,
        "summary.html",
        title=f"{ctx['patient']['name']}: summary",
        active="summary",
        alerts=alerts,
        flags=flags,
        allergies=allergies,
        problems=_by(entries, "problems", active=True, limit=12, once=True),
        medicines=_by(entries, "medicines", active=True, limit=15, once=True),
        results=_by([e for e in entries if e.ref.startswith("Observation/")], "results", limit=10),
        charts=charts,
        encounters=_by(entries, "encounters", limit=8),
        care_plans=_by(entries, "care-plans", active=True, limit=10),
        care=care,
        contacts=contacts,
        assessments=_by(entries, "assessments", limit=3),
        notes=_by(entries, "notes", limit=5),
        recorded=request.query_params.get("recorded", ""),
        **ctx,
    )


@router.get("/patient/{patient_id}/timeline")
def timeline(request: Request, patient_id: str) -> Response:
    opened = _open(request, patient_id, "timeline")
    if isinstance(opened, Response):
        return opened
    _, purpose, record, names = opened
    ctx = _context(record, purpose, names)
    q = request.query_params
    chosen_source, chosen_category = q.get("source", ""), q.get("category", "")
    shown = [
        e
        for e in ctx["entries"]
        if (not chosen_source or e.source == chosen_source)
        and (not chosen_category or e.category == chosen_category)
    ]
    shown = newest_first(shown)
    try:
        page_no = max(1, int(q.get("page", "1")))
    except ValueError:
        page_no = 1
    pages = max(1, -(-len(shown) // TIMELINE_PAGE))
    page_no = min(page_no, pages)
    return _render(
        request,
        "timeline.html",
        title=f"{ctx['patient']['name']}: timeline",
        active="timeline",
        shown=shown[(page_no - 1) * TIMELINE_PAGE : page_no * TIMELINE_PAGE],
        count=len(shown),
        page_no=page_no,
        pages=pages,
        chosen_source=chosen_source,
        chosen_category=chosen_category,
        query=lambda n: urlencode(
            {
                k: v
                for k, v in (("source", chosen_source), ("category", chosen_category), ("page", n))
                if v
            }
        ),
        **ctx,
    )


@router.get("/patient/{patient_id}/{category}")
def category_page(request: Request, patient_id: str, category: str) -> Response:
    if category not in CATEGORIES:
        return _render(
            request, "message.html", 404, title="Page not found",
            message="There is no such part of the record. Go back to the summary.",
        )  # fmt: skip
    opened = _open(request, patient_id, category)
    if isinstance(opened, Response):
        return opened
    _, purpose, record, names = opened
    ctx = _context(record, purpose, names)
    charts = []
    if category == "results":
        charts = [
            (s, svg(s, f"chart-{i}"))
            for i, s in enumerate(series_of(record.of_type("Observation"), ctx["namer"]))
        ]
    return _render(
        request,
        "category.html",
        title=f"{ctx['patient']['name']}: {CATEGORIES[category][0].lower()}",
        active=category,
        heading=CATEGORIES[category][0],
        shown=_by(ctx["entries"], category),
        charts=charts,
        **ctx,
    )


# -- break-glass ------------------------------------------------------------------------------
@router.post("/patient/{patient_id}/break-glass")
async def open_break_glass(request: Request, patient_id: str) -> Response:
    principal = _professional(request)
    if isinstance(principal, Response):
        return principal
    form = await _form(request)
    if isinstance(form, Response):
        return form
    reason = form.get("reason", "")
    try:
        await run_in_threadpool(break_glass, request, principal, patient_id, reason)
    except FhirError as exc:
        if exc.status != 400:
            raise
        return await run_in_threadpool(
            _refused,
            request,
            patient_id,
            [
                {
                    "field": "reason",
                    "text": "Say why you need this record, in at least 10 characters",
                }
            ],
            reason,
        )
    return RedirectResponse(f"/care/patient/{patient_id}", status_code=303)


async def _form(request: Request) -> dict[str, str] | Response:
    try:
        form = await read_form(request)
    except FormError as exc:
        return _render(
            request, "message.html", 400, title="The form was not accepted", message=str(exc)
        )
    if not csrf_ok(request.cookies.get(SESSION_COOKIE), form.get("csrf")):
        return _render(
            request, "message.html", 400, title="The form had expired",
            message="The page you sent it from had expired. Go back, reload the page and try again.",
        )  # fmt: skip
    return form


# -- social care at the point of care ------------------------------------------------------
def _recorder(request: Request, patient_id: str):
    """(principal, purpose) of a social care recorder who may see this person, or a Response."""
    try:
        principal = _me(request)
    except SignIn:
        return _signin(request)
    if principal.role not in RECORDERS:
        return _render(
            request, "message.html", 403, title="Only social care staff record this here",
            message="Needs assessments, care and support plans and visit notes are recorded by "
            "social workers and care home staff. Your own system records your care.",
        )  # fmt: skip
    purpose = _purpose_for(request, principal, patient_id)
    if purpose is None:
        return _refused(request, patient_id)
    return principal, purpose


def _questionnaire(request: Request, purpose: Purpose) -> dict:
    with guard(request, "read", "Questionnaire", purpose=purpose) as g:
        stored = _store(request).read("Questionnaire", QUESTIONNAIRE_ID, access=g.ctx)
        g.done([stored])
    return stored.json()


def _patient_banner(request: Request, patient_id: str, purpose: Purpose) -> dict:
    with guard(request, "read", "Patient", purpose=purpose) as g:
        stored = _store(request).read("Patient", patient_id, access=g.ctx)
        g.done([stored])
    return _demographics(stored.json())


FORM_PAGES = {
    "assessment": ("assessment.html", "Record a needs assessment"),
    "care-plan": ("care_plan.html", "Record a care and support plan"),
    "visit-note": ("visit_note.html", "Record a visit note"),
}


def _form_page(request, patient_id, kind, purpose, status=200, errors=None, values=None):
    template, title = FORM_PAGES[kind]
    extra = {}
    if kind == "assessment":
        extra["sections"] = forms.questions(_questionnaire(request, purpose))
        extra["q_title"] = "Adult social care needs assessment"
    return _render(
        request,
        template,
        status,
        title=title,
        patient=_patient_banner(request, patient_id, purpose),
        patient_id=patient_id,
        break_glass=purpose is Purpose.ETREAT,
        errors=errors.summary() if errors else [],
        field_errors=errors.fields if errors else {},
        values=values or {},
        **extra,
    )


@router.get("/patient/{patient_id}/record/{kind}")
def record_form(request: Request, patient_id: str, kind: str) -> Response:
    if kind not in FORM_PAGES:
        return _render(
            request, "message.html", 404, title="Page not found", message="There is no such form."
        )
    who = _recorder(request, patient_id)
    if isinstance(who, Response):
        return who
    return _form_page(request, patient_id, kind, who[1])


@router.post("/patient/{patient_id}/record/{kind}")
async def record_submit(request: Request, patient_id: str, kind: str) -> Response:
    if kind not in FORM_PAGES:
        return _render(
            request, "message.html", 404, title="Page not found", message="There is no such form."
        )
    form = await _form(request)
    if isinstance(form, Response):
        return form
    return await run_in_threadpool(_save, request, patient_id, kind, form)


def _save(request: Request, patient_id: str, kind: str, form: dict[str, str]) -> Response:
    who = _recorder(request, patient_id)
    if isinstance(who, Response):
        return who
    principal, purpose = who
    store = _store(request)
    if kind == "assessment":
        resource, errors = forms.assessment_response(
            _questionnaire(request, purpose), form, patient_id, principal
        )
    elif kind == "care-plan":
        resource, errors = forms.care_plan(form, patient_id, principal)
    else:
        resource, errors = forms.visit_note(form, patient_id, principal)
    if errors or resource is None:
        return _form_page(request, patient_id, kind, purpose, 400, errors, form)
    try:
        if resource["resourceType"] == "Bundle":
            with guard(request, "transaction", "CarePlan", purpose=purpose) as g:
                result = bundles.process(store, resource, "", g.ctx)
                g.done(_written(result))
        else:
            with guard(request, "create", resource["resourceType"], purpose=purpose) as g:
                outcome = store.create(resource, access=g.ctx)
                g.done([outcome.stored])
    except FhirError as exc:
        if exc.status not in (400, 422):
            raise
        problems = forms.FormErrors()
        problems.add("form", f"It could not be saved: {exc.message}")
        return _form_page(request, patient_id, kind, purpose, 422, problems, form)
    return RedirectResponse(f"/care/patient/{patient_id}?recorded={kind}", status_code=303)


def _written(result: dict) -> list[StoredResource]:
    found = []
    for item in result.get("entry", []):
        location = (item.get("response") or {}).get("location") or ""
        if location.count("/") >= 1:
            res_type, res_id = location.split("/")[:2]
            found.append(StoredResource(res_type, res_id, 0, 0.0, False, None))
    return found
