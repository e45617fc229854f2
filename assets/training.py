"""fine_tuned_model: write the training bundle and fine-tune on it through dagster-pipes."""

from dataclasses import fields
from pathlib import Path

import dagster as dg
import pydantic

from assets.configs import config_fields, derived_config
from assets.datasets.training_settings import params_of_kind
from assets.metadata import embedded_png, per_dataset
from assets.models.base_reference import BaseReferenceError, is_base_reference, resolve_base_reference
from assets.models.selection import chosen_settings
from assets.models.training_set import TrainOn, plan_training_set
from assets.partitions import DATASET_VERSIONS, dataset_versions
from assets.resources import LakeResource, LandingResource, ModelRegistryResource, TrainerResource
from contracts.datasets import TRAINER_POOL
from contracts.tables import MODEL_CANDIDATES, TRAINING_EXAMPLES
from trainers.bundle import GENERATION, write_bundle
from trainers.default_model import ModelSourceError
from trainers.generative.base_model import shipped_gguf
from trainers.kinds import KINDS, kind_of_card
from trainers.params import TrainingParams
from trainers.registry import PRODUCTION, ModelRegistry, read_card
from trainers.search import best_search_params, study_name, study_storage

FROM_SEARCH_HELP = "start from the best trial of this version's hyperparameter_search study"
SEARCH_STORAGE_HELP = "that study's RDB URL; default: SQLite beside the dataset's models"
TRAINER_ONLY = ("resume",)  # always on when launched from Dagster: a retried step continues
FROM_SELECTION_HELP = "train what this version's model_candidates chose (TF-IDF or an encoder, full or LoRA)"
WARM_START_HELP = (
    "start from the dataset's production model, not model_name_or_path (known labels keep their head rows)"
)
# what the asset decides before the trainer starts
CONFIG_ONLY = ("train_on", "from_search", "search_storage", "from_selection", "warm_start")


def _config_fields() -> dict[str, object]:
    """FineTuneConfig's fields: every TrainingParams field with its default and help, plus `train_on`."""
    derived: dict[str, object] = {
        "train_on": (TrainOn, pydantic.Field("all_up_to", description="versions up to this one, or only it")),
        "from_search": (bool, pydantic.Field(False, description=FROM_SEARCH_HELP)),
        "search_storage": (str, pydantic.Field("", description=SEARCH_STORAGE_HELP)),
        "from_selection": (bool, pydantic.Field(False, description=FROM_SELECTION_HELP)),
        "warm_start": (bool, pydantic.Field(False, description=WARM_START_HELP)),
    }
    return {**derived, **config_fields(TrainingParams, skip=TRAINER_ONLY)}


FineTuneConfig = derived_config(
    "FineTuneConfig", "Model, hyperparameters and hardware of the fine-tune.", __name__, _config_fields()
)


def keys_set_by_run(context: dg.AssetExecutionContext) -> set[str]:
    """The config keys this run sets itself (Dagster fills Literal fields in, so `model_fields_set` cannot tell)."""
    ops = (context.run.run_config or {}).get("ops", {})
    return set(((ops.get(context.op_def.name) or {}).get("config")) or {})


def with_search_params(
    params: dict, config: dg.Config, set_by_run: set[str], registry_root: Path, dataset: str, version: str
) -> tuple[dict, dict]:
    """The params with the study's best trial laid over every setting the run's config does not set; which trial."""
    storage, study = study_storage(registry_root, config.search_storage), study_name(dataset, version)
    found = best_search_params(storage, study)
    if found is None:
        raise dg.Failure(
            description=f"from_search: study {study!r} has no completed trial; materialize "
            "hyperparameter_search for this version first"
        )
    best, trial = found
    chosen = {**params, **{k: v for k, v in best.items() if k not in set_by_run}}
    return chosen, {"study": study, "trial": trial, "storage": storage.split("@")[-1], "params": best}


def with_selection_params(params: dict, set_by_run: set[str], lake: LakeResource, version: str) -> tuple[dict, dict]:
    """The params with the chosen candidate's settings laid over every setting the run's config does not set."""
    found = chosen_settings(lake.scan(MODEL_CANDIDATES, [version]).collect()) if lake.exists(MODEL_CANDIDATES) else None
    if found is None:
        raise dg.Failure(
            description=f"from_selection: version {version} has no chosen candidate; materialize "
            "model_candidates for this version first"
        )
    candidate, settings = found
    chosen = {**params, **{k: v for k, v in settings.items() if k not in set_by_run}}
    return chosen, {"candidate": candidate, "settings": settings}


def with_warm_start(params: dict, set_by_run: set[str], models: ModelRegistry) -> tuple[dict, dict]:
    """The params with the production model as the source to continue from; which version that is."""
    production = models.aliases().get(PRODUCTION)
    if "model_name_or_path" in set_by_run:
        raise dg.Failure(description="warm_start and model_name_or_path are both set: choose one source")
    if production is None:
        raise dg.Failure(
            description=f"warm_start: {models.model_root} has no production model yet; train from the base model first"
        )
    folder = models.version_folder(production)
    card = read_card(folder)
    kind = kind_of_card(card)
    if not kind.continuable:
        continuable = ", ".join(k.name for k in KINDS.values() if k.continuable)
        raise dg.Failure(
            description=f"warm_start: production model {production} is a {kind.name} model; "
            f"only these kinds can be continued: {continuable}"
        )
    base = card.get("lineage", {}).get("warm_start", {}).get("base") or card.get("model_source", "")
    return {**params, "model_name_or_path": str(folder)}, {"from": production, "base": base}


