"""What the data layer asks of an access policy, without knowing the policy.

Every read, search, history, ``$everything``, bundle entry and write of the store takes an
optional :class:`Access`. The data layer applies its row filter *inside* the SQL of every query
(so totals, paging, ``_include``, ``_revinclude``, chains and ``_has`` never see what the caller
may not) and calls its write checks inside the write transaction, after the resource has been
validated and its index rows (compartments included) computed, before anything is written.

The policy itself (roles, purposes, relationships, labels) lives in ``carelight.access.gate``;
``None`` means the caller is trusted in-process code (the bulk loader, migrations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, FromClause

    from carelight.fhir.errors import FhirError
    from carelight.fhir.store import StoredResource


class Access(Protocol):
    #: ``meta.source`` written on resources that carry none (the writer's system)
    source: str | None

    def condition(self, r: FromClause) -> ColumnElement[bool] | None:
        """The rows of ``resource`` (or an alias of it) the caller may see; None: all."""

    def visible(self, conn: Any, pk: int) -> bool:
        """``condition`` for one resource by primary key (the hot path of every read)."""

    def may_see_deleted(self, current: StoredResource) -> bool:
        """Whether the caller may learn that this (deleted) resource was deleted."""

    def refused(self, what: str) -> FhirError:
        """The error for a resource that exists but that the caller may not see or change."""

    def before_write(
        self, content: dict, current: StoredResource | None, rows: tuple[list[tuple], ...]
    ) -> None:
        """Raise to refuse a create or update (``rows`` are the resource's index rows)."""

    def before_delete(self, current: StoredResource) -> None:
        """Raise to refuse a delete."""


def condition_of(access: Access | None, r: Any) -> Any:
    """The access row filter for ``r``, or None when there is nothing to filter."""
    return None if access is None else access.condition(r)
