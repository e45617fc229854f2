"""Training stage: build the training bundle and fine-tune through dagster-pipes."""

import dagster as dg
import polars as pl

from assets.validation.splitting import SPLITS, build_label_map
from assets.training_data import TRAINING_EXAMPLES, training_examples
from assets.partitions import DATASET_VERSIONS, dataset_versions
from assets.resources import LakeResource, ModelRegistryResource, TrainerResource, git_commit
from rules import default_rule_book
from trainers.bundle import BundleManifest, write_bundle

TRAINER_POOL = "refinery_trainer"


class FineTuneConfig(dg.Config):
    """Model, hyperparameters and hardware of the fine-tune."""

    model_name_or_path: str = "default"
    train_on: str = "all_up_to"  # or "this_version"
    max_epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 8e-5
    max_length: int = 128
    seed: int = 13
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "auto"
    accumulate_grad_batches: int = 1
    truncation: str = "head"  # head | tail | head+tail
    class_weights: str = "none"  # none | balanced
    early_stopping_patience: int = 0
    gradient_checkpointing: bool = False
    compile: bool = False
    checkpoint_every_n_steps: int = 200
    head_learning_rate: float = 0.0  # 0 = learning_rate
    label_smoothing: float = 0.0
    lora_rank: int = 0  # > 0 trains LoRA adapters instead of every weight
    lora_alpha: int = 16
    abstain_label: str = ""  # e.g. "other": answered below a confidence threshold fitted on val
    abstain_budget: float = 0.005

    def trainer_params(self) -> dict[str, object]:
        params = self.model_dump(exclude={"train_on"})
        params["devices"] = int(self.devices) if self.devices.isdigit() else self.devices
        return params


def versions_to_train_on(all_versions: list[str], version: str, train_on: str) -> list[str]:
    """The dataset versions model `version` learns from: all registered up to it, or only it."""
    if train_on == "this_version":
        return [version]
    if train_on != "all_up_to":
        raise ValueError(f"train_on must be 'all_up_to' or 'this_version', not {train_on!r}")
    return all_versions[: all_versions.index(version) + 1]


def gather_examples(lake: LakeResource, versions: list[str]) -> pl.DataFrame:
    """The examples of `versions`, each doc_id once (its earliest version wins, so splits never leak)."""
    order = {v: i for i, v in enumerate(versions)}
    examples = lake.scan(TRAINING_EXAMPLES, versions).collect()
    return (
        examples.with_columns(pl.col("dataset_version").replace_strict(order, return_dtype=pl.Int64).alias("__order"))
        .sort("__order", "source", "source_row")
        .unique("doc_id", keep="first", maintain_order=True)
        .drop("__order")
    )


@dg.asset(
    partitions_def=dataset_versions,
    deps=[training_examples],
    group_name="train",
    kinds={"pytorch", "lightning"},
    code_version="3",
    pool=TRAINER_POOL,
)
def fine_tuned_model(
    context: dg.AssetExecutionContext,
    config: FineTuneConfig,
    lake: LakeResource,
    registry: ModelRegistryResource,
    trainer: TrainerResource,
) -> dg.MaterializeResult:
    """A transformers classifier fine-tuned with Lightning on the validated examples of versions up to this one."""
    version = context.partition_key
    registered = context.instance.get_dynamic_partitions(DATASET_VERSIONS)
    versions = versions_to_train_on(registered, version, config.train_on)
    examples = gather_examples(lake, versions)
    splits = {split: examples.filter(pl.col("split") == split) for split in SPLITS}
    if splits["train"].is_empty() or splits["val"].is_empty():
        raise dg.Failure(description=f"version {version}: no train or val examples in versions {versions}")
    trained_versions = sorted(set(examples["dataset_version"]), key=versions.index)
    manifest = BundleManifest(
        label_map=build_label_map(splits["train"]["label"]),
        dataset_versions=trained_versions,
        rules_hash=default_rule_book().digest,
        row_counts={split: frame.height for split, frame in splits.items()},
        lineage={
            "training_examples_delta_version": lake.table_version(TRAINING_EXAMPLES),
            "git_commit": git_commit(),
            "dagster_run_id": context.run_id,
        },
    )
    bundle = write_bundle(trainer.bundle_folder(version), {s: f.to_arrow() for s, f in splits.items()}, manifest)
    output = registry.version_folder(version)
    reported = trainer.train(context, bundle, output, config.trainer_params())
    return dg.MaterializeResult(
        metadata={
            **(reported.metadata or {}),
            "dataset_versions": dg.MetadataValue.json(trained_versions),
            "bundle": dg.MetadataValue.path(str(bundle)),
            "label_count": len(manifest.label_map),
            "rows_per_split": dg.MetadataValue.json(manifest.row_counts),
            "rules_hash": manifest.rules_hash,
            **{k: v for k, v in manifest.lineage.items() if v is not None},
        }
    )
