"""Helpers for the care app's in-process tests: signing in as a browser does."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

PASSWORD = "carelight-demo"


def csrf_of(page: str) -> str:
    return html.unescape(re.search(r'name="csrf" value="([^"]*)"', page).group(1))


def sign_in(web: TestClient, username: str) -> None:
    page = web.get("/signin", params={"next": "/care"})
    form = {"csrf": csrf_of(page.text), "next": "/care", "username": username, "password": PASSWORD}
    assert web.post("/signin", data=form, follow_redirects=False).status_code == 303
