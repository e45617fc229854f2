"""The model-kind registry: every kind a card can name is in one table, and everything else is refused by name."""

from __future__ import annotations

import json
import typing

import pytest

from contracts import model_folder
from contracts.model_folder import (
    CAUSAL_LM,
    CLASSIFIER,
    DOMAIN_LM,
    GENERATOR,
    MULTITASK,
    PREFERENCE,
    TFIDF,
    TRANSFORMER,
)
from trainers.bundle import GENERATION, BundleManifest
from trainers.generative.params import SftParams
from trainers.kinds import (
    KINDS,
    UnknownModelKindError,
    kind_named,
    kind_of,
    kind_of_card,
    load_classifier,
    training_kind,
)
from trainers.params import ModelKind, TrainingParams


def manifest(kind: str = "classification", tasks: dict | None = None) -> BundleManifest:
    return BundleManifest({"a": 0, "b": 1}, ["v1"], "hash", {"train": 4}, tasks=tasks or {}, kind=kind)


def test_an_unknown_kind_is_refused_by_name_with_the_known_ones() -> None:
    with pytest.raises(UnknownModelKindError, match=r"'diffusion'.*transformer, multitask, tfidf, causal_lm"):
        kind_named("diffusion")


def test_a_card_naming_an_unknown_kind_is_refused_not_guessed(tmp_path) -> None:
    (tmp_path / model_folder.MODEL_CARD).write_text(json.dumps({"model_kind": "quantum"}))
    with pytest.raises(UnknownModelKindError, match="quantum"):
        kind_of(tmp_path)


def test_a_card_from_before_kinds_were_recorded_is_an_encoder_classifier() -> None:
    assert kind_of_card({}).name == TRANSFORMER


def test_every_kind_name_the_contracts_declare_is_registered_with_its_family() -> None:
    declared = {
        TRANSFORMER: CLASSIFIER,
        MULTITASK: CLASSIFIER,
        TFIDF: CLASSIFIER,
        CAUSAL_LM: GENERATOR,
        PREFERENCE: GENERATOR,
        DOMAIN_LM: GENERATOR,
    }
    assert {name: kind.family for name, kind in KINDS.items()} == declared


def test_every_kind_the_params_can_request_is_a_registered_kind_of_the_right_family() -> None:
    assert all(KINDS[name].family == CLASSIFIER for name in typing.get_args(ModelKind))
    assert KINDS[SftParams().model_kind].family == GENERATOR


def test_a_bundle_trains_its_familys_default_kind_unless_another_is_requested() -> None:
    assert training_kind(manifest(), None).name == TRANSFORMER
    assert training_kind(manifest(), TFIDF).name == TFIDF
    assert training_kind(manifest(tasks={"queue": {"a": 0}}), TRANSFORMER).name == MULTITASK
    assert training_kind(manifest(GENERATION), None).name == CAUSAL_LM
    assert training_kind(manifest("preference"), None).name == PREFERENCE


def test_a_kind_of_another_family_than_the_bundles_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'causal_lm'.*classification examples.*transformer, multitask, tfidf"):
        training_kind(manifest(), CAUSAL_LM)
    with pytest.raises(ValueError, match=r"'tfidf'.*generation examples.*causal_lm"):
        training_kind(manifest(GENERATION), TFIDF)


def test_a_generators_folder_is_refused_as_a_classifier_before_anything_loads(tmp_path) -> None:
    (tmp_path / model_folder.MODEL_CARD).write_text(json.dumps({"model_kind": CAUSAL_LM}))
    with pytest.raises(ValueError, match=r"causal_lm model .* labels no texts"):
        load_classifier(tmp_path)


def test_the_params_kind_literal_and_the_default_agree_with_the_registry() -> None:
    assert TrainingParams().model_kind == TRANSFORMER and TRANSFORMER in KINDS


def test_every_model_kind_has_its_evaluation_described_for_the_ui() -> None:
    from assets.evaluation import METADATA_BY_KIND
    from trainers.kinds import KINDS

    assert set(METADATA_BY_KIND) == set(KINDS)
