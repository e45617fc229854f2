"""The selection matrix's chosen candidate feeds fine_tuned_model; a TF-IDF winner is evaluated, gated and served."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from assets.evaluation import model_evaluation
from assets.selection import model_candidates
from assets.storage.home import RefineryHome
from assets.training import fine_tuned_model
from tests.conftest import build_tiny_model
from tests.dagster_project.pipeline import Pipeline
from trainers.kinds import load_classifier
from trainers.registry import read_card


def test_a_chosen_tfidf_candidate_is_trained_evaluated_and_answers_through_the_classifier(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "tiny-bert")
    home = RefineryHome(tmp_path / "home").ensure()
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        pipeline = Pipeline(home, instance, model)
        pipeline.register_demo("v1", rows=300, seed=4)
        assert pipeline.run("v1").success
        resources = pipeline.defs.resources
        only_tfidf = {"candidates": ["tfidf-logreg"], "model_name_or_path": str(model)}
        evaluation = {"min_accuracy": 0.0, "min_macro_f1": 0.0, "max_regression": 1.0, "force": False}
        result = dg.materialize(
            [model_candidates, fine_tuned_model, model_evaluation],
            partition_key="v1",
            instance=instance,
            resources=resources,
            run_config={
                "ops": {
                    "model_candidates": {"config": only_tfidf},
                    "fine_tuned_model": {"config": {"from_selection": True}},
                    "model_evaluation": {"config": evaluation},
                }
            },
        )
        assert result.success
        folder = pipeline.model_of("v1")
        card = read_card(folder)
        assert card["lineage"]["selection"] == {"candidate": "tfidf-logreg", "settings": {"model_kind": "tfidf"}}
        assert card["model_kind"] == "tfidf" and (folder / "tfidf.skops").is_file()
        evaluated = result.asset_materializations_for_node("model_evaluation")[0].metadata
        assert 0.0 <= evaluated["test_accuracy"].value <= 1.0
        labels = json.loads((folder / "label_map.json").read_text())
        assert all(p.label in labels for p in load_classifier(folder).predict(["my vpn keeps dropping", "printer jam"]))


def test_from_selection_without_a_matrix_fails_saying_what_to_materialize_first(tmp_path: Path) -> None:
    import shutil

    model = build_tiny_model(tmp_path / "tiny-bert")
    home = RefineryHome(tmp_path / "home").ensure()
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        pipeline = Pipeline(home, instance, model)
        pipeline.register_demo("v1", rows=200, seed=5)
        assert pipeline.run("v1").success
        shutil.rmtree(home.lake / "model_candidates")  # the matrix was never computed
        result = dg.materialize(
            [fine_tuned_model],
            partition_key="v1",
            instance=instance,
            resources=pipeline.defs.resources,
            run_config={"ops": {"fine_tuned_model": {"config": {"from_selection": True}}}},
            raise_on_error=False,
        )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "version v1 has no chosen candidate; materialize model_candidates for this version first" in failure
