"""Resources: the lake, the landing folder, the model registry and the trainer launcher.

Each wraps a plain storage object (`Lake`, `ModelRegistry`) that pure code takes, so the pure
packages never see Dagster; the resource only adds the configuration the UI shows.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from assets.datasets.declaration import DatasetDeclaration
from assets.datasets.resolve import declaration_for, rule_book_for
from assets.models.launch import (
    POD_ALLOW_LISTS,
    LauncherError,
    PodSettings,
    check_pod_choices,
    launcher_prefix,
    trainer_command,
    trainer_pod_spec,
)
from assets.readers.declared import Source, load_sources
from assets.storage.delta import Lake
from assets.storage.home import PROJECT_ROOT, check_version_name
from assets.storage.version_manifest import dataset_name_of, superseded_versions
from rules import RuleBook
from trainers.model_store import ModelStore, download_folder
from trainers.registry import ModelRegistry, registry_name
from trainers.tracking import tracking_environment


class LakeResource(dg.ConfigurableResource, Lake):
    """Delta Lake tables under `root` (a folder or an object-store URI), one partition per version."""

    root: str
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="object-store settings; credentials belong in the environment"
    )


class LandingResource(dg.ConfigurableResource):
    """The folder where each dataset version arrives as `landing/<version>/`, and the declared sources."""

    root: str
    sources_dir: str = Field(default="", description="folder of sources/*.yaml (default: REFINERY_SOURCES_DIR)")
    datasets_dir: str = Field(default="", description="folder of datasets/<name>.yaml (default: beside landing/)")

    def folder(self, version: str) -> Path:
        """`landing/<version>/`; a partition key added by hand (the UI does not check them) must be a valid name."""
        root = Path(self.root).resolve()
        folder = (root / check_version_name(version)).resolve()
        if not folder.is_relative_to(root):  # a symlinked version folder pointing elsewhere
            raise ValueError(f"landing/{version} resolves to {folder}, outside {root}")
        return folder

    def datasets(self) -> Path:
        return Path(self.datasets_dir) if self.datasets_dir else Path(self.root).parent / "datasets"

    def dataset(self, version: str) -> DatasetDeclaration:
        """The declaration of the dataset `version` was registered for."""
        return declaration_for(self.datasets(), dataset_name_of(self.folder(version), self.datasets()))

    def of_same_dataset(self, versions: list[str], version: str) -> list[str]:
        """Those of `versions` (in order) that belong to `version`'s dataset, less those that `version` or a version
        before it supersedes (a reviewed copy stands in for the version it corrects); only manifests are read."""
        datasets = self.datasets()
        name = dataset_name_of(self.folder(version), datasets)
        same = [v for v in versions if dataset_name_of(self.folder(v), datasets) == name]
        upto = same[: same.index(version) + 1] if version in same else [*same, version]
        superseded = {old for v in upto for old in superseded_versions(self.folder(v))}
        return [v for v in same if v not in superseded]

    def rule_book(self, version: str) -> RuleBook:
        """The rules `version` is held to: the shipped ones with its dataset's overrides."""
        return rule_book_for(self.dataset(version))

    def sources(self) -> dict[str, Source]:
        return load_sources(Path(self.sources_dir) if self.sources_dir else None)


class ModelRegistryResource(dg.ConfigurableResource, ModelRegistry):
    """Model folders `models/<name>/<version>/` and the aliases that say which one is deployed: one name per
    dataset (`models/tickets/`), `model_name` for versions registered without a dataset."""

    root: str
    model_name: str = "refinery-intent"
    store_uri: str = Field(default="", description="object-store URI deployed models are published to (s3://...)")

    def for_dataset(self, dataset: str) -> ModelRegistry:
        """The registry of one dataset's models."""
        return ModelRegistry(self.root, registry_name(dataset, self.model_name))


