"""deployed_model: move the registry's `production` alias to a model that passed its gate."""

import time

import dagster as dg

from assets.partitions import dataset_versions
from assets.resources import ModelRegistryResource
from trainers.registry import read_card, update_card


@dg.asset(
    partitions_def=dataset_versions,
    deps=["model_evaluation"],
    group_name="deploy",
    kinds={"pytorch"},
    code_version="1",
)
def deployed_model(context: dg.AssetExecutionContext, registry: ModelRegistryResource) -> dg.MaterializeResult:
    """The model served by `refinery serve`: the registry's production alias, moved atomically."""
    version = context.partition_key
    folder = registry.version_folder(version)
    gate = read_card(folder).get("evaluation_gate")
    if not gate or not gate["passed"]:
        raise dg.Failure(description=f"model {version} did not pass its evaluation gate: {gate}")
    aliases = registry.promote(version)
    update_card(folder, deployed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return dg.MaterializeResult(
        metadata={
            "production": aliases["production"],
            "previous": aliases.get("previous", ""),
            "model_path": dg.MetadataValue.path(str(folder)),
            "serve": "refinery serve  (POST /predict, GET /health on 127.0.0.1:8080)",
        }
    )
