"""Sign-in, OAuth2 token endpoint and SMART configuration."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
