"""Governance refusals: each says what was wrong and what to do; nothing has been changed."""

from __future__ import annotations


class GovernanceError(Exception):
    """A request the rules refuse. ``status`` is the HTTP status the API answers with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAllowed(GovernanceError):
    status = 403


class NotFound(GovernanceError):
    status = 404


class Conflict(GovernanceError):
    """The project is not in a state this transition starts from."""

    status = 409
