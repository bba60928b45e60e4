"""Text normalisation shared by indexing and search, so both sides agree exactly."""

from __future__ import annotations

import unicodedata


def normalise(text: str) -> str:
    """Lower-case, accents removed, whitespace collapsed: "  Zoë  O'Brien" → "zoe o'brien"."""
    if text.isascii():
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())
