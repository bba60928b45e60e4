"""The SDE query language on DuckDB against the same dataset written by hand (issue 8).

Builds a research store (100,000 people, 4 million clinical events, 2 million medications and
1 million lab results with HbA1c and cholesterol) directly in DuckDB with SQL, seeded and
cached in ``bench/.data/sde-query-<people>-<seed>/`` (built in a child process, so its memory
does not count below). Then times the issue's ten-variable definition:

    age, sex, ever had a diabetes code, date of the first one, HbA1c tests in the last year,
    latest cholesterol value, hypertension code in the last five years, statins issued in the
    last year, date of the last clinical event, ever prescribed an antihypertensive

written in Carelight's language (building the definition, the query model, sqlglot, SQL text,
the run and the rows as dicts: everything a researcher's run costs) against the same thing
written by hand as one DuckDB query (rows as tuples). Both must give the same rows. Then the
in-memory engine on a smaller store, for scale.

Goal: Carelight <= 1.5 x the hand-written query; peak memory < 1 GB.

    .venv/bin/python -m bench.sde_query [--quick] [--people N] [--repeat N] [--spark]

``--spark`` also runs the definition on the Spark engine over the store's Parquet files (written
on first use), for scale; it has no target and ``make bench`` does not ask for it.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.run import DATA_DIR, machine_info

TARGET_RATIO = 1.5
DATA_VERSION = 2  # bump when build_store changes, so cached stores are rebuilt
TARGET_PEAK_MB = 1024
INDEX = "2024-01-01"

DIABETES = ["73211009", "44054006", "46635009", "190330002", "313436004"]
HYPERTENSION = ["38341003", "59621000", "1201005"]
HBA1C, CHOLESTEROL = "4548-4", "2093-3"
OTHER_LABS = ["33914-3", "39156-5"]


def _sctid(n: int, namespace: str = "") -> str:
    from carelight.sde.query.codelists import verhoeff_check_digit

    body = f"{n}{namespace}{'10' if namespace else '00'}"
    return body + verhoeff_check_digit(body)


# Filler codes are made-up but valid SCTIDs; medicine groups are made-up dm+d-style ids.
FILLER = [_sctid(1_000_000 + k) for k in range(300)]
STATINS = [_sctid(300_000 + k, "1000001") for k in range(12)]
ANTIHYPERTENSIVES = [_sctid(400_000 + k, "1000001") for k in range(20)]
OTHER_MEDICINES = [_sctid(500_000 + k, "1000001") for k in range(400)]


def sizes(people: int) -> dict[str, int]:
    return {
        "people": people,
        "clinical_events": people * 40,
        "medications": people * 20,
        "lab_results": people * 10,
    }


# --- Building the store ------------------------------------------------------------------


def _list(values: list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def build_store(folder: Path, people: int, seed: int) -> None:
    """Write the store's research.duckdb with SQL (deterministic: hashes of row numbers)."""
    import duckdb

    from carelight.sde.query.store import create_tables

    n = sizes(people)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "research.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    create_tables(con)

    def h(salt: int) -> str:
        # A deterministic pseudo-random BIGINT in [0, 2^31) from the row number, seed and salt.
        return f"(hash(i, {seed}, {salt}) % 2147483648)::BIGINT"

    pid = f"'p' || lpad(({h(1)} % {people})::VARCHAR, 7, '0')"
    con.execute(
        f"""
        INSERT INTO patients
        SELECT 'p' || lpad(i::VARCHAR, 7, '0'),
               CASE WHEN {h(2)} % 100 < 49 THEN 'male' WHEN {h(2)} % 100 < 99 THEN 'female'
                    ELSE 'unknown' END,
               (DATE '1925-01-01' + to_months(({h(3)} % 1176)::INTEGER))::DATE,
               NULL,
               'E0' || lpad(({h(4)} % 30000)::VARCHAR, 7, '0')
        FROM range({people}) r(i)
        """
    )
    con.execute(
        f"""
        INSERT INTO clinical_events
        SELECT {pid},
               (DATE '2014-01-01' + ({h(5)} % 3650)::INTEGER)::DATE,
               CASE WHEN {h(6)} % 1000 < 10 THEN {_list(DIABETES)}[1 + {h(7)} % {len(DIABETES)}]
                    WHEN {h(6)} % 1000 < 30 THEN {_list(HYPERTENSION)}[1 + {h(7)} % {len(HYPERTENSION)}]
                    ELSE {_list(FILLER)}[1 + {h(7)} % {len(FILLER)}] END,
               CASE WHEN {h(8)} % 10 = 0 THEN ({h(9)} % 2000) / 10.0 END
        FROM range({n["clinical_events"]}) r(i)
        """
    )
    con.execute(
        f"""
        INSERT INTO medications
        SELECT {pid},
               (DATE '2014-01-01' + ({h(5)} % 3650)::INTEGER)::DATE,
               CASE WHEN {h(6)} % 100 < 8 THEN {_list(STATINS)}[1 + {h(7)} % {len(STATINS)}]
                    WHEN {h(6)} % 100 < 14
                        THEN {_list(ANTIHYPERTENSIVES)}[1 + {h(7)} % {len(ANTIHYPERTENSIVES)}]
                    ELSE {_list(OTHER_MEDICINES)}[1 + {h(7)} % {len(OTHER_MEDICINES)}] END
        FROM range({n["medications"]}) r(i)
        """
    )
    # Lab results: the k-th result of a patient falls in its own 290-day window, so no patient
    # has two results on one day (the hand-written query's arg_max needs no tie-break).
    labs = [HBA1C, CHOLESTEROL, *OTHER_LABS]
    con.execute(
        f"""
        INSERT INTO lab_results
        SELECT 'p' || lpad((i % {people})::VARCHAR, 7, '0'),
               (DATE '2016-03-01' + ((i // {people}) * 290 + {h(5)} % 290)::INTEGER)::DATE,
               {_list(labs)}[1 + {h(6)} % {len(labs)}],
               round(({h(9)} % 1000) / 10.0, 1),
               'mmol/mol'
        FROM range({n["lab_results"]}) r(i)
        """
    )
    con.execute("CHECKPOINT")
    con.close()
    (folder / "ready").write_text(f"{n}\n")


