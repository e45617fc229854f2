"""deployed_model: move the registry's `production` alias to a model that passed its gate."""

import dagster as dg

from assets.models.deployment import NotDeployableError, deploy_latest_model
from assets.partitions import dataset_versions
from assets.resources import LandingResource, ModelRegistryResource
from trainers.model_store import ModelStore
from trainers.registry import AliasConflictError


@dg.asset(
    partitions_def=dataset_versions,
    deps=["model_evaluation"],
    group_name="deploy",
    kinds={"pytorch"},
    code_version="2",
)
def deployed_model(
    context: dg.AssetExecutionContext, registry: ModelRegistryResource, landing: LandingResource
) -> dg.MaterializeResult:
    """The model served by `refinery serve`: the production alias of the dataset's registry, moved atomically."""
    try:
        models = registry.for_dataset(landing.dataset(context.partition_key).name)
        folder, aliases = deploy_latest_model(models, context.partition_key, context.run_id)
    except (NotDeployableError, AliasConflictError, LookupError) as error:
        raise dg.Failure(description=str(error)) from error
    published = {}
    if registry.store_uri:  # the folder first, then the aliases that name it
        store = ModelStore(registry.store_uri)
        published["store_uri"] = store.publish_model(models.model_name, folder)
        store.publish_aliases(models.model_name, models.model_root)
    return dg.MaterializeResult(
        metadata={
            **published,
            "model_version": folder.name,
            "production": aliases["production"],
            "previous": aliases.get("previous", ""),
            "model_path": dg.MetadataValue.path(str(folder)),
            "serve": "refinery serve  (POST /predict, GET /health on 127.0.0.1:8080)",
        }
    )
