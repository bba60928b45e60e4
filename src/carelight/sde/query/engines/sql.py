"""The query model compiled to one SQL query, as a sqlglot syntax tree (never SQL strings).

``SQLCompiler`` has one small method per node type; a dialect subclass overrides only what its
SQL does differently, and sqlglot writes the text for the dialect at the end. The shape of the
query, chosen for speed on a columnar engine:

- each event frame that is aggregated becomes one CTE grouped by ``patient_id``, holding every
  aggregate of that frame (``count``, ``min``, …) as a column, so a frame is scanned once;
- each ``first_for_patient``/``last_for_patient`` becomes one CTE with ``ROW_NUMBER()`` over
  the patient's rows (the sort keys, then every column to break ties, as the model says);
- the population's patients are the union of ``patient_id`` over the tables it mentions; the
  final SELECT LEFT JOINs each CTE (and ``patients``) on ``patient_id``.

An event-level expression that uses a patient-level series (``events.date >= first_date``)
LEFT JOINs that series' CTE into the frame's own SELECT the same way.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import sqlglot.expressions as exp

from carelight.sde import model
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
    PickOneRowPerPatient,
    SelectColumn,
    SelectPatientTable,
    Series,
    UnaryOp,
    Value,
    filter_conditions,
    root,
    sort_keys,
    tables_used,
)

SQL_TYPES = {str: "VARCHAR", int: "BIGINT", float: "DOUBLE", datetime.date: "DATE", bool: "BOOLEAN"}

_COMPARISONS = {
    "eq": exp.EQ,
    "ne": exp.NEQ,
    "lt": exp.LT,
    "le": exp.LTE,
    "gt": exp.GT,
    "ge": exp.GTE,
}


@dataclass
class _Scope:
    """Where an expression is compiled: the event rows' alias and the patient-level joins."""

    row_alias: str | None
    joins: dict[str, str] = field(default_factory=dict)  # alias → "cte" or "table"

    def patient_id(self) -> exp.Column:
        return exp.column("patient_id", table=self.row_alias or "population")


@dataclass
class _AggregateGroup:
    """One CTE: the aggregates over one event frame (its table and filter conditions)."""

    name: str
    frame: Frame
    columns: dict[Series, str] = field(default_factory=dict)


