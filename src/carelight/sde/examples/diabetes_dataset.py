"""An example dataset definition: adults registered on 1 January 2024, their diabetes and care.

Run it on a research store:

    carelight sde run src/carelight/sde/examples/diabetes_dataset.py \
        --store STORE --engine duckdb --output output/dataset.csv
    carelight sde run … --measures --output output/measures.csv

Codelist paths are relative to this file.
"""

from carelight.sde.query import (
    INTERVAL,
    case,
    codelist_from_csv,
    create_dataset,
    create_measures,
    months,
    tables,
    when,
    years,
)

index_date = "2024-01-01"

diabetes = codelist_from_csv("codelists/diabetes.csv", column="code", category_column="type")
hypertension = codelist_from_csv("codelists/hypertension.csv", column="code")
HBA1C = "4548-4"  # LOINC: haemoglobin A1c in blood
CHOLESTEROL = "2093-3"  # LOINC: cholesterol in serum or plasma

patients = tables.patients
events = tables.clinical_events
labs = tables.lab_results
registrations = tables.practice_registrations

registered = registrations.where(
    registrations.start_date.is_on_or_before(index_date)
    & (registrations.end_date.is_null() | registrations.end_date.is_on_or_after(index_date))
).exists_for_patient()
age = patients.age_on(index_date)
alive = patients.date_of_death.is_null() | patients.date_of_death.is_after(index_date)

dataset = create_dataset()
dataset.define_population(registered & alive & (age >= 18))
dataset.configure_dummy_data(population_size=200)

dataset.age = age
dataset.age_band = case(
    when(age < 40).then("18-39"),
    when(age < 65).then("40-64"),
    otherwise="65+",
)
dataset.sex = patients.sex

diabetes_events = events.where(events.snomedct_code.is_in(diabetes)).sort_by(events.date)
first_diabetes = diabetes_events.first_for_patient()
dataset.has_diabetes = diabetes_events.exists_for_patient()
dataset.diabetes_date = first_diabetes.date
dataset.diabetes_type = first_diabetes.snomedct_code.to_category(diabetes)
dataset.years_with_diabetes = (index_date - first_diabetes.date).years

last_year = labs.date.is_on_or_between(index_date - years(1), index_date)
dataset.hba1c_tests_last_year = labs.where(labs.code == HBA1C).where(last_year).count_for_patient()
dataset.latest_hba1c = labs.where(labs.code == HBA1C).sort_by(labs.date).last_for_patient().value
dataset.latest_cholesterol = (
    labs.where(labs.code == CHOLESTEROL).sort_by(labs.date).last_for_patient().value
)
dataset.hypertension_last_5_years = (
    events.where(events.snomedct_code.is_in(hypertension))
    .where(events.date.is_on_or_between(index_date - years(5), index_date))
    .exists_for_patient()
)

# Measures: each month of 2023, the share of people with diabetes who had an HbA1c test.
hba1c_in_month = labs.where(labs.code == HBA1C).where(
    labs.date.is_on_or_between(INTERVAL.start_date, INTERVAL.end_date)
)
has_diabetes_by_then = (
    events.where(events.snomedct_code.is_in(diabetes))
    .where(events.date.is_on_or_before(INTERVAL.end_date))
    .exists_for_patient()
)
measures = create_measures()
measures.define_measure(
    "hba1c_tested",
    numerator=hba1c_in_month.exists_for_patient(),
    denominator=has_diabetes_by_then & patients.exists_for_patient(),
    group_by={"sex": patients.sex},
    intervals=months(12).starting_on("2023-01-01"),
)
