"""The query model compiled to one SQL query, as a sqlglot syntax tree (never SQL strings).

``SQLCompiler`` has one small method per node type; a dialect subclass overrides only what its
SQL does differently, and sqlglot writes the text for the dialect at the end. The shape of the
query, chosen so each table is read once, as a hand-written query would:

- every per-patient summary of a table (``count_for_patient``, ``minimum_for_patient``,
  ``exists_for_patient``, ``first_for_patient``, …) becomes a column of one CTE per table,
  grouped by ``patient_id``, each aggregate with its frame's conditions as a ``FILTER``
  clause; ``first_for_patient``/``last_for_patient`` are ``ARG_MIN``/``ARG_MAX`` of the row
  (a struct) by the sort keys, then every column to break ties, NULLs first, as the model says;
- a summary whose conditions or values themselves use a per-patient summary (``events after
  the first diagnosis``) gets a CTE of its own, with its conditions as ``WHERE``, so CTEs never
  depend on each other in a circle;
- the population's patients are the union of ``patient_id`` over the tables it mentions; the
  final SELECT LEFT JOINs each CTE (and ``patients``) on ``patient_id``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import sqlglot.expressions as exp

from carelight.sde import model
from carelight.sde.query import dates
from carelight.sde.query.engines.base import Engine, Row, Totals, measure_columns, rows_from_totals
from carelight.sde.query.nodes import (
    AggregateByPatient,
    BinaryOp,
    Case,
    Count,
    Dataset,
    DateAdd,
    DateDifference,
    Exists,
    Frame,
    IntervalEnd,
    IntervalStart,
    IsIn,
    Measure,
    Node,
    PickOneRowPerPatient,
    SelectColumn,
    SelectPatientTable,
    Series,
    UnaryOp,
    Value,
    all_nodes,
    filter_conditions,
    root,
    sort_keys,
    tables_used,
)

SQL_TYPES = {str: "VARCHAR", int: "BIGINT", float: "DOUBLE", datetime.date: "DATE", bool: "BOOLEAN"}
# Stand-ins for NULL in sort keys: a NULL flag sorts first, so these are never compared.
_SORT_FILLERS = {str: "", int: 0, float: 0.0, datetime.date: datetime.date(1970, 1, 1), bool: False}
_SUMMARIES = (AggregateByPatient, Exists, Count, PickOneRowPerPatient)

_COMPARISONS = {
    "eq": exp.EQ,
    "ne": exp.NEQ,
    "lt": exp.LT,
    "le": exp.LTE,
    "gt": exp.GT,
    "ge": exp.GTE,
}


def _and(*conditions: exp.Expression) -> exp.Expression:
    return exp.and_(*conditions, copy=False)


def _or(*conditions: exp.Expression) -> exp.Expression:
    return exp.or_(*conditions, copy=False)


def _not(condition: exp.Expression) -> exp.Expression:
    return exp.not_(condition, copy=False)


def _alias(value: exp.Expression, name: str, **options) -> exp.Expression:
    return exp.alias_(value, name, copy=False, **options)


_DATA_TYPES: dict[str, exp.DataType] = {}


def _cast(value: exp.Expression, to: str | exp.DataType) -> exp.Expression:
    if isinstance(to, str):
        if to not in _DATA_TYPES:
            _DATA_TYPES[to] = exp.DataType.build(to)
        to = _DATA_TYPES[to]
    return exp.Cast(this=value, to=to.copy())


def _func(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.func(name, *args, copy=False)


# sqlglot's builders copy their arguments by default; every expression here is built fresh
# for one place in the tree, so the helpers above (and copy=False below) skip the copies.


@dataclass
class _Scope:
    """Where an expression is compiled: the event rows' alias and the patient-level joins."""

    row_alias: str | None
    joins: dict[str, str] = field(default_factory=dict)  # alias → "cte" or "table"

    def patient_id(self) -> exp.Column:
        return exp.column("patient_id", table=self.row_alias or "population")


