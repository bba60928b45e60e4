"""The Patient-only generator (for the million-record linkage benchmark) writes exactly the
Patient records and ground-truth rows that the full ``carelight synth`` generator writes."""

from __future__ import annotations

import orjson

from carelight.synth.fhir import Output
from carelight.synth.patients import patients
from carelight.synth.writer import person_records


def test_patients_are_the_full_generators_patients():
    for index in range(400):
        out = Output()
        person_records(7, index, out)
        full = sorted(
            (code, line)
            for (code, kind), lines in out.lines.items()
            if kind == "Patient"
            for line in lines
        )
        mine = patients(7, index)
        assert sorted((code, orjson.dumps(p)) for code, p, _ in mine) == full
        assert sorted(row for _, _, row in mine) == sorted(out.truth)
