"""Classify every file a job wrote, and the one door aggregate files leave by.

Each output is one of:

- **row_level**: data about individual people. It stays inside the environment for ever:
  :func:`read_for_checking` refuses it, by design, whoever asks. A file is row-level when it
  is in a data format nobody can review by eye (Parquet, Feather, pickle, a database, NumPy),
  has a column named like a patient identifier or pseudonym, contains any pseudonym from the
  job's dataset or the research store, is the dataset itself, or has a person-level shape
  (at least half as many rows as the dataset has people).
- **aggregate**: a small table, text or image that goes to disclosure control
  (``carelight.sde.disclosure``) and then to two output checkers.
- **disallowed**: a type we do not release (anything not on the list), a file larger than the
  limit, text that is not UTF-8, or not a regular file (a symlink, a FIFO): never read.

The classification is written to ``manifest.json`` beside the outputs with each file's size
and SHA-256; :func:`read_for_checking` re-checks the hash, so a file changed after
classification is refused too. Reading never follows a symlink (the job wrote these files and
could point one at a host path).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

OutputKind = Literal["row_level", "aggregate", "disallowed"]
MANIFEST = "manifest.json"

#: Reviewable by a person, so candidates for release after disclosure control.
TABLE_SUFFIXES = frozenset({".csv", ".tsv"})
TEXT_SUFFIXES = frozenset({".txt", ".md", ".json"})
IMAGE_SUFFIXES = frozenset({".png", ".svg"})
#: Data formats: they hold rows, not results, and cannot be checked by eye.
DATA_SUFFIXES = frozenset(
    {".parquet", ".feather", ".arrow", ".pkl", ".pickle", ".npy", ".npz", ".duckdb"}
    | {".db", ".sqlite", ".sqlite3", ".h5", ".hdf5", ".dta", ".sav", ".rds", ".rdata"}
)

#: Column names (normalised: lower case, runs of other characters as "_") that identify people.
IDENTIFIER_COLUMNS = frozenset(
    {"patient_id", "patientid", "pseudonym", "pseudo_id", "person_id", "personid"}
    | {"nhs_number", "nhsnumber", "nhs_no", "subject_id", "participant_id", "patient"}
)
_TOKEN = re.compile(rb"[A-Za-z0-9_\-]{6,}")


class OutputRefused(PermissionError):
    """The file cannot be handed out of the environment."""


class RowLevelOutputError(OutputRefused):
    """Row-level outputs never leave the environment, whoever asks."""


class DisallowedOutputError(OutputRefused):
    pass


class UnknownOutputError(OutputRefused, FileNotFoundError):
    pass


@dataclass(frozen=True)
class OutputRules:
    max_file_bytes: int = 5 * 1024 * 1024
    person_level_fraction: float = 0.5  # rows >= this x people in the dataset: person-level
    min_people_for_shape: int = 10  # below this the shape rule says nothing


@dataclass(frozen=True)
class OutputFile:
    path: str  # relative to the outputs folder, "/"-separated
    kind: OutputKind
    size: int
    sha256: str | None  # None for files never read (not regular)
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Manifest:
    files: tuple[OutputFile, ...]

    def get(self, path: str) -> OutputFile | None:
        return next((f for f in self.files if f.path == path), None)

    def of_kind(self, kind: OutputKind) -> tuple[OutputFile, ...]:
        return tuple(f for f in self.files if f.kind == kind)

    def to_json(self) -> str:
        return json.dumps({"files": [asdict(f) for f in self.files]}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        raw = json.loads(text)
        files = tuple(
            OutputFile(**{**f, "reasons": tuple(f["reasons"])}) for f in raw.get("files", [])
        )
        return cls(files)


@dataclass(frozen=True)
class _Dataset:
    """What the classifier knows of the job's dataset: its people and its bytes."""

    pseudonyms: frozenset[bytes]
    people: int
    sha256: str | None
    unreadable: bool = False  # the dataset is not a readable CSV: fail closed

    @classmethod
    def load(cls, path: Path | None) -> _Dataset:
        if path is None or not path.is_file():
            return cls(frozenset(), 0, None)
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        ids = set()
        people = 0
        try:
            with open(path, newline="", encoding="utf-8", errors="replace") as fh:
                for row in csv.DictReader(fh):
                    people += 1
                    pid = (row.get("patient_id") or "").strip()
                    if len(pid) >= 6:  # short ids would match ordinary numbers and words
                        ids.add(pid.encode())
        except csv.Error:
            return cls(frozenset(), 0, digest.hexdigest(), unreadable=True)
        return cls(frozenset(ids), people, digest.hexdigest())


