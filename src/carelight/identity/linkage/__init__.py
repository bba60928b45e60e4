"""Probabilistic record linkage: which Patient records are the same person.

A verified NHS number links records deterministically; the rest are matched on name, date of
birth, sex and address with a Fellegi-Sunter model trained by expectation maximisation in
Splink (DuckDB by default). See docs/linkage.md.

    records = records_from_store(store)          # or records_from_folder(synth_output)
    model = train(records)                       # LinkageModel
    model.save(home / "linkage")                 # model-<n>.json
    clusters = model.link(records)               # Clusters: a Decision per record
    index = model.index(records, clusters)
    decision = model.match_one(new_record, index)   # route "auto", "review" or "new"
"""

from carelight.identity.linkage.decisions import Clusters, Decision, Edge, Route, Thresholds
from carelight.identity.linkage.deterministic import deterministic_links
from carelight.identity.linkage.evaluate import Evaluation, GroundTruth, evaluate
from carelight.identity.linkage.features import (
    LinkageRecord,
    features,
    records_from_folder,
    records_from_patients,
    records_from_store,
)
from carelight.identity.linkage.model import LinkageIndex, LinkageModel, splink_settings, train
from carelight.identity.linkage.scorer import ModelMismatchError, Scorer

__all__ = [
    "Clusters",
    "Decision",
    "Edge",
    "Evaluation",
    "GroundTruth",
    "LinkageIndex",
    "LinkageModel",
    "LinkageRecord",
    "ModelMismatchError",
    "Route",
    "Scorer",
    "Thresholds",
    "deterministic_links",
    "evaluate",
    "features",
    "records_from_folder",
    "records_from_patients",
    "records_from_store",
    "splink_settings",
    "train",
]
