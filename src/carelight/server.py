"""The ASGI application: the FHIR API at /fhir (errors as OperationOutcome), the web apps."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from carelight import __version__
from carelight.access.authn import PrincipalMiddleware
from carelight.access.gate import Gate
from carelight.access.gate_api import router as gate_router
from carelight.access.routes import router as access_router
from carelight.apps.care import router as care_router
from carelight.apps.patient import router as patient_router
from carelight.apps.register import router as register_router
from carelight.apps.sde import public_router as sde_public_router
from carelight.apps.sde import router as sde_web_router
from carelight.apps.web import mount_static
from carelight.audit.api import router as audit_router
from carelight.audit.trail import log_engine, open_trail
from carelight.config import Settings
from carelight.fhir.api import fhir_response, outcome_response, router
from carelight.fhir.errors import FhirError, error
from carelight.fhir.export.api import router as export_router
from carelight.fhir.store import Store, open_store
from carelight.identity.mpi.api import router as mpi_router
from carelight.identity.mpi.person import router as person_router
from carelight.sde.api import router as sde_router
from carelight.sde.review.api import router as sde_jobs_router

log = logging.getLogger("carelight")

HTTP_CODES = {404: "not-found", 405: "not-supported", 406: "not-supported", 415: "not-supported"}


def create_app(store: Store | None = None, settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    if store is None:
        settings.ensure_home()
        store = open_store(settings.database_url, settings.base_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        trail = getattr(app.state, "trail", None)
        if trail is not None:
            trail.close()  # the log's writer connection

    app = FastAPI(
        title="Carelight", version=__version__, docs_url="/docs", redoc_url=None, lifespan=lifespan
    )
    app.state.store = store
    app.state.settings = settings
    # The one gate and the transparency log it writes to (audit first, fail closed).
    app.state.gate = Gate(store)
    app.state.trail = open_trail(log_engine(settings, store.engine), settings)
    store.mpi.trail = app.state.trail  # linkage decisions on every Patient write are logged
    app.add_middleware(PrincipalMiddleware)
    app.include_router(export_router, prefix="/fhir")  # first: /fhir/{type} would take /$export
    # Before the FHIR router, whose /fhir/{type}/{id} would take /fhir/.well-known/…
    app.include_router(access_router)
    app.include_router(person_router, prefix="/fhir")  # the index's persons, read-only
    app.include_router(router, prefix="/fhir")
    app.include_router(gate_router)
    app.include_router(audit_router, prefix="/audit")
    app.include_router(mpi_router)
    app.include_router(care_router)  # the shared care record, /care
    app.include_router(patient_router)  # the patient app, /patient
    app.include_router(sde_public_router)  # the register's jobs and releases (issue 9)
    app.include_router(register_router)  # the public register of research projects, /register
    app.include_router(sde_router)  # the secure data environment's lifecycle API, /sde/api
    app.include_router(sde_jobs_router)  # jobs, output checking and releases, /sde/api
    app.include_router(sde_web_router)  # the secure data environment's pages, /sde
    mount_static(app)

    @app.exception_handler(FhirError)
    async def _fhir_error(_request: Request, exc: FhirError):
        return outcome_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            detail = f"There is nothing at {request.url.path}."
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}."
        else:
            detail = str(exc.detail)
        err = error(exc.status_code, HTTP_CODES.get(exc.status_code, "processing"), detail)
        err.headers.update(exc.headers or {})
        return outcome_response(err)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError):
        return outcome_response(error(400, "invalid", f"The request is malformed: {exc.errors()}"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # Never log bodies or parameters: they may hold patient data.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        oo = {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "fatal",
                    "code": "exception",
                    "diagnostics": "An internal error occurred; it has been logged.",
                }
            ],
        }
        return fhir_response(orjson.dumps(oo), 500)

    @app.get("/", include_in_schema=False)
    def home():
        return {
            "name": "Carelight",
            "version": __version__,
            "fhir": "/fhir",
            "metadata": "/fhir/metadata",
        }

    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (used by ``carelight serve`` with several workers)."""
    return create_app()
