"""The public register at ``/register``: every research project in the secure data
environment past draft, its status, decisions and extracts, as HTML (NHS.UK frontend) and JSON.
No sign-in. Built from ``carelight.sde.register``, one entry per project, so the page and the
JSON say the same."""

from carelight.apps.register.routes import router

__all__ = ["router"]
