"""Compile a parsed search into SQLAlchemy Core expressions over the store's index tables.

Each criterion becomes ``resource.pk IN (SELECT res_pk FROM sp_<type> WHERE …)``: both SQLite
and PostgreSQL drive such queries from the selective index, instead of probing every resource
of the type. Negations (``:not``, ``:missing=true``) become ``NOT IN``. No SQL is built
from strings: values are bound parameters.
"""

from __future__ import annotations

import time
from functools import cache

from sqlalchemy import ColumnElement, and_, false, func, literal, not_, or_, select, true
from sqlalchemy.sql.expression import FromClause

from carelight.fhir import schema
from carelight.fhir.errors import bad_request
from carelight.fhir.scope import Access, condition_of
from carelight.fhir.search.query import Criterion
from carelight.fhir.search.values import (
    DateRange,
    NumberValue,
    parse_date_range,
    parse_number,
    parse_quantity,
    parse_token,
    split_prefix,
)
from carelight.fhir.searchparams import SearchParam, stored_as
from carelight.fhir.text import normalise

TABLES = {
    "token": schema.sp_token,
    "string": schema.sp_string,
    "date": schema.sp_date,
    "number": schema.sp_number,
    "quantity": schema.sp_quantity,
    "reference": schema.sp_reference,
    "uri": schema.sp_uri,
}


@cache
def _code_bindings() -> dict[str, str]:
    """Element path → code system, for plain ``code`` elements with a required binding."""
    from carelight.fhir.bindings import REQUIRED_BINDINGS

    # Core value sets share their name with the code system they draw on
    # (ValueSet/administrative-gender → http://hl7.org/fhir/administrative-gender).
    return {
        path: "http://hl7.org/fhir/" + b.value_set.rsplit("/", 1)[1]
        for path, b in REQUIRED_BINDINGS.items()
        if b.system is None
    }


def implied_system(p: SearchParam) -> str | None:
    return _code_bindings().get(p.expression)


