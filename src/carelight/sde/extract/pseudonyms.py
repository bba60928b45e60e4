"""Per-project pseudonyms: a keyed hash of the person, with a key derived for each project.

``pseudonym = HMAC-SHA256(project key, person id)``, as 32 hex digits (128 bits). The project
key is ``HKDF-SHA256(secret, salt, info = "carelight-sde-pseudonym/project/<id>")``; the secret
is 32 random bytes in ``CARELIGHT_HOME/keys/sde-pseudonym.key`` (made on first use, readable by
its owner only), which never enters a research store. So a person has one pseudonym within a
project (every extract of it) and a different, unlinkable one in every other project, and
without the secret nobody can go from a pseudonym back to a person or across projects.
See docs/decisions/0007-pseudonymisation.md.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_FILE = "sde-pseudonym.key"
SALT = b"carelight-sde-pseudonym-salt-v1"
DIGITS = 32  # hex digits kept: 128 bits, collision-free for any population


def secret_path(home: Path) -> Path:
    return home / "keys" / SECRET_FILE


def load_secret(home: Path) -> bytes:
    """The pseudonymisation secret, made (atomically, mode 0600) if there is none yet."""
    path = secret_path(home)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f"{path.name}.{os.getpid()}.part")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        try:
            os.link(part, path)  # never replaces a secret another process made first
        except FileExistsError:
            pass
        finally:
            part.unlink()
    secret = path.read_bytes()
    if len(secret) != 32:
        raise ValueError(f"{path} is not a 32-byte pseudonymisation secret.")
    return secret


def project_key(secret: bytes, project_id: int) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=SALT,
        info=f"carelight-sde-pseudonym/project/{project_id}".encode(),
    ).derive(secret)


class Pseudonymiser:
    """Turns a person id into the project's pseudonym (cached: a person has many rows)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self.pseudonym = lru_cache(maxsize=65536)(self._pseudonym)

    def _pseudonym(self, person: str) -> str:
        return hmac.new(self._key, person.encode(), hashlib.sha256).hexdigest()[:DIGITS]

    @classmethod
    def for_project(cls, home: Path, project_id: int) -> Pseudonymiser:
        return cls(project_key(load_secret(home), project_id))
