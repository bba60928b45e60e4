"""Helpers shared by the secure data environment's tests."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from carelight.sde.tables import sde_project, sde_project_event, sde_project_member


def snapshot(engine, project_id: int) -> tuple:
    """Everything stored about a project: to show a refused change changed nothing."""
    with engine.connect() as conn:
        return tuple(
            tuple(tuple(r) for r in conn.execute(select(t).where(col == project_id)).all())
            for t, col in (
                (sde_project, sde_project.c.id),
                (sde_project_member, sde_project_member.c.project_id),
                (sde_project_event, sde_project_event.c.project_id),
            )
        )


def project_fields(**overrides) -> dict:
    fields = {
        "title": "Frailty and home care after hospital discharge",
        "lay_summary": "We want to learn which kinds of help at home keep older people well "
        "after they leave hospital.",
        "purpose": "To compare readmission rates by the care package received.",
        "legal_basis": "public-task",
        "confidentiality_basis": "section-251",
        "organisation": "University of Brackenfold",
        "commercial": False,
        "tables": ["patients", "admissions", "care_packages"],
        "start_date": "2026-01-01",
        "end_date": "2030-12-31",
    }
    return fields | overrides


def sign_in_patient(web, nhs_number: str, password: str = "carelight-demo") -> None:
    """Sign in to the patient app as a browser does (the form, its CSRF token, the cookie)."""
    page = web.get("/patient/signin")
    csrf = html.unescape(re.search(r'name="csrf" value="([^"]*)"', page.text).group(1))
    form = {"csrf": csrf, "next": "/patient", "nhs": nhs_number, "password": password}
    response = web.post("/patient/signin", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text[:500]