def ensure_store(people: int, seed: int) -> Path:
    folder = DATA_DIR / f"sde-query-v{DATA_VERSION}-{people}-{seed}"
    if not (folder / "ready").exists():
        print(f"building the research store for {people:,} people in {folder} …", flush=True)
        started = time.perf_counter()
        args = [sys.executable, "-m", "bench.sde_query", "--build", str(folder)]
        args += ["--people", str(people), "--seed", str(seed)]
        subprocess.run(args, check=True)
        print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)
    return folder


# --- The definition, both ways -----------------------------------------------------------


def carelight_definition():
    """The issue's ten variables in Carelight's language; returns the query model."""
    from carelight.sde.query import codelist, create_dataset, tables, years

    diabetes = codelist(DIABETES, "snomedct")
    hypertension = codelist(HYPERTENSION, "snomedct")
    statins = codelist(STATINS, "dmd")
    antihypertensives = codelist(ANTIHYPERTENSIVES, "dmd")
    patients, events = tables.patients, tables.clinical_events
    meds, labs = tables.medications, tables.lab_results

    dataset = create_dataset()
    dataset.define_population(patients.exists_for_patient())
    dataset.age = patients.age_on(INDEX)
    dataset.sex = patients.sex
    diabetes_events = events.where(events.snomedct_code.is_in(diabetes))
    dataset.has_diabetes = diabetes_events.exists_for_patient()
    dataset.first_diabetes_date = diabetes_events.date.minimum_for_patient()
    last_year = labs.date.is_on_or_between(INDEX - years(1), INDEX)
    dataset.hba1c_tests_last_year = (
        labs.where(labs.code == HBA1C).where(last_year).count_for_patient()
    )
    cholesterol = labs.where(labs.code == CHOLESTEROL).sort_by(labs.date)
    dataset.latest_cholesterol = cholesterol.last_for_patient().value
    dataset.hypertension_last_5_years = (
        events.where(events.snomedct_code.is_in(hypertension))
        .where(events.date.is_on_or_between(INDEX - years(5), INDEX))
        .exists_for_patient()
    )
    dataset.statins_last_year = (
        meds.where(meds.dmd_code.is_in(statins))
        .where(meds.date.is_on_or_between(INDEX - years(1), INDEX))
        .count_for_patient()
    )
    dataset.last_event_date = events.date.maximum_for_patient()
    dataset.ever_antihypertensive = meds.where(
        meds.dmd_code.is_in(antihypertensives)
    ).exists_for_patient()
    return dataset.to_query()


