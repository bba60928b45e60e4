"""Run a parsed search against the store: the page of matches, the total, and includes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from sqlalchemy import Connection, and_, false, func, or_, select

from carelight.fhir import schema
from carelight.fhir.resource_types import SUPPORTED
from carelight.fhir.scope import Access, condition_of
from carelight.fhir.search.query import Include, SearchQuery, parse_search
from carelight.fhir.search.sql import Compiler, param_condition

if TYPE_CHECKING:
    from carelight.fhir.store import Store, StoredResource

R = schema.resource
REF = schema.sp_reference
MAX_INCLUDE_ROUNDS = 4  # :iterate depth; each round follows one more hop
MAX_INCLUDED = 5000


@dataclass
class SearchResult:
    matches: list[StoredResource]
    included: list[StoredResource] = field(default_factory=list)
    total: int | None = None
    has_next: bool = False


def parse_query_string(query: str) -> list[tuple[str, str]]:
    query = query.split("?", 1)[1] if "?" in query else query
    return parse_qsl(query, keep_blank_values=True)


# Which criterion drives a query: the likely most selective positive index criterion.
_SELECTIVITY = {
    "reference": 0,
    "token": 1,
    "uri": 2,
    "string": 3,
    "quantity": 4,
    "number": 5,
    "date": 6,
}


def _rank(c) -> int:
    if c.chain is not None:
        return 2
    return _SELECTIVITY.get(c.param.type, 9)


def _where(store: Store, q: SearchQuery, access: Access | None = None) -> list:
    anchors = [c for c in q.criteria if _anchors(c)]
    driver = min(anchors, key=_rank) if anchors else None
    type_column = R.c.res_type
    if driver is not None and store.dialect == "sqlite":
        # The driving sub-query already narrows to this type. Hide res_type from SQLite's
        # planner (`res_type || ''` cannot use an index) so it starts from that sub-query
        # instead of walking every resource of the type; PostgreSQL has statistics for this.
        type_column = R.c.res_type.concat("")
    drive = Compiler(store.base_url, access=access)
    probe = Compiler(store.base_url, probe=True, access=access)
    where = [type_column == q.resource_type, R.c.deleted == false()] + [
        (drive if c is driver else probe).condition(c, R, q.resource_type) for c in q.criteria
    ]
    if (cond := condition_of(access, R)) is not None:
        where.append(cond)  # before counting and paging: totals never count the unseen
    return where


def _anchors(c) -> bool:
    """True if the criterion is a positive ``pk IN (index sub-query)``."""
    if c.has is not None:
        return False
    if c.chain is not None:
        return True
    if c.param.name in ("_id", "_lastUpdated") or c.modifier in ("not", "missing"):
        return False
    return not any(v.startswith("ne") for v in c.values) or c.param.type in ("string", "token")


def match_ids(
    store: Store,
    conn: Connection,
    res_type: str,
    pairs: list[tuple[str, str]],
    limit: int,
    access: Access | None = None,
) -> list[str]:
    """Ids of resources matching a query (for conditional create, update and delete)."""
    q = parse_search(res_type, pairs)
    if not q.criteria:
        from carelight.fhir.errors import bad_request

        raise bad_request("A conditional request needs at least one search criterion.")
    stmt = select(R.c.res_id).where(*_where(store, q, access)).order_by(R.c.pk).limit(limit)
    return list(conn.execute(stmt).scalars())


def run_search(
    store: Store, q: SearchQuery, conn: Connection | None = None, access: Access | None = None
) -> SearchResult:
    """Run ``q``; on ``conn`` when given (a transaction that must see its own writes).

    With ``access``, matches, totals and includes hold only what the caller may see.
    """
    if conn is None:
        with store.engine.connect() as c:
            return run_search(store, q, c, access)
    from carelight.fhir.store import StoredResource

    where = _where(store, q, access)
    compiler = Compiler(store.base_url)
    order = [compiler.sort_key(p, desc, R, q.resource_type) for p, desc in q.sort]
    result = SearchResult(matches=[])
    if q.summary != "count" and q.count > 0:
        stmt = (
            select(R.c.pk, R.c.res_id, R.c.version_id, R.c.last_updated, R.c.content)
            .where(*where)
            .order_by(*order, R.c.pk)
            .limit(q.count + 1)
            .offset(q.offset)
        )
        rows = conn.execute(stmt).all()
        result.has_next = len(rows) > q.count
        result.matches = [
            StoredResource(q.resource_type, r[1], r[2], r[3], False, r[4], pk=r[0])
            for r in rows[: q.count]
        ]
    counted = q.summary == "count" or q.count == 0 or q.total == "accurate"
    if q.total == "none" and q.summary != "count":
        result.total = None
    elif counted:
        result.total = conn.execute(select(func.count()).select_from(R).where(*where)).scalar_one()
    elif not result.has_next and (result.matches or q.offset == 0):
        # The last page tells the exact total without a COUNT over the whole match set.
        result.total = q.offset + len(result.matches)
    if result.matches and (q.includes or q.revincludes):
        result.included = _includes(conn, q, result.matches, access)
    return result


def _includes(
    conn: Connection, q: SearchQuery, matches: list[StoredResource], access: Access | None
) -> list[StoredResource]:
    seen = {(m.res_type, m.res_id) for m in matches}
    frontier = list(matches)
    included: list[StoredResource] = []
    for round_no in range(MAX_INCLUDE_ROUNDS):
        found: list[StoredResource] = []
        for inc in q.includes:
            if round_no == 0 or inc.iterate:
                found += _forward(conn, inc, frontier, seen, access)
        for inc in q.revincludes:
            if round_no == 0 or inc.iterate:
                found += _reverse(conn, inc, frontier, seen, access)
        if not found:
            break
        included += found
        frontier = found
        if len(included) >= MAX_INCLUDED:
            break
    return included


def _fetch(conn: Connection, stmt, seen: set) -> list[StoredResource]:
    from carelight.fhir.store import StoredResource

    out = []
    for r in conn.execute(stmt):
        key = (r.res_type, r.res_id)
        if key in seen:
            continue
        seen.add(key)
        out.append(
            StoredResource(
                r.res_type, r.res_id, r.version_id, r.last_updated, False, r.content, pk=r.pk
            )
        )
    return out


_COLUMNS = (R.c.pk, R.c.res_type, R.c.res_id, R.c.version_id, R.c.last_updated, R.c.content)


def _forward(
    conn: Connection, inc: Include, frontier: list, seen: set, access: Access | None
) -> list[StoredResource]:
    sources = [s.pk for s in frontier if inc.param is None or s.res_type == inc.source_type]
    if not sources:
        return []
    conds = [REF.c.res_pk.in_(sources), REF.c.target_id.is_not(None)]
    if inc.param is not None:
        # `|| ''` keeps SQLite on the res_pk index: these few keys are the selective part.
        conds += [
            REF.c.res_type.concat("") == inc.source_type,
            param_condition(REF, inc.param, planner_hint=True),
        ]
    if inc.target_type:
        conds.append(REF.c.target_type == inc.target_type)
    targets = {
        (t, i)
        for t, i in conn.execute(
            select(REF.c.target_type, REF.c.target_id).where(*conds).distinct()
        )
        if (t, i) not in seen and t in SUPPORTED
    }
    if not targets:
        return []
    stmt = select(*_COLUMNS).where(schema.keys_condition(sorted(targets)), R.c.deleted == false())
    if (cond := condition_of(access, R)) is not None:
        stmt = stmt.where(cond)
    return _fetch(conn, stmt.order_by(R.c.pk), seen)


def _reverse(
    conn: Connection, inc: Include, frontier: list, seen: set, access: Access | None
) -> list[StoredResource]:
    if inc.param is None:
        return []
    by_type: dict[str, list[str]] = {}
    for s in frontier:
        if not inc.param.targets or s.res_type in inc.param.targets:
            by_type.setdefault(s.res_type, []).append(s.res_id)
    if not by_type:
        return []
    target_conds = [
        and_(REF.c.target_type == t, REF.c.target_id.in_(ids)) for t, ids in by_type.items()
    ]
    stmt = (
        select(*_COLUMNS)
        .join(REF, REF.c.res_pk == R.c.pk)
        .where(
            REF.c.res_type == inc.source_type,
            param_condition(REF, inc.param),
            or_(*target_conds),
            R.c.deleted == false(),
        )
        .order_by(R.c.pk)
        .limit(MAX_INCLUDED)
    )
    if (cond := condition_of(access, R)) is not None:
        stmt = stmt.where(cond)
    return _fetch(conn, stmt, seen)
