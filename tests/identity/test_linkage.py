"""Record linkage: crafted cases, routing, the on-write scorer against Splink, persistence,
and accuracy on a small synthetic population.

One model is trained per module on 800 synthetic people (a few seconds); crafted records are
then matched against each other with it, both one at a time (``match_one``) and as a batch
(``link``, through Splink).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import random

import pytest

import carelight.identity.linkage as linkage
from carelight.identity.linkage import (
    GroundTruth,
    LinkageIndex,
    LinkageModel,
    ModelMismatchError,
    Thresholds,
    evaluate,
    features,
    records_from_folder,
    train,
)
from carelight.synth import generate

NHS = "https://fhir.nhs.uk/Id/nhs-number"
PEOPLE, SEED = 800, 5


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    out = tmp_path_factory.mktemp("linkage") / "population"
    generate(out, PEOPLE, SEED, workers=1)
    return out, records_from_folder(out)


@pytest.fixture(scope="module")
def model(population):
    _, records = population
    return train(records, max_pairs=1e6)


@pytest.fixture(scope="module")
def clusters(model, population):
    return model.link(population[1])


def patient(pid, given, family, dob, *, sex="female", line="12 Mill Lane", postcode="YX10 1AB",
            nhs=None, old_family=None, middle=None):  # fmt: skip
    names = [{"use": "official", "family": family, "given": [given, *([middle] if middle else [])]}]
    if old_family:
        names.append({"use": "old", "family": old_family, "given": [given]})
    resource = {
        "resourceType": "Patient",
        "id": pid,
        "name": names,
        "gender": sex,
        "birthDate": dob,
        "address": [{"use": "home", "line": [line], "postalCode": postcode}],
    }
    if nhs:
        resource["identifier"] = [{"system": NHS, "value": nhs}]
    return features(resource)


def both_ways(model, first, second):
    """(one-at-a-time decision for ``second``, batch route of ``second``), which must agree."""
    one = model.match_one(second, LinkageIndex([first]))
    batch = model.link([first, second]).decisions[second.unique_id]
    assert (one.route, one.reason) == (batch.route, batch.reason)
    if one.match_probability is not None and batch.match_weight is not None:
        assert one.match_probability == pytest.approx(batch.match_probability, rel=1e-9)
    return one


# -- crafted cases ---------------------------------------------------------------------------


def test_twins_are_not_linked(model):
    anna = patient("Y99101-1", "Anna", "Hartley", "1988-05-20")
    beth = patient("X99LB-1", "Bethany", "Hartley", "1988-05-20")
    decision = both_ways(model, anna, beth)
    assert decision.route != "auto"
    assert decision.person_id == beth.unique_id


def test_twins_with_their_own_nhs_numbers_are_new_people(model):
    anna = patient("Y99101-1", "Anna", "Hartley", "1988-05-20", nhs="9434765919")
    beth = patient("X9A-1", "Bethany", "Hartley", "1988-05-20", nhs="9434765870")
    assert both_ways(model, anna, beth).route == "new"


def test_a_changed_surname_is_linked(model):
    gp = patient("Y99101-1", "Margaret", "Lindqvist", "1979-08-30", old_family="Pemberton")
    council = patient("X99LB-1", "Margaret", "Pemberton", "1979-08-30")
    decision = both_ways(model, gp, council)
    assert (decision.route, decision.person_id) == ("auto", gp.unique_id)


def test_a_transposed_date_of_birth_is_linked(model):
    gp = patient("Y99101-1", "Harold", "Sutcliffe", "1941-03-09", sex="male")
    home = patient("X9C01-1", "Harold", "Sutcliffe", "1941-09-03", sex="male")
    assert both_ways(model, gp, home).route == "auto"


def test_a_nickname_is_linked(model):
    gp = patient("Y99101-1", "Margaret", "Ackroyd", "1936-11-02")
    home = patient("X9C01-1", "Peggy", "Ackroyd", "1936-11-02")
    assert both_ways(model, gp, home).route == "auto"


def test_two_people_at_one_address_are_not_linked(model):
    husband = patient("Y99101-1", "Geoffrey", "Marsden", "1947-02-14", sex="male")
    wife = patient("X99LB-1", "Irene", "Marsden", "1950-06-01")
    assert both_ways(model, husband, wife).route == "new"


def test_a_father_and_son_of_the_same_name_at_one_address_are_not_linked_automatically(model):
    father = patient("Y99101-1", "John", "Marsden", "1947-02-14", sex="male")
    son = patient("X99LB-1", "John", "Marsden", "1975-10-23", sex="male")
    assert both_ways(model, father, son).route != "auto"


def test_the_same_nhs_number_links_deterministically(model):
    gp = patient("Y99101-1", "William", "Oddie", "1952-04-07", sex="male", nhs="9434765919")
    trust = patient(
        "X9A-1", "Bill", "Oddy", "1952-07-04", sex="male", nhs="9434765919",
        line="3 Station Road", postcode="YX4 2ZZ",
    )  # fmt: skip
    decision = both_ways(model, gp, trust)
    assert (decision.route, decision.reason, decision.person_id) == (
        "auto",
        "nhs-number",
        "Y99101-1",
    )
    assert decision.match_probability == 1.0


def test_the_same_nhs_number_on_a_different_person_is_a_conflict_for_review(model):
    mother = patient("Y99101-1", "Susan", "Clegg", "1990-01-15", nhs="9434765919")
    baby = patient("X9A-1", "Olivia", "Clegg", "2024-06-30", nhs="9434765919")
    decision = both_ways(model, mother, baby)
    assert (decision.route, decision.reason) == ("review", "nhs-number-conflict")
    assert decision.person_id == baby.unique_id
    assert decision.candidate_person_id == mother.unique_id


def test_an_unverified_nhs_number_does_not_link_deterministically(model):
    gp = patient("Y99101-1", "Anna", "Hartley", "1988-05-20", nhs="9434765919")
    other = dataclasses.replace(
        patient("X99LB-1", "Zoe", "Pickles", "1961-12-01", nhs="9434765919"),
        nhs_verification="03",  # trace required
    )
    assert both_ways(model, gp, other).reason != "nhs-number"


# -- thresholds ------------------------------------------------------------------------------


def test_thresholds_route_records_to_auto_review_or_new(model):
    gp = patient("Y99101-1", "Harold", "Sutcliffe", "1941-03-09", sex="male")
    trust = patient("X9A-1", "Harold", "Sutcliff", "1941-03-09", sex="male", postcode="YX10 9QQ",
                    line="4 Moor Lane")  # fmt: skip
    p = model.scorer.score(trust, gp).match_probability
    assert 0.0 < p < 1.0
    index = LinkageIndex([gp])
    for thresholds, route in (
        (Thresholds(upper=p, lower=p / 2), "auto"),
        (Thresholds(upper=min(1.0, p + (1 - p) / 2), lower=p), "review"),
        (Thresholds(upper=min(1.0, p + (1 - p) / 2), lower=min(0.999999, p * 1.000001)), "new"),
    ):
        tuned = dataclasses.replace(model, thresholds=thresholds)
        decision = tuned.match_one(trust, index)
        assert decision.route == route, thresholds
        assert decision.person_id == (gp.unique_id if route == "auto" else trust.unique_id)
        assert decision.candidate_person_id == (gp.unique_id if route == "review" else None)


@pytest.mark.parametrize(("lower", "upper"), [(0.9, 0.5), (0.0, 0.5), (0.5, 1.5), (0.7, 0.7)])
def test_thresholds_must_be_ordered(lower, upper):
    with pytest.raises(ValueError, match="0 < lower < upper <= 1"):
        Thresholds(upper=upper, lower=lower)


def test_a_record_with_no_candidates_is_a_new_person(model):
    lonely = patient("X9A-9", "Xanthe", "Quibell", "2001-01-01", postcode="YX12 1AA")
    decision = model.match_one(lonely, LinkageIndex([]))
    assert (decision.route, decision.person_id, decision.match_probability) == (
        "new", "X9A-9", None,
    )  # fmt: skip


# -- the on-write scorer agrees with Splink --------------------------------------------------


def test_the_python_scorer_gives_splinks_weights(model, population):
    _, records = population
    by_id = {r.unique_id: r for r in records}
    # Every pair in the same postcode district and year of birth (more non-matches than the
    # prediction rules give), or blocked by them: matches and non-matches alike.
    wide = copy.deepcopy(model.settings)
    wide["blocking_rules_to_generate_predictions"].append(
        {
            "blocking_rule": 'l."postcode_district" = r."postcode_district" '
            'AND l."dob_year" = r."dob_year"',
            "sql_dialect": "duckdb",
        }
    )
    edges = LinkageModel(wide, model.thresholds).predict(records, min_probability=0.0)
    assert sum(e.match_probability < 0.01 for e in edges) > 500
    assert sum(e.match_probability > 0.99 for e in edges) > 500
    levels_seen = set()
    for edge in edges:
        score = model.scorer.score(by_id[edge.left], by_id[edge.right])
        levels_seen.update(enumerate(score.levels))
        if math.isinf(edge.match_weight):
            assert score.match_weight == edge.match_weight
        else:
            assert score.match_weight == pytest.approx(edge.match_weight, rel=1e-9, abs=1e-9)
        assert score.match_probability == pytest.approx(edge.match_probability, rel=1e-9, abs=1e-12)
    # The pairs reached most levels of every comparison, so the agreement means something.
    assert len(levels_seen) >= 20


def test_match_one_agrees_with_batch_linkage(model, population, clusters):
    _, records = population
    index = LinkageIndex.from_clusters(records, clusters)
    auto = [r for r in records if clusters.decisions[r.unique_id].route == "auto"]
    for record in random.Random(1).sample(auto, 150):
        person = index.person[record.unique_id]
        index.remove(record.unique_id)
        decision = model.match_one(record, index)
        index.add(record, person)
        assert (decision.route, decision.person_id) == (
            "auto",
            clusters.person_of(record.unique_id),
        )


# -- saving and loading ----------------------------------------------------------------------


def test_save_and_load_round_trip(model, population, tmp_path):
    _, records = population
    first = model.save(tmp_path / "linkage")
    second = dataclasses.replace(model).save(tmp_path / "linkage")
    assert (first.name, second.name) == ("model-1.json", "model-2.json")
    latest = LinkageModel.load(tmp_path / "linkage")
    assert latest.version == 2
    assert latest.trained_at == model.trained_at and latest.trained_at.endswith("+00:00")
    assert latest.thresholds == model.thresholds
    assert latest.settings == json.loads(json.dumps(model.settings))
    assert LinkageModel.load(first).version == 1
    sample = records[:60]
    for left, right in itertools.pairwise(sample):
        assert latest.scorer.score(left, right) == model.scorer.score(left, right)
    assert latest.link(records).decisions == model.link(records).decisions


def test_loading_refuses_other_files_and_changed_comparisons(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="train and save"):
        LinkageModel.load(tmp_path)
    other = tmp_path / "other.json"
    other.write_text("{}")
    with pytest.raises(ValueError, match="carelight-linkage-model"):
        LinkageModel.load(other)
    path = model.save(tmp_path / "changed")
    data = json.loads(path.read_text())
    data["splink_settings"]["comparisons"][0]["comparison_levels"].pop(2)
    path.write_text(json.dumps(data))
    with pytest.raises(ModelMismatchError, match="retrain"):
        LinkageModel.load(path)


def test_parameters_are_readable(model):
    rows = model.parameters()
    assert {r["comparison"] for r in rows} == {
        "first_name", "family_name", "dob", "sex", "address", "nhs_number",
    }  # fmt: skip
    exact_dob = next(r for r in rows if (r["comparison"], r["level"]) == ("dob", "exact"))
    assert exact_dob["match_weight"] > 5


def test_training_needs_a_population():
    with pytest.raises(ValueError, match="50 or more"):
        train([patient("Y99101-1", "Anna", "Hartley", "1988-05-20")])


def test_the_same_record_twice_is_refused(model):
    record = patient("Y99101-1", "Anna", "Hartley", "1988-05-20")
    with pytest.raises(ValueError, match="same unique_id"):
        model.link([record, record])


# -- accuracy --------------------------------------------------------------------------------


def test_accuracy_on_a_synthetic_population_meets_the_targets(population, clusters):
    folder, _ = population
    result = evaluate(clusters, GroundTruth.read(folder))
    assert result.records > 1.8 * PEOPLE and result.true_pairs > PEOPLE
    assert result.precision >= 0.995, result.summary()
    assert result.recall >= 0.98, result.summary()
    assert result.review_share < 0.02, result.summary()


def test_evaluation_counts_pairs(clusters):
    truth = GroundTruth(person={uid: "everyone" for uid in clusters.decisions}, imperfections={})
    result = evaluate(clusters, truth)
    assert result.precision == 1.0 and result.recall < 0.01


def test_public_api_is_exported():
    for name in linkage.__all__:
        assert hasattr(linkage, name), name
