"""hyperparameter_search: an Optuna study of fine-tune settings on a version's training set; its best trial can
feed `fine_tuned_model` (`from_search: true`)."""

import tempfile
from pathlib import Path

import dagster as dg
from pydantic import Field

from assets.metadata import embedded_png
from assets.models.training_set import TrainOn, plan_training_set
from assets.partitions import DATASET_VERSIONS, dataset_versions
from assets.resources import LakeResource, LandingResource, ModelRegistryResource, TrainerResource
from contracts.datasets import TRAINER_POOL
from contracts.tables import TRAINING_EXAMPLES
from trainers.bundle import write_bundle
from trainers.search import (
    DEFAULT_SPACE,
    SearchSettings,
    finished_trials,
    run_search,
    study_name,
    study_storage,
    trials_table,
)
from trainers.tracking import tracking_environment, tracking_to


class SearchConfig(dg.Config):
    """The search space, the shared settings, the budget and where the study is kept."""

    space: dict = Field(default=DEFAULT_SPACE, description="setting -> {low, high[, log]} or {choices: [...]}")
    base: dict = Field(default={}, description="training settings every trial shares (model, max_epochs, ...)")
    trials: int = Field(8, description="finished trials the study should hold")
    timeout_s: float = Field(1800.0, description="wall-clock budget of this run; 0 = none")
    storage: str = Field(
        "",
        description="an RDB URL (postgresql://... lets machines share trials); default: "
        "SQLite in the dataset's model registry",
    )
    train_on: TrainOn = Field("all_up_to", description="versions up to this one, or only it")


class LogReporter:
    """What the trainer reports during a trial, into the step's log."""

    def __init__(self, log) -> None:
        self.log = log.info


@dg.asset(
    partitions_def=dataset_versions,
    deps=[TRAINING_EXAMPLES],
    group_name="train",
    kinds={"optuna", "pytorch", "lightning"},
    code_version="1",
    pool=TRAINER_POOL,
)
def hyperparameter_search(
    context: dg.AssetExecutionContext,
    config: SearchConfig,
    lake: LakeResource,
    landing: LandingResource,
    registry: ModelRegistryResource,
    trainer: TrainerResource,
) -> dg.MaterializeResult:
    """TPE-sampled fine-tunes scored on val macro F1 (never test), pruned per epoch, in a resumable study."""
    version = context.partition_key
    dataset = landing.dataset(version)
    registered = landing.of_same_dataset(context.instance.get_dynamic_partitions(DATASET_VERSIONS), version)
    try:
        planned = plan_training_set(
            lake,
            registered,
            version,
            train_on=config.train_on,
            rules_hash=landing.rule_book(version).digest,
            run_id=context.run_id,
        )
    except ValueError as error:
        raise dg.Failure(description=f"version {version}: {error}") from error
    # The search bundle's test split is empty: trials are scored on val and can never see test.
    splits = {
        split: (frame.head(0) if split == "test" else frame).to_arrow() for split, frame in planned.splits.items()
    }
    bundle = write_bundle(trainer.bundle_folder(f"{version}-search"), splits, planned.manifest)
    storage = study_storage(registry.for_dataset(dataset.name).model_root, config.storage)
    settings = SearchSettings(storage, study_name(dataset.name, version), config.trials, config.timeout_s or None)
    home, experiment = Path(trainer.bundles_root).parent, registry.for_dataset(dataset.name).model_root.name
    with tracking_to(tracking_environment(home, experiment)):  # each trial is an MLflow run, as a fine-tune is
        study = run_search(
            bundle, {**dataset.training, **config.base}, config.space, settings, LogReporter(context.log)
        )
    rows = trials_table(study)
    completed = [row for row in rows if row["state"] == "COMPLETE"]
    if not completed:
        raise dg.Failure(description=f"study {settings.study}: no trial completed ({len(rows)} tried)")
    best = study.best_trial
    return dg.MaterializeResult(
        metadata={
            "study": settings.study,
            "storage": storage.split("@")[-1],  # a PostgreSQL URL's credentials stay out of the UI
            "best_trial": best.number,
            "best_val_macro_f1": float(best.value),
            "best_params": dg.MetadataValue.json(best.params),
            "finished_trials": finished_trials(study),
            "pruned_trials": sum(row["state"] == "PRUNED" for row in rows),
            "trials": dg.MetadataValue.md(trials_markdown(rows)),
            **study_pictures(study),
        }
    )


def trials_markdown(rows: list[dict]) -> str:
    """The trials as a markdown table."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [f"{row.get(k):.4g}" if isinstance(row.get(k), float) else str(row.get(k, "")) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def study_pictures(study) -> dict[str, dg.MetadataValue]:
    """Optimisation history and, with two completed trials or more, parameter importances, as inline pictures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    pictures = {}
    plots = {"optimization_history": optuna_plots.plot_optimization_history}
    if sum(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)) >= 2 and len(study.best_params) > 1:
        plots["parameter_importances"] = optuna_plots.plot_param_importances
    with tempfile.TemporaryDirectory() as scratch:
        for name, plot in plots.items():
            axes = plot(study)
            path = Path(scratch) / f"{name}.png"
            axes.figure.set_size_inches(7, 4)
            axes.figure.tight_layout()
            axes.figure.savefig(path, dpi=100, metadata={"Title": axes.get_title()})
            plt.close(axes.figure)
            pictures[name] = dg.MetadataValue.md(embedded_png(path, name.replace("_", " ")))
    return pictures