def hand_written_sql() -> str:
    """The same dataset as one DuckDB query, written the way an expert would."""
    return f"""
    WITH ev AS (
        SELECT patient_id,
               bool_or(snomedct_code IN {_in(DIABETES)}) AS has_diabetes,
               min(date) FILTER (WHERE snomedct_code IN {_in(DIABETES)}) AS first_diabetes_date,
               bool_or(snomedct_code IN {_in(HYPERTENSION)}
                       AND date BETWEEN DATE '{INDEX}' - INTERVAL 5 YEAR AND DATE '{INDEX}')
                   AS hypertension_last_5_years,
               max(date) AS last_event_date
        FROM clinical_events GROUP BY patient_id
    ),
    lab AS (
        SELECT patient_id,
               count(*) FILTER (WHERE code = '{HBA1C}'
                   AND date BETWEEN DATE '{INDEX}' - INTERVAL 1 YEAR AND DATE '{INDEX}') AS hba1c,
               arg_max(value, date) FILTER (WHERE code = '{CHOLESTEROL}') AS cholesterol
        FROM lab_results WHERE code IN ('{HBA1C}', '{CHOLESTEROL}') GROUP BY patient_id
    ),
    med AS (
        SELECT patient_id,
               count(*) FILTER (WHERE dmd_code IN {_in(STATINS)}
                   AND date BETWEEN DATE '{INDEX}' - INTERVAL 1 YEAR AND DATE '{INDEX}') AS statins,
               bool_or(dmd_code IN {_in(ANTIHYPERTENSIVES)}) AS antihypertensive
        FROM medications GROUP BY patient_id
    )
    SELECT p.patient_id,
           date_part('year', age(DATE '{INDEX}', p.date_of_birth))::BIGINT AS age,
           p.sex,
           coalesce(ev.has_diabetes, false),
           ev.first_diabetes_date,
           coalesce(lab.hba1c, 0),
           lab.cholesterol,
           coalesce(ev.hypertension_last_5_years, false),
           coalesce(med.statins, 0),
           ev.last_event_date,
           coalesce(med.antihypertensive, false)
    FROM patients p
    LEFT JOIN ev USING (patient_id)
    LEFT JOIN lab USING (patient_id)
    LEFT JOIN med USING (patient_id)
    ORDER BY p.patient_id
    """


def _in(codes: list[str]) -> str:
    return "(" + ", ".join(f"'{c}'" for c in codes) + ")"


# --- Timing ------------------------------------------------------------------------------


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def run_carelight(con):
    from carelight.sde.query.engines.duckdb import DuckDBEngine

    return DuckDBEngine(connection=con).get_rows(carelight_definition())


def run_hand(con):
    return con.execute(hand_written_sql()).fetchall()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def compare(folder: Path, repeat: int) -> dict:
    import duckdb

    con = duckdb.connect(str(folder / "research.duckdb"), read_only=True)
    run_hand(con), run_carelight(con)  # warm the file cache and DuckDB's buffers
    hand_times, ours_times = [], []
    for _ in range(repeat):
        hand, wall, cpu = _timed(lambda: run_hand(con))
        hand_times.append((wall, cpu))
        ours, wall, cpu = _timed(lambda: run_carelight(con))
        ours_times.append((wall, cpu))
    ours_tuples = [tuple(r.values()) for r in ours]
    mismatches = sum(1 for a, b in zip(hand, ours_tuples, strict=True) if a != b)
    if len(hand) != len(ours_tuples) or mismatches:
        raise SystemExit(
            f"the two queries disagree: {len(hand)} vs {len(ours_tuples)} rows, {mismatches} differ"
        )
    compile_time = _timed(lambda: _compile_only())[1]
    con.close()
    return {
        "rows": len(hand),
        "hand_wall": statistics.median(w for w, _ in hand_times),
        "hand_cpu": statistics.median(c for _, c in hand_times),
        "ours_wall": statistics.median(w for w, _ in ours_times),
        "ours_cpu": statistics.median(c for _, c in ours_times),
        "compile": compile_time,
        "nonnull": _coverage(ours),
    }


def _compile_only() -> str:
    from carelight.sde.query.engines.duckdb import DuckDBCompiler

    return DuckDBCompiler().sql(carelight_definition())


def _coverage(rows: list[dict]) -> str:
    """How many rows have a value in each column: a check the data exercise every variable."""
    names = [k for k in rows[0] if k != "patient_id"]
    parts = []
    for k in names:
        present = sum(1 for r in rows if r[k] not in (None, False, 0))
        parts.append(f"{k} {100 * present / len(rows):.0f}%")
    return ", ".join(parts)


