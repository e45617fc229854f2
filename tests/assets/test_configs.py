"""The launchpad configs: derived from the settings they pass on, and refusing what the code would refuse."""

from dataclasses import fields

import dagster as dg
import pytest

from assets.cleaning import CleaningConfig, cleaning_options
from assets.evaluation import EvaluationConfig
from assets.monitoring import MonitoringConfig
from assets.tokenization import TokenizationConfig
from assets.training import CONFIG_ONLY, TRAINER_ONLY, FineTuneConfig, trainer_params
from recipe.normalize import CleaningOptions
from trainers.gates import GateSettings
from trainers.params import TrainingParams


def test_the_fine_tune_config_offers_every_training_setting_with_its_default() -> None:
    offered = FineTuneConfig.model_fields
    for item in fields(TrainingParams):
        if item.name in TRAINER_ONLY:
            assert item.name not in offered
        else:
            assert offered[item.name].default == item.default, item.name
            assert offered[item.name].description == item.metadata["help"]
    assert set(offered) - {f.name for f in fields(TrainingParams)} == set(CONFIG_ONLY)


def test_what_the_config_passes_on_is_valid_training_params() -> None:
    params = TrainingParams(**trainer_params(FineTuneConfig(max_epochs=2, devices="4", truncation="tail")))
    assert (params.max_epochs, params.lightning_devices(), params.truncation) == (2, 4, "tail")


@pytest.mark.parametrize(
    "config_class, settings", [(CleaningConfig, CleaningOptions), (EvaluationConfig, GateSettings)]
)
def test_the_cleaning_and_gate_configs_offer_each_setting_once_with_its_default_and_help(
    config_class, settings
) -> None:
    offered = config_class.model_fields
    for item in fields(settings):
        assert offered[item.name].default == item.default, item.name
        assert offered[item.name].description == item.metadata["help"]


def test_the_cleaning_config_passes_its_switches_on_to_the_text_recipe() -> None:
    options = cleaning_options(CleaningConfig(strip_replies=False, mask_pii=False))
    assert options == CleaningOptions(strip_replies=False, mask_pii=False)


@pytest.mark.parametrize(
    ("config_class", "field", "typo"),
    [
        (FineTuneConfig, "truncation", "tial"),
        (FineTuneConfig, "class_weights", "balance"),
        (FineTuneConfig, "train_on", "everything"),
        (MonitoringConfig, "source", "services"),
        (TokenizationConfig, "language", "english"),
    ],
)
def test_the_launchpad_refuses_a_choice_that_is_not_offered(config_class, field: str, typo: str) -> None:
    @dg.op(name="configured")
    def configured(config: config_class) -> None:  # type: ignore[valid-type]
        pass

    job = dg.GraphDefinition(name="one_op", node_defs=[configured]).to_job()
    with pytest.raises(dg.DagsterInvalidConfigError, match=field):
        job.execute_in_process(run_config={"ops": {"configured": {"config": {field: typo}}}})


def test_training_params_refuse_an_unknown_choice_or_key() -> None:
    with pytest.raises(ValueError, match="truncation must be one of"):
        TrainingParams(truncation="middle")
    with pytest.raises(ValueError, match="unknown training params: epochs"):
        TrainingParams.from_json('{"epochs": 3}')
