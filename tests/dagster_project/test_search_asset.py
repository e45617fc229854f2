"""hyperparameter_search as an asset: a study on a version's training set whose best trial feeds the fine-tune."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from assets.search import hyperparameter_search
from assets.storage.home import RefineryHome
from assets.training import fine_tuned_model
from tests.conftest import build_tiny_model
from tests.dagster_project.pipeline import Pipeline
from trainers.registry import read_card

SPACE = {"learning_rate": {"low": 1e-4, "high": 3e-3, "log": True}, "label_smoothing": {"low": 0.0, "high": 0.2}}


def test_a_search_study_feeds_the_fine_tune_and_its_card_names_the_trial(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "tiny-bert")
    home = RefineryHome(tmp_path / "home").ensure()
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        pipeline = Pipeline(home, instance, model)
        pipeline.register_demo("v1", rows=300, seed=4)
        assert pipeline.run("v1").success
        resources = pipeline.defs.resources
        base = {"model_name_or_path": str(model), "max_epochs": 2, "batch_size": 16, "max_length": 48}
        searched = dg.materialize(
            [hyperparameter_search],
            partition_key="v1",
            instance=instance,
            resources=resources,
            run_config={"ops": {"hyperparameter_search": {"config": {"space": SPACE, "base": base, "trials": 3}}}},
        )
        assert searched.success
        metadata = searched.asset_materializations_for_node("hyperparameter_search")[0].metadata
        assert metadata["finished_trials"].value == 3 and metadata["study"].value == "tickets-v1"
        assert "optimization_history" in metadata and (pipeline.models / "search.db").is_file()
        from mlflow import MlflowClient

        from trainers.tracking import local_store

        client = MlflowClient(tracking_uri=local_store(home.root))
        trials = client.search_runs(
            [client.get_experiment_by_name("tickets").experiment_id], "tags.`refinery.model` LIKE 'tickets-v1-trial-%'"
        )
        assert len(trials) == 3 and all("learning_rate" in run.data.params for run in trials)
        assert all(run.info.status == "FINISHED" for run in trials)
        assert any("best_val_macro_f1" in run.data.metrics for run in trials)
        search_bundle = home.bundles / "v1-search"
        assert pl.read_parquet(search_bundle / "test.parquet").is_empty()  # trials can never see test
        best = metadata["best_params"].value
        tuned = dg.materialize(
            [fine_tuned_model],
            partition_key="v1",
            instance=instance,
            resources=resources,
            run_config={
                "ops": {
                    "fine_tuned_model": {
                        "config": {"from_search": True, "max_epochs": 1, "model_name_or_path": str(model)}
                    }
                }
            },
        )
        assert tuned.success
        card = read_card(pipeline.model_of("v1"))
        assert card["lineage"]["search"]["study"] == "tickets-v1"
        assert card["lineage"]["search"]["trial"] == metadata["best_trial"].value
        assert card["hyperparameters"]["learning_rate"] == best["learning_rate"]
