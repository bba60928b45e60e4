"""Linkage features: normalisation, the NHS number and its status, and the two readers."""

from __future__ import annotations

import orjson
import pytest

from carelight.identity.linkage import features, records_from_folder, records_from_store
from carelight.identity.linkage.features import (
    NHS_VERIFICATION_EXTENSION,
    normalise_postcode,
    normalise_text,
)
from carelight.identity.linkage.nicknames import name_group

NHS = "https://fhir.nhs.uk/Id/nhs-number"
VALID_NHS = "9434765919"


def patient(pid="Y99101-1", **extra) -> dict:
    resource = {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"use": "official", "family": "Smith", "given": ["Margaret"]}],
        "gender": "female",
        "birthDate": "1950-03-12",
        "address": [{"use": "home", "line": ["12 Mill Lane"], "postalCode": "YX10 1AB"}],
    }
    resource.update(extra)
    return resource


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Zoë", "zoe"),
        ("O'Brien", "obrien"),
        ("Smith-Jones", "smith jones"),
        ("  Anne  Marie ", "anne marie"),
        ("St. John", "st john"),
        ("---", None),
        (None, None),
    ],
)
def test_names_are_normalised(raw, expected):
    assert normalise_text(raw) == expected


def test_postcode_and_district():
    assert normalise_postcode("yx10 1ab") == ("YX101AB", "YX10")
    assert normalise_postcode("YX1 2CD") == ("YX12CD", "YX1")
    assert normalise_postcode("not a postcode") == ("NOTAPOSTCODE", None)
    assert normalise_postcode("") == (None, None)


def test_nickname_groups_join_short_and_formal_names():
    assert name_group("peggy") == name_group("margaret") == name_group("maggie")
    assert name_group("bill") == name_group("william")
    assert name_group("margaret") != name_group("william")
    assert name_group("zebedee") == "zebedee"


def test_a_patient_becomes_one_row():
    row = features(
        patient(
            identifier=[
                {
                    "system": NHS,
                    "value": VALID_NHS,
                    "extension": [
                        {
                            "url": NHS_VERIFICATION_EXTENSION,
                            "valueCodeableConcept": {"coding": [{"code": "01"}]},
                        }
                    ],
                }
            ],
            name=[
                {"use": "official", "family": "Smith", "given": ["Margaret", "Ann"]},
                {"use": "old", "family": "Brown", "given": ["Margaret"]},
            ],
            meta={"source": "https://fhir.carelight.example/Y99101/fhir"},
        )
    )
    assert row.unique_id == "Y99101-1"
    assert row.source == "https://fhir.carelight.example/Y99101/fhir"
    assert (row.nhs_number, row.nhs_verification) == (VALID_NHS, "01")
    assert (row.first_name, row.middle_name, row.given_names) == ("margaret", "ann", "margaret ann")
    assert row.first_name_group == name_group("margaret")
    assert (row.family_name, row.previous_family_name) == ("smith", "brown")
    assert (row.dob, row.dob_year, row.dob_month, row.dob_day) == ("1950-03-12", "1950", "03", "12")
    assert (row.sex, row.postcode, row.postcode_district) == ("female", "YX101AB", "YX10")
    assert row.address_line == "12 mill lane"


def test_an_invalid_nhs_number_is_ignored_and_the_source_falls_back_to_the_id_prefix():
    row = features(patient("X9A-77", identifier=[{"system": NHS, "value": "9434765918"}]))
    assert row.nhs_number is None and row.nhs_verification is None
    assert row.source == "X9A"


def test_missing_and_partial_details_are_none():
    row = features(
        {"resourceType": "Patient", "id": "X99LB-3", "birthDate": "1950-03", "gender": "unknown"}
    )
    assert row.dob is None and (row.dob_year, row.dob_month) == ("1950", "03")
    assert row.first_name is None and row.family_name is None
    assert row.sex is None and row.postcode is None and row.address_line is None


def test_only_patients_with_ids_are_accepted():
    with pytest.raises(ValueError, match="Patient"):
        features({"resourceType": "Observation", "id": "x"})
    with pytest.raises(ValueError, match="logical id"):
        features({"resourceType": "Patient"})


def test_records_from_folder_reads_every_source(tmp_path):
    for source, ids in (("Y99101", ["Y99101-1", "Y99101-2"]), ("X9A", ["X9A-1"])):
        (tmp_path / source).mkdir()
        lines = b"".join(orjson.dumps(patient(i)) + b"\n" for i in ids)
        (tmp_path / source / "Patient.ndjson").write_bytes(lines)
    (tmp_path / "X9A" / "Observation.ndjson").write_bytes(b'{"resourceType": "Observation"}\n')
    ids = [r.unique_id for r in records_from_folder(tmp_path)]
    assert ids == ["X9A-1", "Y99101-1", "Y99101-2"]


def test_records_from_folder_says_when_there_is_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Patient\.ndjson"):
        records_from_folder(tmp_path)


def test_records_from_store_reads_current_patients_only_in_batches(store):
    for n in range(5):
        store.create(patient(f"Y99101-{n}"), res_id=f"Y99101-{n}")
    store.create(
        {
            "resourceType": "Observation",
            "id": "obs",
            "status": "final",
            "code": {"text": "x"},
        },
        res_id="obs",
    )
    store.delete("Patient", "Y99101-3")
    ids = sorted(r.unique_id for r in records_from_store(store, batch_size=2))
    assert ids == ["Y99101-0", "Y99101-1", "Y99101-2", "Y99101-4"]
