"""Dummy data: how fast a requested population size is reached, adaptive against uniform draws.

    .venv/bin/python -m bench.sde_dummy [--quick]

Two definitions: a common population (adults with any clinical event) and a rare one (women
over 80 with type 2 diabetes, no SGLT2 inhibitor and a recent HbA1c above 75). For each, the
generator is timed reaching the size with its adaptive intensities and with every intensity
drawn equally (the way a generator without feedback draws), and the attempts each needed.
"""

from __future__ import annotations

import argparse
import time

from carelight.sde.query import codelist, create_dataset, tables
from carelight.sde.query.dummy import DummyDataError, generate_tables

ev, labs, meds, p = tables.clinical_events, tables.lab_results, tables.medications, tables.patients


def common():
    ds = create_dataset()
    ds.define_population((p.age_on("2024-01-01") >= 18) & ev.exists_for_patient())
    ds.events = ev.count_for_patient()
    return ds.to_query()


def rare():
    dm = codelist(["44054006"], "snomedct")
    sglt2 = codelist(["25290511000001101"], "dmd")
    ds = create_dataset()
    recent = labs.where(labs.code == "59261-8").where(labs.date.is_on_or_after("2023-01-01"))
    hba1c = recent.sort_by(recent.date).last_for_patient().value
    ds.define_population(
        (p.age_on("2024-01-01") >= 80)
        & ev.where(ev.snomedct_code.is_in(dm)).exists_for_patient()
        & ~meds.where(meds.dmd_code.is_in(sglt2)).exists_for_patient()
        & (hba1c > 75)
        & (p.sex == "female")
    )
    ds.hba1c = hba1c
    return ds.to_query()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    size = 200 if parser.parse_args().quick else 5_000
    print(f"dummy data, {size} patients")
    for name, query in (("common", common()), ("rare", rare())):
        for adaptive in (True, False):
            started = time.perf_counter()
            report: dict = {}
            try:
                tables_ = generate_tables(
                    query, size, seed=1, adaptive=adaptive, time_budget=300, report=report
                )
                n = len(tables_["patients"])
                outcome = f"{n} patients from {report['attempts']:,} attempts"
            except DummyDataError as e:
                outcome = f"failed: {e}"
            took = time.perf_counter() - started
            label = "adaptive" if adaptive else "uniform "
            print(f"  {name:6} {label} {took:7.2f} s  {outcome}")


if __name__ == "__main__":
    main()
