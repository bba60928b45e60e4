"""From staging rows to the research data model's tables, in SQL that runs on DuckDB and Spark.

Each research table is one ``SELECT`` over the staging tables, written once in DuckDB's dialect
and carried to Spark SQL by sqlglot (a syntax tree, not string edits), with a hand-written
Spark form only where the engines' functions differ. The outer query casts every column to the
model's type, keeps only people in ``patients`` (every ``patient_id`` refers to a patient row)
and orders rows by person.
"""

from __future__ import annotations

import sqlglot

from carelight.sde import model

DUCKDB_TYPES = {"str": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "date": "DATE",
                "bool": "BOOLEAN"}  # fmt: skip
SPARK_TYPES = {"str": "STRING", "int": "BIGINT", "float": "DOUBLE", "date": "DATE",
               "bool": "BOOLEAN"}  # fmt: skip

_PATIENTS = """
SELECT patient_id,
       max_by(sex, weight) FILTER (WHERE sex IS NOT NULL) AS sex,
       max_by(date_of_birth, weight) FILTER (WHERE date_of_birth IS NOT NULL) AS date_of_birth,
       max(date_of_death) AS date_of_death,
       max_by(area_code, weight) FILTER (WHERE area_code IS NOT NULL) AS area_code
FROM st_patient
GROUP BY patient_id
"""

_ADMISSIONS = """
SELECT e.patient_id, e.admission_date, e.discharge_date, e.admission_class,
       d.primary_diagnosis, d.all_diagnoses
FROM st_encounter AS e
LEFT JOIN (
    SELECT link, min_by(code, seq) AS primary_diagnosis,
           string_agg(code, '||' ORDER BY seq) AS all_diagnoses
    FROM st_diagnosis GROUP BY link
) AS d ON d.link = e.link
"""
_ADMISSIONS_SPARK = """
SELECT e.patient_id, e.admission_date, e.discharge_date, e.admission_class,
       d.primary_diagnosis, d.all_diagnoses
FROM st_encounter AS e
LEFT JOIN (
    SELECT link, min_by(code, seq) AS primary_diagnosis,
           array_join(transform(array_sort(collect_list(struct(seq, code))), x -> x.code), '||')
               AS all_diagnoses
    FROM st_diagnosis GROUP BY link
) AS d ON d.link = e.link
"""

# A council placement and the care home's own residency record are one stay: keep the care
# home's (it names the home) and the council's only where no residency starts within 30 days.
_CARE_HOME = """
SELECT patient_id, start_date, end_date, care_home_code, nursing FROM st_care_home
WHERE kind = 'residency'
UNION ALL
SELECT p.patient_id, p.start_date, p.end_date, NULL AS care_home_code, NULL AS nursing
FROM st_care_home AS p
WHERE p.kind = 'placement' AND NOT EXISTS (
    SELECT 1 FROM st_care_home AS r
    WHERE r.kind = 'residency' AND r.patient_id = p.patient_id
      AND abs(date_diff('day', r.start_date, p.start_date)) <= 30
)
"""

QUERIES: dict[str, str] = {
    "patients": _PATIENTS,
    "practice_registrations": "SELECT * FROM st_registration",
    "clinical_events": "SELECT * FROM st_clinical",
    "medications": "SELECT * FROM st_medication",
    "lab_results": "SELECT * FROM st_lab",
    "vaccinations": "SELECT * FROM st_vaccination",
    "admissions": _ADMISSIONS,
    "procedures": "SELECT * FROM st_procedure",
    "social_care_assessments": "SELECT * FROM st_assessment",
    "care_packages": "SELECT * FROM st_package",
    "care_home_stays": _CARE_HOME,
}
SPARK_QUERIES: dict[str, str] = {"admissions": _ADMISSIONS_SPARK}


def table_query(name: str, engine: str, patients: str = "patients") -> str:
    """The final ``SELECT`` for research table ``name`` on ``engine`` (duckdb or spark);
    ``patients`` names the already-built patients table that rows must belong to."""
    table = model.table(name)
    types = DUCKDB_TYPES if engine == "duckdb" else SPARK_TYPES
    inner = QUERIES[name]
    if engine == "spark":
        inner = SPARK_QUERIES.get(name) or sqlglot.transpile(inner, read="duckdb", write="spark")[0]
    columns = ", ".join(f"CAST(src.{c.name} AS {types[c.type]}) AS {c.name}" for c in table.columns)
    where = "" if name == "patients" else (
        f" WHERE src.patient_id IN (SELECT patient_id FROM {patients})"
    )  # fmt: skip
    order = ", ".join(
        ["src.patient_id", *(f"src.{c.name}" for c in table.columns[1:] if c.type == "date")]
    )
    return f"SELECT {columns} FROM ({inner}) AS src{where} ORDER BY {order}"


def create_table_sql(name: str) -> str:
    table = model.table(name)
    cols = ", ".join(f"{c.name} {DUCKDB_TYPES[c.type]}" for c in table.columns)
    return f"CREATE TABLE {name} ({cols})"
