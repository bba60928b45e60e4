"""Helpers for the patient app's in-process tests: signing in as a browser does."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

PASSWORD = "carelight-demo"


def csrf_of(page: str) -> str:
    return html.unescape(re.search(r'name="csrf" value="([^"]*)"', page).group(1))


def sign_in_patient(web: TestClient, nhs_number: str) -> None:
    page = web.get("/patient/signin")
    form = {"csrf": csrf_of(page.text), "next": "/patient", "nhs": nhs_number, "password": PASSWORD}
    response = web.post("/patient/signin", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text[:2000]
    assert response.headers["location"] == "/patient"


def sign_in_professional(web: TestClient, username: str) -> None:
    """A professional through the shared sign-in page, as the care app's tests do."""
    page = web.get("/signin", params={"next": "/care"})
    form = {"csrf": csrf_of(page.text), "next": "/care", "username": username, "password": PASSWORD}
    assert web.post("/signin", data=form, follow_redirects=False).status_code == 303