class TrainerResource(dg.ConfigurableResource):
    """Launches `trainers.train` through dagster-pipes: as a local subprocess (optionally under a launcher such
    as torchrun), or as a Kubernetes pod with the Refinery home's volume claim mounted at the same path."""

    bundles_root: str
    kind: Literal["subprocess", "kubernetes"] = Field(default="subprocess", description="where the trainer runs")
    launcher: str = Field(default="", description="command prefix, e.g. 'torchrun --nproc-per-node 4'")
    image: str = Field(default="", description="kubernetes: an image with Refinery installed")
    namespace: str = Field(default="default", description="kubernetes: the namespace of trainer pods")
    volume_claim: str = Field(default="", description="kubernetes: the claim holding the Refinery home")
    cpu: str = Field(default="", description="kubernetes: CPU request and limit, e.g. '8'")
    memory: str = Field(default="", description="kubernetes: memory request and limit, e.g. '32Gi'")
    gpus: int = Field(default=0, description="kubernetes: nvidia.com/gpu limit")
    node_selector: dict[str, str] = Field(default_factory=dict, description="kubernetes: node labels to run on")
    service_account: str = Field(default="", description="kubernetes: the pod's service account")
    secret_env: str = Field(default="", description="kubernetes: a Secret exposed as environment variables")
    store_uri: str = Field(
        default="",
        description="object store the bundle and model pass through (s3://...), "
        "so the trainer needs no shared disk; default: $REFINERY_MODELS_URI",
    )

    def bundle_folder(self, version: str) -> Path:
        return Path(self.bundles_root) / version

    def command(
        self, bundle: Path | str, output: Path | str, params: dict[str, object], checkpoints: Path
    ) -> list[str]:
        interpreter = "python" if self.kind == "kubernetes" else sys.executable  # the pod's own Python
        try:
            prefix = launcher_prefix(self.launcher, interpreter)
        except LauncherError as error:
            raise dg.Failure(description=str(error)) from None
        return trainer_command(prefix, bundle, output, params, checkpoints)

    def pod_settings(self) -> PodSettings:
        """The pod a Kubernetes trainer asks for; the home is the folder above the bundles."""
        return PodSettings(
            self.image,
            str(Path(self.bundles_root).parent),
            self.volume_claim,
            self.cpu,
            self.memory,
            self.gpus,
            dict(self.node_selector),
            self.service_account,
            self.secret_env,
            through_store=bool(self.store_uri),
        )

    def pod_request(self, command: list[str]) -> dict[str, object]:
        """What the Kubernetes Pipes client is asked to start: image, command, namespace and base pod spec."""
        spec = trainer_pod_spec(self.pod_settings())
        check_pod_choices({name: getattr(self, name) for name in POD_ALLOW_LISTS})
        return {"image": self.image, "command": command, "namespace": self.namespace, "base_pod_spec": spec}

    def train(
        self,
        context: dg.AssetExecutionContext,
        bundle: Path,
        output: Path,
        params: dict[str, object],
        checkpoints: Path,
    ) -> dg.MaterializeResult:
        """Run the trainer and return the materialization it reported; through the object store, the trainer
        downloads the uploaded bundle and uploads the model, which is then downloaded to `output`."""
        tracking = tracking_environment(Path(self.bundles_root).parent, experiment=output.parent.name)
        if not self.store_uri:
            return self._launch(context, self.command(bundle, output, params, checkpoints), tracking)
        store = ModelStore(self.store_uri)
        bundle_uri, output_uri = store.publish_bundle(bundle), f"{store.uri}/{output.parent.name}/{output.name}"
        reported = self._launch(context, self.command(bundle_uri, output_uri, params, checkpoints), tracking)
        download_folder(output_uri, output)
        store.remove_bundle(bundle.name)  # the local bundle stays, as on one machine
        return reported

    def _launch(
        self, context: dg.AssetExecutionContext, command: list[str], tracking: dict[str, str]
    ) -> dg.MaterializeResult:
        """Run the trainer with the experiment tracking settings in its environment (a pod: through its Secret)."""
        if self.kind == "kubernetes":
            from dagster_k8s import PipesK8sClient  # pip install dagster-k8s

            return PipesK8sClient().run(context=context, **self.pod_request(command)).get_materialize_result()
        client = dg.PipesSubprocessClient(cwd=str(PROJECT_ROOT))
        return client.run(command=command, context=context, env=tracking).get_materialize_result()
