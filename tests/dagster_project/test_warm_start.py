"""fine_tuned_model with warm_start continues from the dataset's production model; the card says from which."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from assets.storage.home import RefineryHome
from assets.training import fine_tuned_model, with_warm_start
from tests.conftest import build_tiny_model
from tests.dagster_project.pipeline import Pipeline
from trainers.registry import PRODUCTION, ModelRegistry, read_aliases, read_card


def test_a_warm_start_continues_from_production_and_the_card_names_it(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "tiny-bert")
    home = RefineryHome(tmp_path / "home").ensure()
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        pipeline = Pipeline(home, instance, model)
        pipeline.register_demo("v1", rows=240, seed=4)
        assert pipeline.run("v1").success
        production = read_aliases(pipeline.models)[PRODUCTION]
        warm = dg.materialize(
            [fine_tuned_model],
            partition_key="v1",
            instance=instance,
            resources=pipeline.defs.resources,
            run_config={"ops": {"fine_tuned_model": {"config": {"warm_start": True, "max_epochs": 1}}}},
        )
        assert warm.success
        card = read_card(pipeline.model_of("v1"))
    assert card["lineage"]["warm_start"] == {"from": production, "base": str(model)}
    assert card["model_source"] == str(pipeline.models / production)
    assert card["head_carry_over"]["carried"] == len(card["label_map"]) - card["head_carry_over"]["new"] > 0


def test_a_warm_start_without_a_production_model_is_refused_saying_so(tmp_path: Path) -> None:
    with pytest.raises(dg.Failure, match="has no production model yet; train from the base model first"):
        with_warm_start({}, set(), ModelRegistry(str(tmp_path / "models")))
    with pytest.raises(dg.Failure, match="warm_start and model_name_or_path are both set"):
        with_warm_start({}, {"model_name_or_path"}, ModelRegistry(str(tmp_path / "models")))