def _walk(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(Path(dirpath, d))]):
            full = Path(dirpath, name)
            yield PurePosixPath(full.relative_to(root)).as_posix(), os.lstat(full)
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(Path(dirpath, d)))


def _read_regular(path: Path, limit: int) -> bytes:
    """The file's bytes, refusing anything but a regular file (no symlink, FIFO, device)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(limit + 1)
    finally:
        os.close(fd)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _table_reasons(text: str, suffix: str, dataset: _Dataset, rules: OutputRules) -> list[str]:
    reasons = []
    rows = list(csv.reader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ","))
    header = rows[0] if rows else []
    ids = sorted({c for c in header if _norm(c) in IDENTIFIER_COLUMNS or "pseudonym" in _norm(c)})
    if ids:
        reasons.append(f"identifier column(s): {', '.join(ids)}")
    body = max(len(rows) - 1, 0)
    if (
        dataset.people >= rules.min_people_for_shape
        and body >= rules.person_level_fraction * dataset.people
    ):
        reasons.append(f"person-level shape: {body} rows for {dataset.people} people")
    return reasons


def _json_keys(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _json_keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from _json_keys(v)


class _StorePseudonyms:
    """Looks tokens up among the research store's pseudonyms (``parquet/patients.parquet``):
    the analysis may read the whole store, so an output can name people outside its dataset.
    The store may be large; the few tokens of one output are joined against it in DuckDB."""

    def __init__(self, store_dir: Path | None) -> None:
        source = store_dir / "parquet" / "patients.parquet" if store_dir else None
        self.source = source if source and source.is_file() else None
        self._con = None

    def count(self, tokens: set[bytes]) -> int:
        if self.source is None or not tokens:
            return 0
        import duckdb
        import pandas as pd

        if self._con is None:
            self._con = duckdb.connect(config={"threads": 1})
        con = self._con
        con.register("tokens", pd.DataFrame({"tok": [t.decode() for t in tokens]}))
        try:
            [(n,)] = con.execute(
                "SELECT count(DISTINCT p.patient_id) FROM read_parquet(?) p "
                "JOIN tokens t ON p.patient_id = t.tok",
                [str(self.source)],
            ).fetchall()
        finally:
            con.unregister("tokens")
        return int(n)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()


def classify_file(
    path: Path,
    rel: str,
    st: os.stat_result,
    dataset: _Dataset,
    rules: OutputRules,
    store: _StorePseudonyms | None = None,
) -> OutputFile:
    suffix = PurePosixPath(rel).suffix.lower()
    if not stat.S_ISREG(st.st_mode):
        return OutputFile(rel, "disallowed", st.st_size, None, ("not a regular file",))
    try:
        data = _read_regular(path, max(rules.max_file_bytes, st.st_size))
    except OSError as exc:
        return OutputFile(rel, "disallowed", st.st_size, None, (f"unreadable: {exc}",))
    digest = hashlib.sha256(data).hexdigest()

    def out(kind: OutputKind, *reasons: str) -> OutputFile:
        return OutputFile(rel, kind, len(data), digest, reasons)

    if dataset.sha256 and digest == dataset.sha256:
        return out("row_level", "a copy of the job's dataset")
    if suffix in DATA_SUFFIXES:
        return out("row_level", f"data format {suffix}: holds rows, cannot be checked by eye")
    if suffix not in TABLE_SUFFIXES | TEXT_SUFFIXES | IMAGE_SUFFIXES:
        return out("disallowed", f"file type {suffix or '(none)'} is not released")
    if len(data) > rules.max_file_bytes:
        return out("disallowed", f"larger than {rules.max_file_bytes} bytes")
    if suffix in IMAGE_SUFFIXES and suffix != ".svg":
        return out("aggregate")
    reasons = []
    if dataset.unreadable:
        reasons.append("the job's dataset could not be read to check this file against it")
    tokens = set(_TOKEN.findall(data))
    if found := {t for t in tokens if t in dataset.pseudonyms}:
        reasons.append(f"contains {len(found)} pseudonym(s) from the dataset")
    elif store and (n := store.count(tokens)):
        reasons.append(f"contains {n} pseudonym(s) from the research store")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return out("disallowed", "not UTF-8 text")
    if suffix in TABLE_SUFFIXES:
        try:
            reasons += _table_reasons(text, suffix, dataset, rules)
        except csv.Error as exc:
            return out("disallowed", f"not a readable table: {exc}")
    elif suffix == ".json":
        try:
            keys = {k for k in _json_keys(json.loads(text)) if _norm(k) in IDENTIFIER_COLUMNS}
        except ValueError:
            return out("disallowed", "not valid JSON")
        except RecursionError:
            return out("disallowed", "JSON nested too deeply to check")
        if keys:
            reasons.append(f"identifier key(s): {', '.join(sorted(keys))}")
    return out("row_level", *reasons) if reasons else out("aggregate")


def classify_outputs(
    outputs_dir: Path,
    *,
    dataset_path: Path | None = None,
    store_dir: Path | None = None,
    rules: OutputRules | None = None,
) -> Manifest:
    """Classify every file under ``outputs_dir`` (see the module docstring for the rules).
    ``dataset_path`` and ``store_dir`` are the job's dataset and research store, whose
    pseudonyms no aggregate output may contain."""
    rules = rules or OutputRules()
    dataset = _Dataset.load(dataset_path)
    store = _StorePseudonyms(store_dir)
    try:
        files = [
            classify_file(outputs_dir / rel, rel, st, dataset, rules, store)
            for rel, st in _walk(outputs_dir)
        ]
    finally:
        store.close()
    return Manifest(tuple(files))


def write_manifest(run_dir: Path, manifest: Manifest) -> Path:
    path = run_dir / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(manifest.to_json())
    tmp.replace(path)
    return path


def read_manifest(run_dir: Path) -> Manifest:
    path = run_dir / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no output manifest in {run_dir}: the job has not finished")
    return Manifest.from_json(path.read_text())


def read_for_checking(run_dir: Path, name: str) -> bytes:
    """The bytes of an **aggregate** output, for disclosure control and output checking.

    The only function that hands an output's contents out of the job folder. Refuses
    row-level files (:class:`RowLevelOutputError`, always), disallowed ones, names not in the
    manifest, and a file whose bytes no longer match the manifest's SHA-256.
    """
    entry = read_manifest(run_dir).get(name)
    if entry is None:
        raise UnknownOutputError(f"{name!r} is not an output of this job")
    if entry.kind == "row_level":
        raise RowLevelOutputError(
            f"{name!r} is row-level ({'; '.join(entry.reasons)}): it stays inside the "
            "environment and cannot be downloaded"
        )
    if entry.kind != "aggregate":
        raise DisallowedOutputError(f"{name!r} is not released: {'; '.join(entry.reasons)}")
    path = run_dir / "outputs" / PurePosixPath(name)
    if not path.resolve().is_relative_to((run_dir / "outputs").resolve()):
        raise UnknownOutputError(f"{name!r} is outside the job's outputs")
    try:
        data = _read_regular(path, entry.size)
    except OSError as exc:
        raise DisallowedOutputError(f"{name!r} cannot be read safely: {exc}") from None
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise DisallowedOutputError(f"{name!r} changed after it was classified")
    return data
