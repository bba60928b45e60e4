"""The comparisons and blocking rules, each written once for SQL and once for Python.

A comparison splits a pair of records into levels, most specific first; Fellegi-Sunter gives
each level a weight log2(m / u), where m is how often true matches fall in it and u how often
non-matches do. Every level here has a SQL condition (what Splink runs, on DuckDB or Spark)
and a Python test (what the on-write scorer runs); ``tests/identity/test_linkage_scorer.py``
checks that they agree on every pair Splink scores.

Address and postcode are one comparison rather than two: a shared address line almost always
comes with a shared postcode, and counting the two as independent evidence would double the
weight of living together, which is exactly what twins, spouses and siblings share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from carelight.identity.linkage.features import LinkageRecord
from carelight.identity.linkage.jaro import jaro_winkler

Test = Callable[[LinkageRecord, LinkageRecord], bool]

# Splink registers Jaro-Winkler under a different name on each backend.
JARO_WINKLER_SQL = {"duckdb": "jaro_winkler_similarity", "spark": "jaro_winkler"}


def _eq(a: str | None, b: str | None) -> bool:
    """SQL equality: NULL never equals anything."""
    return a is not None and a == b


def _jw_at_least(column: str, threshold: float) -> Test:
    def test(left: LinkageRecord, right: LinkageRecord) -> bool:
        a, b = getattr(left, column), getattr(right, column)
        return a is not None and b is not None and jaro_winkler(a, b) >= threshold

    return test


@dataclass(frozen=True)
class Level:
    label: str
    sql: str  # a condition over <column>_l and <column>_r; "{jw}" names Jaro-Winkler
    test: Test
    is_null: bool = False


@dataclass(frozen=True)
class Comparison:
    name: str
    description: str
    levels: tuple[Level, ...]

    def level_of(self, left: LinkageRecord, right: LinkageRecord) -> int:
        """The index of the first level the pair satisfies (the last is always ELSE)."""
        for i, level in enumerate(self.levels):
            if level.test(left, right):
                return i
        raise AssertionError("a comparison must end with an ELSE level")

    def splink(self, dialect: str):
        """This comparison as a Splink ``CustomComparison`` for ``dialect``."""
        import splink.comparison_library as cl

        try:
            jw = JARO_WINKLER_SQL[dialect]
        except KeyError:
            raise ValueError(
                f"no Jaro-Winkler function known for SQL dialect {dialect!r}; "
                f"supported: {', '.join(sorted(JARO_WINKLER_SQL))}"
            ) from None
        return cl.CustomComparison(
            output_column_name=self.name,
            comparison_description=self.description,
            comparison_levels=[
                {
                    "sql_condition": level.sql.format(jw=jw),
                    "label_for_charts": level.label,
                    **({"is_null_level": True} if level.is_null else {}),
                }
                for level in self.levels
            ],
        )


def _null(*columns: str) -> Level:
    sql = " OR ".join(f"{c}_l IS NULL OR {c}_r IS NULL" for c in columns)
    return Level(
        "null",
        sql,
        lambda a, b: any(getattr(a, c) is None or getattr(b, c) is None for c in columns),
        is_null=True,
    )


def _exact(column: str, label: str = "exact") -> Level:
    return Level(
        label, f"{column}_l = {column}_r", lambda a, b: _eq(getattr(a, column), getattr(b, column))
    )


def _jw(column: str, threshold: float) -> Level:
    return Level(
        f"jaro-winkler >= {threshold}",
        f"{{jw}}({column}_l, {column}_r) >= {threshold}",
        _jw_at_least(column, threshold),
    )


ELSE = Level("else", "ELSE", lambda a, b: True)

FIRST_NAME = Comparison(
    "first_name",
    "First given name: exact, a typo, a nickname, or the other given name used",
    (
        _null("first_name"),
        _exact("first_name"),
        _jw("first_name", 0.92),
        Level(
            "same nickname group",
            "first_name_group_l = first_name_group_r",
            lambda a, b: _eq(a.first_name_group, b.first_name_group),
        ),
        Level(
            "first and middle names swapped",
            "first_name_l = middle_name_r OR middle_name_l = first_name_r",
            lambda a, b: _eq(a.first_name, b.middle_name) or _eq(a.middle_name, b.first_name),
        ),
        _jw("first_name", 0.8),
        ELSE,
    ),
)

FAMILY_NAME = Comparison(
    "family_name",
    "Family name: exact, a typo, or a previous surname (a change on marriage)",
    (
        _null("family_name"),
        _exact("family_name"),
        _jw("family_name", 0.92),
        Level(
            "previous surname",
            "family_name_l = previous_family_name_r OR previous_family_name_l = family_name_r"
            " OR previous_family_name_l = previous_family_name_r",
            lambda a, b: (
                _eq(a.family_name, b.previous_family_name)
                or _eq(a.previous_family_name, b.family_name)
                or _eq(a.previous_family_name, b.previous_family_name)
            ),
        ),
        _jw("family_name", 0.8),
        ELSE,
    ),
)

DATE_OF_BIRTH = Comparison(
    "dob",
    "Date of birth: exact, day and month transposed, or one part different",
    (
        _null("dob"),
        _exact("dob"),
        Level(
            "day and month transposed",
            "dob_year_l = dob_year_r AND dob_month_l = dob_day_r AND dob_day_l = dob_month_r",
            lambda a, b: (
                _eq(a.dob_year, b.dob_year)
                and _eq(a.dob_month, b.dob_day)
                and _eq(a.dob_day, b.dob_month)
            ),
        ),
        Level(
            "two of year, month and day equal",
            "(dob_year_l = dob_year_r AND dob_month_l = dob_month_r)"
            " OR (dob_year_l = dob_year_r AND dob_day_l = dob_day_r)"
            " OR (dob_month_l = dob_month_r AND dob_day_l = dob_day_r)",
            lambda a, b: (
                (_eq(a.dob_year, b.dob_year) and _eq(a.dob_month, b.dob_month))
                or (_eq(a.dob_year, b.dob_year) and _eq(a.dob_day, b.dob_day))
                or (_eq(a.dob_month, b.dob_month) and _eq(a.dob_day, b.dob_day))
            ),
        ),
        ELSE,
    ),
)

SEX = Comparison("sex", "Administrative sex", (_null("sex"), _exact("sex"), ELSE))

ADDRESS = Comparison(
    "address",
    "Address: same line and postcode, same postcode, same postcode district",
    (
        _null("postcode"),
        Level(
            "same line and postcode",
            "postcode_l = postcode_r AND address_line_l = address_line_r",
            lambda a, b: _eq(a.postcode, b.postcode) and _eq(a.address_line, b.address_line),
        ),
        _exact("postcode", "same postcode"),
        _exact("postcode_district", "same postcode district"),
        ELSE,
    ),
)

NHS_NUMBER = Comparison(
    "nhs_number",
    "NHS number (valid numbers only): the same, or two different numbers",
    (_null("nhs_number"), _exact("nhs_number"), ELSE),
)

COMPARISONS: tuple[Comparison, ...] = (
    FIRST_NAME,
    FAMILY_NAME,
    DATE_OF_BIRTH,
    SEX,
    ADDRESS,
    NHS_NUMBER,
)
BY_NAME = {c.name: c for c in COMPARISONS}

# Blocking: only pairs agreeing on every column of at least one rule are compared. Each rule
# catches what the others miss: a typo in a name (postcode + year of birth, district + date of
# birth), a transposed date of birth (postcode + year; names + year), a move (surname + date of
# birth, first name + date of birth, names + year), a changed surname (first name + date of
# birth, district + date of birth), no NHS number (all but the first). Every rule is narrow
# enough that its blocks stay small as the population grows: for 1,000,000 records (429,090
# people in 12 postcode districts) they give about 9 million pairs in all, where a rule such
# as postcode district + year of birth alone would give 456 million.
PREDICTION_BLOCKING: tuple[tuple[str, ...], ...] = (
    ("nhs_number",),
    ("postcode", "dob_year"),
    ("postcode_district", "dob"),
    ("family_name", "dob"),
    ("first_name_group", "dob"),
    ("first_name_group", "family_name", "dob_year"),
)
# Expectation maximisation runs once per rule; a rule's own columns cannot be estimated in
# its pass, so the two passes between them estimate every comparison.
TRAINING_BLOCKING: tuple[tuple[str, ...], ...] = (("dob",), ("postcode",))
