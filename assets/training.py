"""fine_tuned_model: write the training bundle and fine-tune on it through dagster-pipes."""

from dataclasses import fields
from typing import get_type_hints

import dagster as dg
import pydantic

from assets.metadata import embedded_png
from assets.models.training_set import TrainOn, plan_training_set
from assets.partitions import DATASET_VERSIONS, dataset_versions
from assets.resources import LakeResource, LandingResource, ModelRegistryResource, TrainerResource
from assets.storage.tables import TRAINING_EXAMPLES
from trainers.bundle import write_bundle
from trainers.params import TrainingParams

TRAINER_POOL = "refinery_trainer"
TRAINER_ONLY = ("resume",)  # always on when launched from Dagster: a retried step continues


def _config_fields() -> dict[str, object]:
    """FineTuneConfig's fields: every TrainingParams field with its default and help, plus `train_on`."""
    derived: dict[str, object] = {
        "train_on": (TrainOn, pydantic.Field("all_up_to", description="versions up to this one, or only it"))
    }
    types = get_type_hints(TrainingParams)
    for item in fields(TrainingParams):
        if item.name not in TRAINER_ONLY:
            derived[item.name] = (types[item.name], pydantic.Field(item.default, description=item.metadata["help"]))
    return derived


FineTuneConfig = pydantic.create_model(
    "FineTuneConfig", __base__=dg.Config, __doc__="Model, hyperparameters and hardware of the fine-tune.",
    __module__=__name__, **_config_fields(),
)  # fmt: skip


def trainer_params(config: dg.Config, dataset_training: dict | None = None) -> dict[str, object]:
    """The trainer's `--params`: the run's config, where it sets nothing the dataset's `training:`, else defaults."""
    params = config.model_dump(exclude={"train_on"})
    unknown = sorted(set(dataset_training or {}) - set(params))
    if unknown:
        raise ValueError(f"unknown training settings {unknown} (known: {', '.join(sorted(params))})")
    for name, value in (dataset_training or {}).items():
        if name not in config.model_fields_set:
            params[name] = value
    return params


@dg.asset(
    partitions_def=dataset_versions,
    deps=[TRAINING_EXAMPLES],
    group_name="train",
    kinds={"pytorch", "lightning"},
    code_version="4",
    pool=TRAINER_POOL,
)
def fine_tuned_model(
    context: dg.AssetExecutionContext,
    config: FineTuneConfig,
    lake: LakeResource,
    landing: LandingResource,
    registry: ModelRegistryResource,
    trainer: TrainerResource,
) -> dg.MaterializeResult:
    """A transformers classifier fine-tuned with Lightning on the validated examples of the dataset's versions up
    to this one."""
    version = context.partition_key
    try:
        dataset = landing.dataset(version)
        registered = [v for v in context.instance.get_dynamic_partitions(DATASET_VERSIONS)
                      if landing.dataset(v).name == dataset.name]  # fmt: skip
        rules_hash = landing.rule_book(version).digest
        params = trainer_params(config, dataset.training)
        planned = plan_training_set(lake, registered, version, config.train_on, rules_hash, context.run_id)
    except ValueError as error:
        raise dg.Failure(description=f"version {version}: {error}") from error
    models = registry.for_dataset(dataset.name)
    model_version, manifest = planned.model_version, planned.manifest
    splits = {split: frame.to_arrow() for split, frame in planned.splits.items()}
    bundle = write_bundle(trainer.bundle_folder(model_version), splits, manifest)
    checkpoints = models.model_root / f".{model_version}.checkpoints"  # a retried step of this run resumes
    output = models.version_folder(model_version)
    reported = trainer.train(context, bundle, output, params, checkpoints)
    curves = output / "training_curves.png"
    pictures = (
        {"training_curves": dg.MetadataValue.md(embedded_png(curves, "training curves"))} if curves.is_file() else {}
    )
    return dg.MaterializeResult(
        metadata={
            **(reported.metadata or {}),
            **pictures,
            "metrics_csv": dg.MetadataValue.path(str(output / "metrics.csv")),
            "model_version": model_version,
            "dataset": dataset.name,
            "dataset_versions": dg.MetadataValue.json(manifest.dataset_versions),
            "bundle": dg.MetadataValue.path(str(bundle)),
            "label_count": len(manifest.label_map),
            "rows_per_split": dg.MetadataValue.json(manifest.row_counts),
            "rules_hash": manifest.rules_hash,
            **{k: v for k, v in manifest.lineage.items() if v is not None},
        }
    )
