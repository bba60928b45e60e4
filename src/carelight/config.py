"""Configuration from the environment.

``CARELIGHT_HOME`` is the data folder (default ``./.carelight``); ``CARELIGHT_DATABASE_URL``
selects the operational store (default: a SQLite file in ``CARELIGHT_HOME``; use
``postgresql+psycopg://user@host/db`` for PostgreSQL).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    base_url: str  # the public base of the FHIR API, used in fullUrl and paging links

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("CARELIGHT_HOME", ".carelight")).resolve()
        url = os.environ.get("CARELIGHT_DATABASE_URL") or f"sqlite:///{home / 'carelight.db'}"
        base = os.environ.get("CARELIGHT_BASE_URL", "http://127.0.0.1:8000/fhir").rstrip("/")
        return cls(home=home, database_url=url, base_url=base)

    def ensure_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
