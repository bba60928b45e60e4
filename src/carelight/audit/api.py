"""The transparency log over HTTP (pinned in ARCHITECTURE.md): /audit/…"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