@dataclass
class _Group:
    """One CTE grouped by patient: summaries of one table's rows.

    ``shared`` groups hold every simple summary of a table, each filtered by its own frame's
    conditions; other groups hold summaries of one frame whose conditions are the ``WHERE``.
    """

    name: str
    table: str
    shared: bool
    conditions: tuple[Series, ...] = ()
    columns: dict[Node, str] = field(default_factory=dict)
    frames: dict[Node, Frame] = field(default_factory=dict)


def summary_frame(node: Node) -> Frame:
    """The event frame a per-patient summary reads."""
    if isinstance(node, Exists | Count | PickOneRowPerPatient):
        return node.source
    assert isinstance(node, AggregateByPatient) and node.arg.frame is not None
    return node.arg.frame


def _summary_parts(node: Node) -> list[Node]:
    frame = summary_frame(node)
    parts: list[Node] = list(filter_conditions(frame))
    if isinstance(node, AggregateByPatient):
        parts.append(node.arg)
    if isinstance(node, PickOneRowPerPatient):
        parts.extend(sort_keys(frame))
    return parts


def _is_simple(node: Node) -> bool:
    """Whether a summary's conditions and values use no other per-patient summary."""
    return not any(
        isinstance(n, _SUMMARIES) for part in _summary_parts(node) for n in all_nodes(part)
    )


