"""What every web app shares: the page layout and templates, the NHS.UK frontend's assets,
HTML responses with a strict Content-Security-Policy, and the signed-in session's CSRF token.

The NHS.UK frontend (npm ``nhsuk-frontend``) is installed by ``make`` into ``node_modules``;
``CARELIGHT_WEB_ASSETS`` may point elsewhere (the folder holding ``nhsuk.min.css``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

from carelight.access.sessions import SESSION_COOKIE, csrf_token

STATIC_PREFIX = "/static"
_REPO = Path(__file__).resolve().parents[3]


def frontend_dir() -> Path:
    """Where the NHS.UK frontend's compiled CSS and JavaScript are."""
    configured = os.environ.get("CARELIGHT_WEB_ASSETS")
    if configured:
        return Path(configured)
    return _REPO / "node_modules" / "nhsuk-frontend" / "dist"


def templates(*packages: str) -> Environment:
    """A Jinja2 environment over these packages' ``templates`` folders and the shared layout."""
    env = Environment(
        loader=ChoiceLoader([PackageLoader(p, "templates") for p in (*packages, "carelight.apps")]),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    # Styles and scripts only from this site; inline SVG charts need no style attributes.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def page(env: Environment, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("errors", [])
    context.setdefault("fe", {e["field"]: e["text"] for e in context["errors"]})
    body = env.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers=dict(SECURITY_HEADERS))


def session_csrf(request: Request) -> str:
    """The CSRF token for forms posted within the signed-in session ('' without one)."""
    session = request.cookies.get(SESSION_COOKIE)
    return csrf_token(session) if session else ""


def mount_static(app: FastAPI) -> None:
    """The NHS.UK frontend at ``/static/nhsuk`` and the apps' own assets at ``/static/apps``."""
    assets = frontend_dir()
    app.mount(
        f"{STATIC_PREFIX}/nhsuk",
        StaticFiles(directory=assets, check_dir=False),
        name="nhsuk-frontend",
    )
    app.mount(
        f"{STATIC_PREFIX}/apps",
        StaticFiles(directory=Path(__file__).parent / "static"),
        name="apps-static",
    )