class SQLCompiler:
    """Compiles a ``Dataset`` to one sqlglot ``SELECT``; ``dialect`` names sqlglot's dialect."""

    dialect = "duckdb"

    def __init__(self, table_names: dict[str, str] | None = None) -> None:
        self.table_names = table_names or {}
        self.groups: dict[tuple, _AggregateGroup] = {}
        self.picks: dict[PickOneRowPerPatient, str] = {}
        self.built: dict[str, exp.Select] = {}
        self.depends: dict[str, set[str]] = {}

    # Entry points -----------------------------------------------------------------------

    def compile(self, dataset: Dataset) -> exp.Select:
        outer = _Scope(row_alias=None)
        population = self.expr(dataset.population, outer)
        columns = [exp.alias_(outer.patient_id(), "patient_id", quoted=True)]
        for name, series in dataset.variables:
            columns.append(exp.alias_(self.expr(series, outer), name, quoted=True))
        self._build_ctes()

        universe = None
        for name in tables_used(dataset.population):
            part = exp.select(exp.column("patient_id")).from_(self.table(name))
            universe = part if universe is None else exp.union(universe, part, distinct=True)
        assert universe is not None, "a population always mentions a table"
        if isinstance(universe, exp.Select):
            universe = universe.distinct()

        query = exp.select(*columns).from_(universe.subquery("population"))
        query = self._join(query, outer)
        query = query.where(population).order_by(exp.column("patient_id", table="population"))
        for name in self._cte_order(outer):
            query = query.with_(name, as_=self.built[name])
        return query

    def sql(self, dataset: Dataset, pretty: bool = False) -> str:
        return self.compile(dataset).sql(dialect=self.dialect, pretty=pretty)

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
            query = query.join(target, on=on, join_type="LEFT")
        return query

    def _source_alias(self, source: str, kind: str, scope: _Scope) -> str:
        scope.joins.setdefault(source, kind)
        return source

    # Frames -----------------------------------------------------------------------------

    def frame_scope(self, frame: Frame) -> tuple[_Scope, list[exp.Expression]]:
        """A scope over an event frame's rows (alias ``t``) and its filter conditions."""
        scope = _Scope(row_alias="t")
        return scope, [self.expr(c, scope) for c in filter_conditions(frame)]

    def from_frame(
        self, query: exp.Select, frame: Frame, scope: _Scope, conditions: list[exp.Expression]
    ) -> exp.Select:
        """``query`` reading the frame's rows: FROM its table, the scope's joins, WHERE."""
        query = query.from_(self.table(root(frame).table, alias="t"))
        query = self._join(query, scope)
        return query.where(exp.and_(*conditions)) if conditions else query

    def _group_for(self, frame: Frame) -> _AggregateGroup:
        key = (root(frame), filter_conditions(frame))
        if key not in self.groups:
            self.groups[key] = _AggregateGroup(f"agg_{len(self.groups) + 1}", frame)
        return self.groups[key]

    def _build_ctes(self) -> None:
        """Build every CTE, repeating while building one adds columns or CTEs elsewhere."""

        def size() -> tuple[int, int, int]:
            columns = sum(len(g.columns) for g in self.groups.values())
            return (len(self.groups), columns, len(self.picks))

        while True:
            before = size()
            for group in list(self.groups.values()):
                self._build_group(group)
            for pick, name in list(self.picks.items()):
                self._build_pick(pick, name)
            if size() == before:
                return

    def _build_group(self, group: _AggregateGroup) -> None:
        scope, conditions = self.frame_scope(group.frame)
        columns = [exp.column("patient_id", table="t")]
        columns += [exp.alias_(self.aggregate(n, scope), c) for n, c in list(group.columns.items())]
        query = self.from_frame(exp.select(*columns), group.frame, scope, conditions)
        self.built[group.name] = query.group_by(exp.column("patient_id", table="t"))
        self.depends[group.name] = set(scope.joins)

    def _build_pick(self, pick: PickOneRowPerPatient, name: str) -> None:
        table = model.table(pick.table)
        first = pick.position == "first"
        scope, conditions = self.frame_scope(pick.source)
        keys = [self.expr(k, scope) for k in sort_keys(pick.source)]
        keys += [exp.column(c, table="t") for c in table.names if c != "patient_id"]
        number = exp.Window(
            this=exp.RowNumber(),
            partition_by=[exp.column("patient_id", table="t")],
            order=exp.Order(
                expressions=[exp.Ordered(this=k, desc=not first, nulls_first=first) for k in keys]
            ),
        )
        columns = [exp.column(c, table="t") for c in table.names]
        rows = exp.select(*columns, exp.alias_(number, "row_number"))
        rows = self.from_frame(rows, pick.source, scope, conditions)
        self.built[name] = (
            exp.select(*[exp.column(c) for c in table.names])
            .from_(rows.subquery("numbered"))
            .where(exp.EQ(this=exp.column("row_number"), expression=exp.Literal.number(1)))
        )
        self.depends[name] = set(scope.joins)

    def _cte_order(self, outer: _Scope) -> list[str]:
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
            return exp.cast(exp.Null(), SQL_TYPES[t])
        if t is bool:
            return exp.Boolean(this=value)
        if t is int:
            return exp.cast(exp.Literal.number(str(value)), "BIGINT")
        if t is float:
            return exp.cast(exp.Literal.number(repr(float(value))), "DOUBLE")
        if t is datetime.date:
            return exp.cast(exp.Literal.string(value.isoformat()), "DATE")  # type: ignore[attr-defined]
        return exp.Literal.string(str(value))

    def expr_SelectColumn(self, s: SelectColumn, scope: _Scope) -> exp.Expression:
        if s.source.is_patient_level:
            if isinstance(s.source, SelectPatientTable):
                alias = self._source_alias(s.source.name, "table", scope)
            else:
                alias = self._source_alias(self._pick_name(s.source), "cte", scope)  # type: ignore[arg-type]
            return exp.column(s.name, table=alias)
        if scope.row_alias is None:
            raise TypeError("an event-level column outside its frame")
        return exp.column(s.name, table=scope.row_alias)

    def _pick_name(self, pick: PickOneRowPerPatient) -> str:
        if pick not in self.picks:
            self.picks[pick] = f"pick_{len(self.picks) + 1}"
        return self.picks[pick]

    def _aggregate_column(self, node: Series, frame: Frame, scope: _Scope) -> exp.Column:
        group = self._group_for(frame)
        if node not in group.columns and not isinstance(node, Exists):
            group.columns[node] = f"v{len(group.columns) + 1}"
        alias = self._source_alias(group.name, "cte", scope)
        return exp.column(group.columns.get(node, "patient_id"), table=alias)

    def expr_Exists(self, s: Exists, scope: _Scope) -> exp.Expression:
        column = self._aggregate_column(s, s.source, scope)
        return exp.paren(exp.not_(exp.paren(exp.Is(this=column, expression=exp.Null()))))

    def expr_Count(self, s: Count, scope: _Scope) -> exp.Expression:
        return exp.func(
            "COALESCE", self._aggregate_column(s, s.source, scope), self.literal(0, int)
        )

    def expr_AggregateByPatient(self, s: AggregateByPatient, scope: _Scope) -> exp.Expression:
        assert s.arg.frame is not None
        column = self._aggregate_column(s, s.arg.frame, scope)
        if s.fn == "count_distinct":
            return exp.func("COALESCE", column, self.literal(0, int))
        return column

    def aggregate(self, node: Series, scope: _Scope) -> exp.Expression:
        """The aggregate expression inside a group CTE."""
        if isinstance(node, Count):
            return exp.cast(exp.Count(this=exp.Star()), "BIGINT")
        assert isinstance(node, AggregateByPatient)
        arg = self.expr(node.arg, scope)
        if node.fn == "min":
            return exp.Min(this=arg)
        if node.fn == "max":
            return exp.Max(this=arg)
        if node.fn == "sum":
            return exp.cast(exp.Sum(this=arg), SQL_TYPES[node.type])
        if node.fn == "mean":
            return exp.Avg(this=exp.cast(arg, "DOUBLE"))
        if node.fn == "count_distinct":
            return exp.cast(exp.Count(this=exp.Distinct(expressions=[arg])), "BIGINT")
        raise TypeError(f"unknown aggregate {node.fn!r}")

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
            return exp.cast(exp.Floor(this=self.divide(a, b)), "BIGINT")
        raise TypeError(f"unknown operator {s.op!r}")

    def divide(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        """a / b as a double, NULL when b is 0 (NULLIF, so no engine raises)."""
        denominator = exp.Nullif(this=exp.cast(b, "DOUBLE"), expression=self.literal(0.0, float))
        return exp.paren(exp.Div(this=exp.cast(a, "DOUBLE"), expression=denominator))

    def expr_UnaryOp(self, s: UnaryOp, scope: _Scope) -> exp.Expression:
        a = self.expr(s.arg, scope)
        if s.op == "not":
            return exp.paren(exp.Not(this=a))
        if s.op == "neg":
            return exp.paren(exp.Neg(this=a))
        if s.op == "is_null":
            return exp.paren(exp.Is(this=a, expression=exp.Null()))
        if s.op == "year":
            return exp.cast(exp.Year(this=a), "BIGINT")
        if s.op == "month":
            return exp.cast(exp.Month(this=a), "BIGINT")
        if s.op == "day":
            return exp.cast(exp.Day(this=a), "BIGINT")
        if s.op == "to_float":
            return exp.cast(a, "DOUBLE")
        raise TypeError(f"unknown operator {s.op!r}")

    def expr_IsIn(self, s: IsIn, scope: _Scope) -> exp.Expression:
        a = self.expr(s.arg, scope)
        if not s.values:
            return exp.Case(
                ifs=[
                    exp.If(
                        this=exp.Is(this=a, expression=exp.Null()),
                        true=exp.cast(exp.Null(), "BOOLEAN"),
                    )
                ],
                default=exp.false(),
            )
        values = [self.literal(v, s.arg.type) for v in sorted(s.values)]
        return exp.paren(exp.In(this=a, expressions=values))

    def expr_DateAdd(self, s: DateAdd, scope: _Scope) -> exp.Expression:
        date, amount = self.expr(s.date, scope), self.expr(s.amount, scope)
        if s.unit == "days":
            return self.add_days(date, amount)
        if s.unit == "years":
            amount = exp.paren(exp.Mul(this=amount, expression=self.literal(12, int)))
        return self.add_months(date, amount)

    def add_days(self, date: exp.Expression, days: exp.Expression) -> exp.Expression:
        added = exp.DateAdd(this=date, expression=exp.cast(days, "INT"), unit=exp.Var(this="DAY"))
        return exp.cast(added, "DATE")

    def add_months(self, date: exp.Expression, months: exp.Expression) -> exp.Expression:
        return exp.cast(exp.AddMonths(this=date, expression=exp.cast(months, "INT")), "DATE")

    def expr_DateDifference(self, s: DateDifference, scope: _Scope) -> exp.Expression:
        start, end = self.expr(s.start, scope), self.expr(s.end, scope)
        if s.unit == "days":
            return self.days_between(start, end)

        def part(kind, d):
            return exp.cast(kind(this=d), "BIGINT")

        years = exp.Sub(this=part(exp.Year, end), expression=part(exp.Year, start))
        if s.unit == "years":
            earlier = exp.or_(
                exp.LT(this=part(exp.Month, end), expression=part(exp.Month, start)),
                exp.and_(
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
        return exp.cast(
            exp.DateDiff(this=end, expression=start, unit=exp.Var(this="DAY")), "BIGINT"
        )

    def expr_Case(self, s: Case, scope: _Scope) -> exp.Expression:
        def value(v: Series) -> exp.Expression:
            e = self.expr(v, scope)
            return exp.cast(e, "DOUBLE") if s.type is float and v.type is not float else e

        ifs = [exp.If(this=self.expr(c, scope), true=value(v)) for c, v in s.cases]
        default = (
            value(s.default) if s.default is not None else exp.cast(exp.Null(), SQL_TYPES[s.type])
        )
        return exp.Case(ifs=ifs, default=default)

    def expr_IntervalStart(self, s: IntervalStart, scope: _Scope) -> exp.Expression:
        raise TypeError("interval dates are only known when a measure runs")

    def expr_IntervalEnd(self, s: IntervalEnd, scope: _Scope) -> exp.Expression:
        raise TypeError("interval dates are only known when a measure runs")