def with_chosen_sources(
    params: dict,
    config: dg.Config,
    set_by_run: set[str],
    lake: LakeResource,
    models: ModelRegistry,
    dataset: str,
    version: str,
    lineage: dict,
) -> dict:
    """The params with the production model (warm_start), the chosen candidate (from_selection) and the best trial
    (from_search) laid over, in that order; each one's record added to the lineage."""
    if config.warm_start:
        params, lineage["warm_start"] = with_warm_start(params, set_by_run, models)
    if config.from_selection:
        params, lineage["selection"] = with_selection_params(params, set_by_run, lake, version)
    if config.from_search:
        params, lineage["search"] = with_search_params(params, config, set_by_run, models.model_root, dataset, version)
    return params


def with_base_reference(
    params: dict, lineage: dict, registry: ModelRegistryResource, trainer: TrainerResource, version: str
) -> dict:
    """The params with a `<dataset>@<alias>` base resolved to that model's folder, recorded in the lineage as
    `base_from` (the chain base -> adapted -> fine-tuned that every card carries)."""
    reference = params.get("model_name_or_path")
    if not is_base_reference(reference):
        return params
    try:
        folder, lineage["base_from"] = resolve_base_reference(
            reference, Path(registry.root), Path(trainer.bundles_root)
        )
    except BaseReferenceError as error:
        raise dg.Failure(description=f"version {version}: {error}") from error
    return {**params, "model_name_or_path": folder}


def trainer_params(
    config: dg.Config, dataset_training: dict | None = None, set_by_run: set[str] | None = None
) -> dict[str, object]:
    """The trainer's `--params`: the run's config, where it sets nothing the dataset's `training:`, else defaults."""
    params = config.model_dump(exclude=set(CONFIG_ONLY))
    unknown = sorted(set(dataset_training or {}) - set(params))
    if unknown:
        raise ValueError(f"unknown training settings {unknown} (known: {', '.join(sorted(params))})")
    for name, value in (dataset_training or {}).items():
        if name not in (config.model_fields_set if set_by_run is None else set_by_run):
            params[name] = value
    return params


def generation_params(
    config: dg.Config, dataset_training: dict | None, set_by_run: set[str], kind: str = GENERATION
) -> dict[str, object]:
    """The causal LM trainer's `--params` for a generation or preference dataset: its `training:` (SFT or preference
    settings), with what the run's config sets laid over; settings only the classifier takes are refused, naming
    them."""
    params_class = params_of_kind(kind)
    known = {item.name for item in fields(params_class)}
    unknown = sorted(set(dataset_training or {}) - known)
    if unknown:
        raise ValueError(
            f"unknown settings {unknown} in a {kind} dataset's training (known: {', '.join(sorted(known))})"
        )
    chosen = config.model_dump()
    classifier_only = sorted(k for k in set_by_run if k not in known and k != "train_on")
    if classifier_only:
        raise ValueError(
            f"the run sets {classifier_only}, which a causal LM fine-tune does not take "
            f"(it takes {', '.join(sorted(known))})"
        )
    params = {**(dataset_training or {}), **{k: chosen[k] for k in set_by_run if k in known}}
    if params.get("model_name_or_path", "") in ("", "default"):  # the default base, SmolLM2: is it installed?
        try:
            shipped_gguf()
        except ModelSourceError as error:
            raise ValueError(
                f"{error}; or set training: {{model_name_or_path: <folder, GGUF file or hub id>}}"
            ) from error
    params_class(**params)  # a bad value is named now, not after the trainer has started
    return params


@dg.asset(
    partitions_def=dataset_versions,
    deps=[TRAINING_EXAMPLES, MODEL_CANDIDATES],  # a chosen candidate can feed it (from_selection)
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
    """The dataset's model, trained with Lightning on the validated examples of its versions up to this one, by the
    kind its task asks for: a classifier (transformer, TF-IDF or multi-task), or a causal LM fine-tuned on answers
    (SFT), on answer pairs (DPO or ORPO) or on documents (continued pre-training)."""
    version = context.partition_key
    try:
        dataset = landing.dataset(version)
        registered = landing.of_same_dataset(context.instance.get_dynamic_partitions(DATASET_VERSIONS), version)
        rules_hash = landing.rule_book(version).digest
        set_by_run = keys_set_by_run(context)
        if dataset.generative:
            params = generation_params(config, dataset.training, set_by_run, dataset.primary.kind)
        else:
            params = trainer_params(config, dataset.training, set_by_run)
        tasks = [(task.name, task.column) for task in dataset.tasks]
        planned = plan_training_set(
            lake,
            registered,
            version,
            train_on=config.train_on,
            rules_hash=rules_hash,
            run_id=context.run_id,
            tasks=tasks,
            kind=dataset.primary.kind,
        )
    except ValueError as error:
        raise dg.Failure(description=f"version {version}: {error}") from error
    models = registry.for_dataset(dataset.name)
    model_version, manifest = planned.model_version, planned.manifest
    if not dataset.generative:
        params = with_chosen_sources(params, config, set_by_run, lake, models, dataset.name, version, manifest.lineage)
    params = with_base_reference(params, manifest.lineage, registry, trainer, version)
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
        metadata=per_dataset(
            dataset.name,
            {
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
            },
        )
    )
