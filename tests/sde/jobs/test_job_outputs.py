"""Output classification: row-level files stay inside (the read path refuses them, always),
aggregate files go to checking, disallowed types and sizes are never read out."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from carelight.sde.jobs.outputs import (
    DisallowedOutputError,
    OutputRules,
    RowLevelOutputError,
    UnknownOutputError,
    classify_outputs,
    read_for_checking,
    read_manifest,
    write_manifest,
)

IDS = [f"{i:032x}" for i in range(1000, 1040)]  # pseudonym-like: 32 hex characters


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "dataset").mkdir(parents=True)
    (run / "outputs").mkdir()
    rows = ["patient_id,sex,age"] + [
        f"{pid},{'female' if i % 2 else 'male'},{40 + i}" for i, pid in enumerate(IDS)
    ]
    (run / "dataset" / "dataset.csv").write_text("\n".join(rows) + "\n")
    return run


def _classify(run: Path, rules: OutputRules | None = None):
    manifest = classify_outputs(
        run / "outputs", dataset_path=run / "dataset" / "dataset.csv", rules=rules
    )
    write_manifest(run, manifest)
    return {f.path: f for f in manifest.files}


def _put(run: Path, name: str, content: str | bytes) -> Path:
    path = run / "outputs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    return path


def test_a_small_aggregate_table_is_aggregate(run_dir):
    _put(run_dir, "counts.csv", "sex,n\nfemale,20\nmale,20\n")
    _put(run_dir, "figures/summary.md", "# Summary\n\nMean age 59.5.\n")
    _put(run_dir, "model.json", json.dumps({"coef": {"female": 0.3}, "n": 40}))
    files = _classify(run_dir)
    assert {p: f.kind for p, f in files.items()} == {
        "counts.csv": "aggregate",
        "figures/summary.md": "aggregate",
        "model.json": "aggregate",
    }
    assert read_for_checking(run_dir, "counts.csv") == b"sex,n\nfemale,20\nmale,20\n"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("ids.csv", "Patient ID,value\nx,1\n", "identifier column"),
        ("pseudo.tsv", "pseudonym\tn\nabc\t3\n", "identifier column"),
        ("leak.txt", f"the oldest is {IDS[7]}\n", "pseudonym(s) from the dataset"),
        ("svg.svg", f"<svg><text>{IDS[3]}</text></svg>", "pseudonym(s) from the dataset"),
        ("shape.csv", "age\n" + "\n".join(str(40 + i) for i in range(25)), "person-level shape"),
        ("rows.json", json.dumps([{"nhs_number": "x", "n": 1}]), "identifier key"),
        ("frame.parquet", b"PAR1....PAR1", "data format .parquet"),
        ("pickled.pkl", b"\x80\x04.", "data format .pkl"),
    ],
)
def test_row_level_files_are_recognised_and_never_handed_out(run_dir, name, content, reason):
    _put(run_dir, name, content)
    entry = _classify(run_dir)[name]
    assert entry.kind == "row_level"
    assert any(reason in r for r in entry.reasons), entry.reasons
    with pytest.raises(RowLevelOutputError, match="cannot be downloaded"):
        read_for_checking(run_dir, name)


def test_a_copy_of_the_dataset_is_row_level(run_dir):
    _put(run_dir, "copy.csv", (run_dir / "dataset" / "dataset.csv").read_bytes())
    entry = _classify(run_dir)["copy.csv"]
    assert entry.kind == "row_level" and entry.reasons == ("a copy of the job's dataset",)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("script.py", "print(1)\n", "file type .py"),
        ("noext", "x", "file type (none)"),
        ("page.html", "<p>1</p>", "file type .html"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), "not UTF-8"),
        ("broken.json", "{not json", "not valid JSON"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("wide.csv", "a\n" + "x" * 200_000 + "\n", "not a readable table"),
    ],
)
def test_disallowed_types_are_not_released(run_dir, name, content, reason):
    _put(run_dir, name, content)
    entry = _classify(run_dir)[name]
    assert entry.kind == "disallowed"
    assert any(reason in r for r in entry.reasons), entry.reasons
    with pytest.raises(DisallowedOutputError):
        read_for_checking(run_dir, name)


def test_a_file_over_the_size_limit_is_disallowed(run_dir):
    _put(run_dir, "big.csv", "n\n" + "1\n" * 600)
    entry = _classify(run_dir, OutputRules(max_file_bytes=1000))["big.csv"]
    assert entry.kind == "disallowed" and "larger than 1000 bytes" in entry.reasons[0]


def test_a_symlink_out_of_the_folder_is_never_followed(run_dir, tmp_path):
    secret = tmp_path / "host-secret.csv"
    secret.write_text("n\n1\n")
    os.symlink(secret, run_dir / "outputs" / "link.csv")
    os.symlink(tmp_path, run_dir / "outputs" / "linked-dir")
    os.mkfifo(run_dir / "outputs" / "pipe.csv")
    files = _classify(run_dir)
    for name in ("link.csv", "linked-dir", "pipe.csv"):
        assert files[name].kind == "disallowed", name
        assert files[name].reasons == ("not a regular file",)
        assert files[name].sha256 is None
        with pytest.raises(DisallowedOutputError):
            read_for_checking(run_dir, name)


def test_a_file_changed_after_classification_is_refused(run_dir):
    path = _put(run_dir, "counts.csv", "sex,n\nfemale,20\nmale,20\n")
    _classify(run_dir)
    path.write_text("sex,n\nfemale,1\nmale,39\n")
    with pytest.raises(DisallowedOutputError, match="changed after it was classified"):
        read_for_checking(run_dir, "counts.csv")


def test_unknown_names_and_traversal_are_refused(run_dir):
    _put(run_dir, "counts.csv", "n\n3\n")
    _classify(run_dir)
    for name in ("other.csv", "../dataset/dataset.csv", "/etc/passwd"):
        with pytest.raises(UnknownOutputError):
            read_for_checking(run_dir, name)


def test_the_manifest_round_trips_and_is_required(run_dir, tmp_path):
    _put(run_dir, "counts.csv", "n\n3\n")
    files = _classify(run_dir)
    manifest = read_manifest(run_dir)
    assert {f.path: f for f in manifest.files} == files
    assert manifest.of_kind("aggregate")[0].sha256 == files["counts.csv"].sha256
    with pytest.raises(FileNotFoundError, match="no output manifest"):
        read_for_checking(tmp_path, "counts.csv")


def test_an_unreadable_dataset_makes_text_outputs_row_level(run_dir):
    (run_dir / "dataset" / "dataset.csv").write_text("patient_id\n" + "x" * 200_000 + "\n")
    _put(run_dir, "counts.csv", "n\n3\n")
    entry = _classify(run_dir)["counts.csv"]
    assert entry.kind == "row_level"
    assert "could not be read" in entry.reasons[0]


def test_a_pseudonym_from_the_store_but_not_the_dataset_is_row_level(run_dir, store):
    # The analysis can read the whole store: an output may name someone outside its dataset.
    import duckdb

    outsider = (
        duckdb.connect()
        .execute(f"SELECT patient_id FROM read_parquet('{store}/parquet/patients.parquet') LIMIT 1")
        .fetchone()[0]
    )
    assert outsider.encode() not in {i.encode() for i in IDS}
    _put(run_dir, "note.txt", f"interesting case: {outsider}\n")
    _put(run_dir, "counts.csv", "n\n3\n")
    manifest = classify_outputs(
        run_dir / "outputs", dataset_path=run_dir / "dataset" / "dataset.csv", store_dir=store
    )
    files = {f.path: f for f in manifest.files}
    assert files["note.txt"].kind == "row_level"
    assert files["note.txt"].reasons == ("contains 1 pseudonym(s) from the research store",)
    assert files["counts.csv"].kind == "aggregate"