def param_condition(t: FromClause, p: SearchParam, *, planner_hint: bool = False):
    """``t.param`` names ``p``'s rows: its own, or those it is derived from (``combo-code`` is
    ``code`` or ``component-code``; ``patient`` is ``subject`` rows that point at a Patient;
    see ``searchparams.DERIVED``). ``planner_hint`` writes ``param || ''`` so that SQLite
    does not pick the (res_type, param, …) index over a more selective one."""
    stored = stored_as(p)
    col = t.c.param.concat("") if planner_hint else t.c.param
    cond = col == stored.names[0] if len(stored.names) == 1 else col.in_(stored.names)
    if stored.target_type is not None:
        ttype = t.c.target_type.concat("") if planner_hint else t.c.target_type
        cond = and_(cond, ttype == stored.target_type)
    return cond


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Compiler:
    """Builds WHERE conditions for one resource table (or alias) ``r``."""

    def __init__(
        self, base_url: str = "", *, probe: bool = False, access: Access | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Chains and _has look at other resources: only at those the caller may see.
        self.access = access
        # probe=False: criteria are `pk IN (sub-query)`, for the criterion that drives the
        # query. probe=True: correlated `EXISTS (… WHERE res_pk = resource.pk)`, an index probe
        # per candidate row, for the others: materialising a broad criterion (a date range
        # over every Observation) as an IN list costs far more than probing it.
        self.probe = probe

    def _member(self, r: FromClause, t: FromClause, sub) -> ColumnElement[bool]:
        if self.probe:
            return sub.where(t.c.res_pk == r.c.pk).correlate(r).exists()
        return r.c.pk.in_(sub.correlate(None))

    # -- entry point -------------------------------------------------------------------------
    def condition(self, c: Criterion, r: FromClause, resource_type: str) -> ColumnElement[bool]:
        if c.has is not None:
            return self._has(c, r, resource_type)
        if c.chain is not None:
            return self._chain(c, r, resource_type)
        p = c.param
        if c.modifier == "missing" and p.store_handled:
            # _id and _lastUpdated are columns every resource has; they are never in sp_*.
            return false() if c.values[0] == "true" else true()
        if p.name == "_id":
            return self._id(c, r)
        if p.name == "_lastUpdated":
            return self._last_updated(c, r)
        if c.modifier == "missing":
            t = TABLES[p.type].alias()
            present = select(t.c.res_pk).where(t.c.res_type == resource_type, param_condition(t, p))
            cond = self._member(r, t, present)
            return not_(cond) if c.values[0] == "true" else cond
        builder = getattr(self, f"_{p.type}")
        return builder(p, c, r, resource_type)

    # -- special parameters ------------------------------------------------------------------
    def _id(self, c: Criterion, r: FromClause) -> ColumnElement[bool]:
        if c.modifier == "not":
            return r.c.res_id.notin_(c.values)
        return r.c.res_id.in_(c.values)

    def _last_updated(self, c: Criterion, r: FromClause) -> ColumnElement[bool]:
        col = r.c.last_updated
        return or_(*(date_condition(v, col, col, c.param.name) for v in c.values))

    # -- by parameter type -------------------------------------------------------------------
    def _token(self, p: SearchParam, c: Criterion, r: FromClause, rt: str) -> ColumnElement[bool]:
        t = TABLES["token"].alias()
        alternatives = []
        for v in c.values:
            if c.modifier == "text":
                alternatives.append(t.c.text.like(_like_escape(normalise(v)) + "%", escape="\\"))
                continue
            tv = parse_token(v)
            conds = []
            if tv.code is not None:
                conds.append(t.c.code == tv.code)
            if tv.system is not None and tv.system == implied_system(p):
                # A plain code (Patient.gender) is indexed without its implied system.
                conds.append(or_(t.c.system.is_(None), t.c.system == tv.system))
            elif tv.system is not None:
                conds.append(t.c.system == tv.system)
            elif tv.no_system:
                conds.append(t.c.system.is_(None))
            if not conds:
                raise bad_request(f"Search parameter '{p.name}': '{v}' names no code or system.")
            alternatives.append(and_(*conds))
        sub = select(t.c.res_pk).where(
            t.c.res_type == rt, param_condition(t, p), or_(*alternatives)
        )
        cond = self._member(r, t, sub)
        return not_(cond) if c.modifier == "not" else cond

    def _string(self, p: SearchParam, c: Criterion, r: FromClause, rt: str) -> ColumnElement[bool]:
        t = TABLES["string"].alias()
        alternatives = []
        for v in c.values:
            if c.modifier == "exact":
                alternatives.append(t.c.exact == v)
            elif c.modifier == "contains":
                alternatives.append(
                    t.c.value.like("%" + _like_escape(normalise(v)) + "%", escape="\\")
                )
            else:
                alternatives.append(t.c.value.like(_like_escape(normalise(v)) + "%", escape="\\"))
        sub = select(t.c.res_pk).where(
            t.c.res_type == rt, param_condition(t, p), or_(*alternatives)
        )
        return self._member(r, t, sub)

    def _date(self, p: SearchParam, c: Criterion, r: FromClause, rt: str) -> ColumnElement[bool]:
        return self._any_value(
            p, c, r, rt, "date", lambda t, v: date_condition(v, t.c.low, t.c.high, p.name)
        )

    def _number(self, p: SearchParam, c: Criterion, r: FromClause, rt: str) -> ColumnElement[bool]:
        def build(t, v):
            prefix, rest = split_prefix(v)
            return number_condition(prefix, parse_number(rest, p.name), t.c.value)

        return self._any_value(p, c, r, rt, "number", build)

    def _quantity(
        self, p: SearchParam, c: Criterion, r: FromClause, rt: str
    ) -> ColumnElement[bool]:
        def build(t, v):
            q = parse_quantity(v, p.name)
            conds = [number_condition(q.prefix, q.number, t.c.value)]
            if q.system is not None:
                conds.append(t.c.system == q.system)
            if q.code is not None:
                conds.append(t.c.code == q.code)
            return and_(*conds)

        return self._any_value(p, c, r, rt, "quantity", build)

    def _any_value(self, p, c, r, rt, kind, build) -> ColumnElement[bool]:
        """A resource matches when one of its values matches one of the search values.

        R4 defines every prefix, ``ne`` included, on a value of the resource: ``ne`` matches a
        value that is not equal (so a resource without the element never matches, and the
        system and code of a quantity still have to match).
        """
        t = TABLES[kind].alias()
        sub = select(t.c.res_pk).where(
            t.c.res_type == rt, param_condition(t, p), or_(*(build(t, v) for v in c.values))
        )
        return self._member(r, t, sub)

    def _reference(
        self, p: SearchParam, c: Criterion, r: FromClause, rt: str
    ) -> ColumnElement[bool]:
        t = TABLES["reference"].alias()
        alternatives = []
        for v in c.values:
            alternatives.append(self._reference_value(t, v, c.target_type, p))
        sub = select(t.c.res_pk).where(
            t.c.res_type == rt, param_condition(t, p), or_(*alternatives)
        )
        return self._member(r, t, sub)

    def _reference_value(self, t, v: str, target_type: str | None, p: SearchParam):
        if "://" in v or v.startswith("urn:"):
            if self.base_url and v.startswith(self.base_url + "/"):
                v = v[len(self.base_url) + 1 :]
            else:
                return t.c.url == v.split("|", 1)[0]
        parts = v.split("/")
        if len(parts) >= 2:
            ref_type, ref_id = parts[0], parts[1]
            if target_type and ref_type != target_type:
                raise bad_request(f"'{p.name}:{target_type}={v}' names two different types.")
            return and_(t.c.target_type == ref_type, t.c.target_id == ref_id)
        if target_type:
            return and_(t.c.target_type == target_type, t.c.target_id == v)
        return t.c.target_id == v

    def _uri(self, p: SearchParam, c: Criterion, r: FromClause, rt: str) -> ColumnElement[bool]:
        t = TABLES["uri"].alias()
        alternatives = []
        for v in c.values:
            if c.modifier == "below":
                alternatives.append(t.c.value.like(_like_escape(v) + "%", escape="\\"))
            elif c.modifier == "above":
                alternatives.append(literal(v).like(t.c.value + "%"))
            else:
                alternatives.append(t.c.value == v)
        sub = select(t.c.res_pk).where(
            t.c.res_type == rt, param_condition(t, p), or_(*alternatives)
        )
        return self._member(r, t, sub)

    # -- chains and reverse chains -----------------------------------------------------------
    def _chain(self, c: Criterion, r: FromClause, resource_type: str) -> ColumnElement[bool]:
        ref = schema.sp_reference.alias()
        target = schema.resource.alias()
        assert c.chain is not None and c.target_type is not None
        sub = (
            select(ref.c.res_pk)
            .join(
                target,
                and_(target.c.res_type == ref.c.target_type, target.c.res_id == ref.c.target_id),
            )
            .where(
                ref.c.res_type == resource_type,
                param_condition(ref, c.param),
                ref.c.target_type == c.target_type,
                target.c.deleted == false(),
                Compiler(self.base_url, access=self.access).condition(
                    c.chain, target, c.target_type
                ),
            )
        )
        if (cond := condition_of(self.access, target)) is not None:
            sub = sub.where(cond)
        return self._member(r, ref, sub)

    def _has(self, c: Criterion, r: FromClause, resource_type: str) -> ColumnElement[bool]:
        assert c.has is not None
        ref = schema.sp_reference.alias()
        source = schema.resource.alias()
        # Probing: from each candidate, follow the references to it (index on target) and
        # probe the source's criterion; driving: list every target of matching sources.
        inner = Compiler(self.base_url, probe=self.probe, access=self.access)
        sub = (
            select(ref.c.target_id)
            .join(source, source.c.pk == ref.c.res_pk)
            .where(
                ref.c.res_type == c.has.source_type,
                param_condition(ref, c.has.reference_param),
                ref.c.target_type == resource_type,
                source.c.deleted == false(),
                inner.condition(c.has.criterion, source, c.has.source_type),
            )
        )
        if (cond := condition_of(self.access, source)) is not None:
            sub = sub.where(cond)
        if self.probe:
            return sub.where(ref.c.target_id == r.c.res_id).correlate(r).exists()
        return r.c.res_id.in_(sub.correlate(None))

    # -- sorting -----------------------------------------------------------------------------
    def sort_key(self, p: SearchParam, descending: bool, r: FromClause, resource_type: str):
        if p.name == "_id":
            col = r.c.res_id
        elif p.name == "_lastUpdated":
            col = r.c.last_updated
        else:
            t = TABLES.get(p.type)
            if t is None:
                raise bad_request(f"Cannot sort by '{p.name}' ({p.type}).")
            t = t.alias()
            value = {
                "token": t.c.get("code"),
                "string": t.c.get("value"),
                "date": t.c.get("high") if descending else t.c.get("low"),
                "number": t.c.get("value"),
                "quantity": t.c.get("value"),
                "reference": t.c.get("target_id"),
                "uri": t.c.get("value"),
            }[p.type]
            agg = func.max(value) if descending else func.min(value)
            col = (
                select(agg)
                .where(t.c.res_pk == r.c.pk, t.c.res_type == resource_type, param_condition(t, p))
                .correlate(r)
                .scalar_subquery()
            )
        return (col.desc() if descending else col.asc()).nulls_last()


def date_condition(value: str, low, high, param: str) -> ColumnElement[bool]:
    """R4 date prefixes over a target range [low, high] (both inclusive)."""
    prefix, rest = split_prefix(value)
    s: DateRange = parse_date_range(rest, param)
    if prefix == "eq":
        return and_(low >= s.low, high <= s.high)
    if prefix == "ne":
        return or_(low < s.low, high > s.high)
    if prefix == "gt":
        return high > s.high
    if prefix == "lt":
        return low < s.low
    if prefix == "ge":
        return or_(high > s.high, and_(low >= s.low, high <= s.high))
    if prefix == "le":
        return or_(low < s.low, and_(low >= s.low, high <= s.high))
    if prefix == "sa":
        return low > s.high
    if prefix == "eb":
        return high < s.low
    if prefix == "ap":
        # "approximately": within 10% of the distance from now (at least a day), as HAPI does.
        gap = max(abs(time.time() - s.low) * 0.1, 86400.0)
        return and_(low <= s.high + gap, high >= s.low - gap)
    raise bad_request(f"Unknown prefix '{prefix}'.")


def number_condition(prefix: str, n: NumberValue, col) -> ColumnElement[bool]:
    """R4 number prefixes; ``eq`` honours the implicit precision of the search value."""
    if prefix == "eq":
        return and_(col >= n.low, col < n.high)
    if prefix == "ne":
        return or_(col < n.low, col >= n.high)
    if prefix in ("gt", "sa"):
        return col > n.value
    if prefix in ("lt", "eb"):
        return col < n.value
    if prefix == "ge":
        return col >= n.value
    if prefix == "le":
        return col <= n.value
    if prefix == "ap":
        delta = abs(n.value) * 0.1
        return and_(col >= n.value - delta, col <= n.value + delta)
    raise bad_request(f"Unknown prefix '{prefix}'.")


__all__ = ["Compiler", "date_condition", "number_condition", "param_condition"]