def in_memory(folder: Path) -> dict:
    from carelight.sde.query.engines.inmemory import InMemoryEngine
    from carelight.sde.query.store import read_rows

    data, load_wall, _ = _timed(lambda: read_rows(folder))
    engine = InMemoryEngine(data)
    rows, wall, cpu = _timed(lambda: engine.get_rows(carelight_definition()))
    import duckdb

    con = duckdb.connect(str(folder / "research.duckdb"), read_only=True)
    hand, hand_wall, _ = _timed(lambda: run_hand(con))
    con.close()
    if [tuple(r.values()) for r in rows] != hand:
        raise SystemExit("the in-memory engine disagrees with the hand-written query")
    return {"rows": len(rows), "load": load_wall, "wall": wall, "cpu": cpu, "hand_wall": hand_wall}


def on_spark(folder: Path) -> dict:
    """The definition on the Spark engine (local mode, every core) over the store's Parquet."""
    import duckdb

    from carelight.sde.query.engines.spark import SparkEngine, local_session
    from carelight.sde.query.store import PARQUET_DIR, export_parquet

    if not (folder / PARQUET_DIR / "ready").exists():
        con = duckdb.connect(str(folder / "research.duckdb"), read_only=True)
        export_parquet(con, folder)
        con.close()
        (folder / PARQUET_DIR / "ready").write_text("ok\n")
    session, start_wall, _ = _timed(local_session)
    engine = SparkEngine(folder, session=session)
    engine.get_rows(carelight_definition())  # warm-up: JIT, file listing
    rows, wall, cpu = _timed(lambda: engine.get_rows(carelight_definition()))
    con = duckdb.connect(str(folder / "research.duckdb"), read_only=True)
    hand = run_hand(con)
    con.close()
    engine.close()
    session.stop()
    if [tuple(r.values()) for r in rows] != hand:
        raise SystemExit("the Spark engine disagrees with the hand-written DuckDB query")
    return {"rows": len(rows), "start": start_wall, "wall": wall, "cpu": cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 people (1,000 in memory)")
    parser.add_argument("--people", type=int, default=None)
    parser.add_argument("--memory-people", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--spark", action="store_true", help="also time the Spark engine (local mode) on the store"
    )
    parser.add_argument("--build", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    people = args.people or (10_000 if args.quick else 100_000)
    if args.build:
        build_store(args.build, people, args.seed)
        return 0
    memory_people = args.memory_people or (1_000 if args.quick else 5_000)

    folder = ensure_store(people, args.seed)
    small = ensure_store(memory_people, args.seed)
    n = sizes(people)
    print(
        f"SDE query: {people:,} people, {n['clinical_events']:,} clinical events, "
        f"{n['medications']:,} medications, {n['lab_results']:,} lab results "
        f"(load average {os.getloadavg()[0]:.2f})",
        flush=True,
    )
    result = compare(folder, args.repeat)
    ratio = result["ours_wall"] / result["hand_wall"]
    cpu_ratio = result["ours_cpu"] / result["hand_cpu"]
    peak = peak_mb()
    print(f"  rows: {result['rows']:,}, identical; variables present: {result['nonnull']}")
    print(
        f"  hand-written DuckDB: {result['hand_wall']:.3f} s wall, {result['hand_cpu']:.3f} s CPU "
        f"(median of {args.repeat})"
    )
    print(
        f"  Carelight on DuckDB: {result['ours_wall']:.3f} s wall, {result['ours_cpu']:.3f} s CPU "
        f"(of which compiling {1000 * result['compile']:.1f} ms)"
    )
    print(
        f"  ratio: {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU (goal <= {TARGET_RATIO}x): "
        f"{'pass' if ratio <= TARGET_RATIO else 'FAIL'}"
    )
    print(
        f"  peak memory: {peak:.0f} MB (goal < {TARGET_PEAK_MB} MB): {'pass' if peak < TARGET_PEAK_MB else 'FAIL'}"
    )
    mem = in_memory(small)
    print(
        f"  in-memory engine, {memory_people:,} people: {mem['wall']:.2f} s wall, {mem['cpu']:.2f} s CPU "
        f"(+ {mem['load']:.2f} s reading the store); the hand-written DuckDB query: "
        f"{mem['hand_wall']:.3f} s"
    )
    if args.spark:
        spark = on_spark(folder)
        print(
            f"  Spark engine (local[*]), {people:,} people: {spark['wall']:.2f} s wall after a "
            f"warm-up run (session start {spark['start']:.1f} s; the driver's CPU "
            f"{spark['cpu']:.2f} s, executors not counted); rows identical"
        )
    info = machine_info()
    print(f"  machine: {info}")
    print(f"  load average after: {os.getloadavg()}")
    return 0 if ratio <= TARGET_RATIO and peak < TARGET_PEAK_MB else 1


if __name__ == "__main__":
    sys.exit(main())