class SQLCompiler:
    """Compiles a ``Dataset`` to one sqlglot ``SELECT``; ``dialect`` names sqlglot's dialect."""

    dialect = "duckdb"

    def __init__(self, table_names: dict[str, str] | None = None) -> None:
        self.table_names = table_names or {}
        self.groups: dict[tuple, _Group] = {}
        self.built: dict[str, exp.Select] = {}
        self.depends: dict[str, set[str]] = {}

    # Entry points -----------------------------------------------------------------------

    def compile(self, dataset: Dataset, ordered: bool = True) -> exp.Select:
        outer = _Scope(row_alias=None)
        population = self.expr(dataset.population, outer)
        columns = [_alias(outer.patient_id(), "patient_id", quoted=True)]
        for name, series in dataset.variables:
            columns.append(_alias(self.expr(series, outer), name, quoted=True))
        self._build_ctes()

        universe = None
        for name in tables_used(dataset.population):
            part = exp.select(exp.column("patient_id")).from_(self.table(name), copy=False)
            universe = (
                part if universe is None else exp.union(universe, part, distinct=True, copy=False)
            )
        assert universe is not None, "a population always mentions a table"
        if isinstance(universe, exp.Select):
            universe = universe.distinct(copy=False)

        query = exp.select(*columns).from_(universe.subquery("population", copy=False), copy=False)
        query = self._join(query, outer)
        query = query.where(population, copy=False)
        if ordered:
            query = query.order_by(exp.column("patient_id", table="population"), copy=False)
        for name in self._cte_order():
            query = query.with_(name, as_=self.built[name], copy=False)
        return query

    def sql(self, dataset: Dataset, pretty: bool = False) -> str:
        # The tree is built for this call alone, so the generator may use it without a copy.
        return self.compile(dataset).sql(dialect=self.dialect, pretty=pretty, copy=False)

    # Tables and joins -------------------------------------------------------------------

    def table(self, name: str, alias: str | None = None) -> exp.Table:
        """A research table by its name in the engine (``table_names`` may rename it)."""
        actual = self.table_names.get(name, name)
        if alias is None and actual != name:
            alias = name
        return exp.table_(actual, alias=alias, quoted=True)

    def _join(self, query: exp.Select, scope: _Scope) -> exp.Select:
        for alias, kind in scope.joins.items():
            target = self.table(alias) if kind == "table" else exp.to_table(alias)
            on = exp.EQ(this=exp.column("patient_id", table=alias), expression=scope.patient_id())
            query = query.join(target, on=on, join_type="LEFT", copy=False)
        return query

    def _source_alias(self, source: str, kind: str, scope: _Scope) -> str:
        scope.joins.setdefault(source, kind)
        return source

    # Per-patient summaries: one CTE per table (or per complex frame) ----------------------

    def summary(self, node: Node, scope: _Scope) -> exp.Column:
        """The column holding ``node``'s per-patient value, joining its CTE into ``scope``."""
        frame = summary_frame(node)
        table = root(frame).table
        if _is_simple(node):
            key: tuple = ("shared", table)
            shared, conditions = True, ()
        else:
            conditions = filter_conditions(frame)
            key, shared = ("own", table, conditions), False
        if key not in self.groups:
            self.groups[key] = _Group(f"{table}_{len(self.groups) + 1}", table, shared, conditions)
        group = self.groups[key]
        if node not in group.columns:
            group.columns[node] = f"v{len(group.columns) + 1}"
            group.frames[node] = frame
        alias = self._source_alias(group.name, "cte", scope)
        return exp.column(group.columns[node], table=alias)

    def _build_ctes(self) -> None:
        """Build every CTE, repeating while building one adds columns or CTEs elsewhere."""

        def size() -> tuple[int, int]:
            return len(self.groups), sum(len(g.columns) for g in self.groups.values())

        built: dict[str, int] = {}
        while True:
            before = size()
            for group in list(self.groups.values()):
                if built.get(group.name) != len(group.columns):
                    built[group.name] = len(group.columns)
                    self._build_group(group)
            if size() == before:
                return

    def _build_group(self, group: _Group) -> None:
        scope = _Scope(row_alias="t")
        columns: list[exp.Expression] = [exp.column("patient_id", table="t")]
        filters: list[exp.Expression | None] = []
        for node, name in list(group.columns.items()):
            value = self.aggregate(node, scope)
            conditions = filter_conditions(group.frames[node]) if group.shared else ()
            condition = _and(*[self.expr(c, scope) for c in conditions]) if conditions else None
            if condition is not None:
                value = _filtered(value, condition)
            filters.append(condition)
            columns.append(_alias(value, name))
        if group.shared:
            # Read only rows some summary wants, unless one wants them all.
            wanted = (
                []
                if None in filters
                else [f.copy() for f in {f.sql(): f for f in filters}.values()]
            )
            where = _or(*wanted) if wanted else None
        else:
            own = [self.expr(c, scope) for c in group.conditions]
            where = _and(*own) if own else None
        query = exp.select(*columns).from_(self.table(group.table, alias="t"), copy=False)
        query = self._join(query, scope)
        if where is not None:
            query = query.where(where, copy=False)
        self.built[group.name] = query.group_by(exp.column("patient_id", table="t"), copy=False)
        self.depends[group.name] = set(scope.joins)

    def _cte_order(self) -> list[str]:
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order or name not in self.built:
                return
            for dep in sorted(self.depends.get(name, ())):
                visit(dep)
            order.append(name)

        for name in sorted(self.built):
            visit(name)
        return order

    def aggregate(self, node: Node, scope: _Scope) -> exp.Expression:
        """The aggregate expression for a summary, inside its group's CTE."""
        if isinstance(node, Count | Exists):
            return _cast(exp.Count(this=exp.Star()), "BIGINT")
        if isinstance(node, PickOneRowPerPatient):
            return self.pick(node, scope)
        assert isinstance(node, AggregateByPatient)
        arg = self.expr(node.arg, scope)
        if node.fn == "min":
            return exp.Min(this=arg)
        if node.fn == "max":
            return exp.Max(this=arg)
        if node.fn == "sum":
            return _cast(exp.Sum(this=arg), SQL_TYPES[node.type])
        if node.fn == "mean":
            return exp.Avg(this=_cast(arg, "DOUBLE"))
        if node.fn == "count_distinct":
            return _cast(exp.Count(this=exp.Distinct(expressions=[arg])), "BIGINT")
        raise TypeError(f"unknown aggregate {node.fn!r}")

    def pick(self, node: PickOneRowPerPatient, scope: _Scope) -> exp.Expression:
        """The first or last row as a struct: ARG_MIN/ARG_MAX by (sort keys, every column).

        Each key is a pair (is it not NULL, its value or a filler), so NULLs sort first and no
        NULL reaches the comparison.
        """
        table = model.table(node.table)
        sort_by = sort_keys(node.source)
        keys = [(self.expr(k, scope), k.type) for k in sort_by]
        # Ties are broken by the other columns (patient_id is the same for all the rows).
        named = {k.name for k in sort_by if isinstance(k, SelectColumn) and k.frame is not None}
        keys += [
            (exp.column(c.name, table="t"), _python_type(c.type))
            for c in table.columns[1:]
            if c.name not in named
        ]
        order: list[exp.Expression] = []
        for i, (key, t) in enumerate(keys):
            present = _not(exp.paren(exp.Is(this=key, expression=exp.Null())))
            value = _func("COALESCE", key, self.literal(_SORT_FILLERS[t], t))
            order.append(exp.PropertyEQ(this=exp.to_identifier(f"n{i}"), expression=present))
            order.append(exp.PropertyEQ(this=exp.to_identifier(f"k{i}"), expression=value))
        row = exp.Struct(
            expressions=[
                exp.PropertyEQ(this=exp.to_identifier(c), expression=exp.column(c, table="t"))
                for c in table.names
            ]
        )
        by = exp.ArgMin if node.position == "first" else exp.ArgMax
        return by(this=row, expression=exp.Struct(expressions=order))

    # Series ----------------------------------------------------------------------------

    def expr(self, s: Series, scope: _Scope) -> exp.Expression:
        method = getattr(self, f"expr_{type(s).__name__}", None)
        if method is None:
            raise TypeError(f"the SQL engines cannot compile {type(s).__name__}")
        return method(s, scope)

    def expr_Value(self, s: Value, scope: _Scope) -> exp.Expression:
        return self.literal(s.value, s.type)

    def literal(self, value: object, t: type) -> exp.Expression:
        if value is None:
            return _cast(exp.Null(), SQL_TYPES[t])
        if t is bool:
            return exp.Boolean(this=value)
        if t is int:
            return _cast(exp.Literal.number(str(value)), "BIGINT")
        if t is float:
            return _cast(exp.Literal.number(repr(float(value))), "DOUBLE")
        if t is datetime.date:
            return _cast(exp.Literal.string(value.isoformat()), "DATE")  # type: ignore[attr-defined]
        return exp.Literal.string(str(value))

    def expr_SelectColumn(self, s: SelectColumn, scope: _Scope) -> exp.Expression:
        if isinstance(s.source, SelectPatientTable):
            return exp.column(s.name, table=self._source_alias(s.source.name, "table", scope))
        if isinstance(s.source, PickOneRowPerPatient):
            row = self.summary(s.source, scope)
            return exp.Dot(this=row, expression=exp.to_identifier(s.name))
        if scope.row_alias is None:
            raise TypeError("an event-level column outside its frame")
        return exp.column(s.name, table=scope.row_alias)

    def expr_Exists(self, s: Exists, scope: _Scope) -> exp.Expression:
        count = _func("COALESCE", self.summary(s, scope), self.literal(0, int))
        return exp.paren(exp.GT(this=count, expression=self.literal(0, int)))

    def expr_Count(self, s: Count, scope: _Scope) -> exp.Expression:
        return _func("COALESCE", self.summary(s, scope), self.literal(0, int))

    def expr_AggregateByPatient(self, s: AggregateByPatient, scope: _Scope) -> exp.Expression:
        column = self.summary(s, scope)
        if s.fn == "count_distinct":
            return _func("COALESCE", column, self.literal(0, int))
        return column

    def expr_BinaryOp(self, s: BinaryOp, scope: _Scope) -> exp.Expression:
        a, b = self.expr(s.lhs, scope), self.expr(s.rhs, scope)
        if s.op in _COMPARISONS:
            return exp.paren(_COMPARISONS[s.op](this=a, expression=b))
        if s.op == "and":
            return exp.paren(exp.And(this=a, expression=b))
        if s.op == "or":
            return exp.paren(exp.Or(this=a, expression=b))
        if s.op == "add":
            return exp.paren(exp.Add(this=a, expression=b))
        if s.op == "sub":
            return exp.paren(exp.Sub(this=a, expression=b))
        if s.op == "mul":
            return exp.paren(exp.Mul(this=a, expression=b))
        if s.op == "truediv":
            return self.divide(a, b)
        if s.op == "floordiv":
            return _cast(exp.Floor(this=self.divide(a, b)), "BIGINT")
        raise TypeError(f"unknown operator {s.op!r}")

    def divide(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        """a / b as a double, NULL when b is 0 (NULLIF, so no engine raises)."""
        denominator = exp.Nullif(this=_cast(b, "DOUBLE"), expression=self.literal(0.0, float))
        return exp.paren(exp.Div(this=_cast(a, "DOUBLE"), expression=denominator))

    def expr_UnaryOp(self, s: UnaryOp, scope: _Scope) -> exp.Expression:
        a = self.expr(s.arg, scope)
        if s.op == "not":
            return exp.paren(exp.Not(this=a))
        if s.op == "neg":
            return exp.paren(exp.Neg(this=a))
        if s.op == "is_null":
            return exp.paren(exp.Is(this=a, expression=exp.Null()))
        if s.op == "year":
            return _cast(exp.Year(this=a), "BIGINT")
        if s.op == "month":
            return _cast(exp.Month(this=a), "BIGINT")
        if s.op == "day":
            return _cast(exp.Day(this=a), "BIGINT")
        if s.op == "to_float":
            return _cast(a, "DOUBLE")
        raise TypeError(f"unknown operator {s.op!r}")

    def expr_IsIn(self, s: IsIn, scope: _Scope) -> exp.Expression:
        a = self.expr(s.arg, scope)
        if not s.values:
            return exp.Case(
                ifs=[
                    exp.If(
                        this=exp.Is(this=a, expression=exp.Null()),
                        true=_cast(exp.Null(), "BOOLEAN"),
                    )
                ],
                default=exp.false(),
            )
        values = [self.literal(v, s.arg.type) for v in sorted(s.values)]
        return exp.paren(exp.In(this=a, expressions=values))

    def expr_DateAdd(self, s: DateAdd, scope: _Scope) -> exp.Expression:
        if isinstance(s.date, Value) and isinstance(s.amount, Value):
            # A constant date (index date - 1 year): worked out here, once.
            if s.date.value is None or s.amount.value is None:
                return self.literal(None, datetime.date)
            return self.literal(dates.add(s.date.value, s.amount.value, s.unit), datetime.date)  # type: ignore[arg-type]
        date, amount = self.expr(s.date, scope), self.expr(s.amount, scope)
        if s.unit == "days":
            return self.add_days(date, amount)
        if s.unit == "years":
            amount = exp.paren(exp.Mul(this=amount, expression=self.literal(12, int)))
        return self.add_months(date, amount)

    def add_days(self, date: exp.Expression, days: exp.Expression) -> exp.Expression:
        added = exp.DateAdd(this=date, expression=_cast(days, "INT"), unit=exp.Var(this="DAY"))
        return _cast(added, "DATE")

    def add_months(self, date: exp.Expression, months: exp.Expression) -> exp.Expression:
        return _cast(exp.AddMonths(this=date, expression=_cast(months, "INT")), "DATE")

    def expr_DateDifference(self, s: DateDifference, scope: _Scope) -> exp.Expression:
        start, end = self.expr(s.start, scope), self.expr(s.end, scope)
        if s.unit == "days":
            return self.days_between(start, end)

        def part(kind, d):
            return _cast(kind(this=d), "BIGINT")

        years = exp.Sub(this=part(exp.Year, end), expression=part(exp.Year, start))
        if s.unit == "years":
            earlier = _or(
                exp.LT(this=part(exp.Month, end), expression=part(exp.Month, start)),
                _and(
                    exp.EQ(this=part(exp.Month, end), expression=part(exp.Month, start)),
                    exp.LT(this=part(exp.Day, end), expression=part(exp.Day, start)),
                ),
            )
            whole = years
        else:
            earlier = exp.LT(this=part(exp.Day, end), expression=part(exp.Day, start))
            months = exp.Sub(this=part(exp.Month, end), expression=part(exp.Month, start))
            whole = exp.Add(
                this=exp.Mul(this=exp.paren(years), expression=self.literal(12, int)),
                expression=months,
            )
        borrow = exp.Case(
            ifs=[exp.If(this=earlier, true=self.literal(1, int))], default=self.literal(0, int)
        )
        return exp.paren(exp.Sub(this=exp.paren(whole), expression=borrow))

    def days_between(self, start: exp.Expression, end: exp.Expression) -> exp.Expression:
        return _cast(exp.DateDiff(this=end, expression=start, unit=exp.Var(this="DAY")), "BIGINT")

    def expr_Case(self, s: Case, scope: _Scope) -> exp.Expression:
        def value(v: Series) -> exp.Expression:
            e = self.expr(v, scope)
            return _cast(e, "DOUBLE") if s.type is float and v.type is not float else e

        ifs = [exp.If(this=self.expr(c, scope), true=value(v)) for c, v in s.cases]
        default = (
            value(s.default) if s.default is not None else _cast(exp.Null(), SQL_TYPES[s.type])
        )
        return exp.Case(ifs=ifs, default=default)

    def expr_IntervalStart(self, s: IntervalStart, scope: _Scope) -> exp.Expression:
        raise TypeError("interval dates are only known when a measure runs")

    def expr_IntervalEnd(self, s: IntervalEnd, scope: _Scope) -> exp.Expression:
        raise TypeError("interval dates are only known when a measure runs")


def _python_type(name: str) -> type:
    from carelight.sde.query.nodes import TYPES

    return TYPES[name]


def _filtered(value: exp.Expression, condition: exp.Expression) -> exp.Expression:
    """``value`` with ``FILTER (WHERE condition)`` on its aggregate (inside any CAST)."""
    if isinstance(value, exp.Cast):
        return _cast(_filtered(value.this, condition), value.to)
    return exp.Filter(this=value, expression=exp.Where(this=condition))


class SQLEngine(Engine):
    """An engine that runs compiled SQL: subclasses say how to compile and execute."""

    def compiler(self) -> SQLCompiler:
        raise NotImplementedError

    def execute(self, sql: str) -> list[tuple]:
        raise NotImplementedError

    def sql(self, dataset: Dataset) -> str:
        return self.compiler().sql(dataset)

    def get_rows(self, dataset: Dataset) -> list[Row]:
        names = dataset.column_names
        return [dict(zip(names, r, strict=True)) for r in self.execute(self.sql(dataset))]

    def get_measure_rows(self, measures) -> list[Row]:
        """Each measure as one query: per interval, its dataset grouped and counted in SQL."""
        columns = measure_columns(measures)
        out: list[Row] = []
        for m in measures:
            totals: list[Totals] = [{} for _ in m.intervals]
            for interval, *rest in self.execute(self.measure_sql(m)):
                *key, numerator, denominator = rest
                if denominator:
                    totals[interval][tuple(key)] = [int(numerator), int(denominator)]
            out.extend(rows_from_totals(m, totals, columns))
        return out

    def measure_sql(self, measure: Measure) -> str:
        dialect = self.compiler().dialect
        names = [g for g, _ in measure.group_by]
        parts = []
        for i, (start, end) in enumerate(measure.intervals):
            rows = self.compiler().compile(measure.dataset_for(start, end), ordered=False)
            numerator = exp.column("numerator", table="d")
            if measure.numerator.type is bool:
                value = exp.Case(
                    ifs=[exp.If(this=numerator, true=exp.Literal.number(1))],
                    default=exp.Literal.number(0),
                )
            else:
                value = _func("COALESCE", numerator, exp.Literal.number(0))
            groups = [exp.column(g, table="d", quoted=True) for g in names]
            part = exp.select(
                _alias(exp.Literal.number(i), "interval_index"),
                *[_alias(g, n, quoted=True) for g, n in zip(groups, names, strict=True)],
                _alias(_cast(exp.Sum(this=value), "BIGINT"), "numerator"),
                _alias(_cast(exp.Count(this=exp.Star()), "BIGINT"), "denominator"),
            ).from_(rows.subquery("d", copy=False), copy=False)
            if groups:
                part = part.group_by(*[g.copy() for g in groups], copy=False)
            parts.append(part)
        query = parts[0]
        for part in parts[1:]:
            query = exp.union(query, part, distinct=False, copy=False)
        return query.sql(dialect=dialect, copy=False)
