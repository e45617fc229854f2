"""Resources: the lake, the landing folder, the model registry and the trainer launcher.

Each wraps a plain storage object (`Lake`, `ModelRegistry`) that pure code takes, so the pure
packages never see Dagster; the resource only adds the configuration the UI shows.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import dagster as dg
from pydantic import Field

from assets.datasets.declaration import DatasetDeclaration
from assets.datasets.resolve import dataset_name_of, declaration_for, rule_book_for
from assets.readers.declared import Source, load_sources
from assets.storage.delta import Lake
from assets.storage.home import PROJECT_ROOT, check_version_name
from rules import RuleBook
from trainers.registry import ModelRegistry, registry_name


class LakeResource(dg.ConfigurableResource, Lake):
    """Delta Lake tables under `root` (a folder or an object-store URI), one partition per version."""

    root: str
    storage_options: dict[str, str] = Field(default_factory=dict, description="object-store credentials")


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
        """Those of `versions` (in order) that belong to `version`'s dataset; only their manifests are read."""
        datasets = self.datasets()
        name = dataset_name_of(self.folder(version), datasets)
        return [v for v in versions if dataset_name_of(self.folder(v), datasets) == name]

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

    def for_dataset(self, dataset: str) -> ModelRegistry:
        """The registry of one dataset's models."""
        return ModelRegistry(self.root, registry_name(dataset, self.model_name))


class TrainerResource(dg.ConfigurableResource):
    """Launches `trainers.train` as a subprocess through dagster-pipes, optionally under a launcher."""

    bundles_root: str
    launcher: str = Field(default="", description="command prefix, e.g. 'torchrun --nproc-per-node 4'")

    def bundle_folder(self, version: str) -> Path:
        return Path(self.bundles_root) / version

    def command(self, bundle: Path, output: Path, params: dict[str, object], checkpoints: Path) -> list[str]:
        prefix = shlex.split(self.launcher) if self.launcher else [sys.executable]
        return [*prefix, "-m", "trainers.train", "--bundle", str(bundle), "--output", str(output),
                "--params", json.dumps(params), "--checkpoints", str(checkpoints)]  # fmt: skip

    def train(
        self,
        context: dg.AssetExecutionContext,
        bundle: Path,
        output: Path,
        params: dict[str, object],
        checkpoints: Path,
    ) -> dg.MaterializeResult:
        """Run the trainer and return the materialization it reported."""
        client = dg.PipesSubprocessClient(cwd=str(PROJECT_ROOT))
        command = self.command(bundle, output, params, checkpoints)
        return client.run(command=command, context=context).get_materialize_result()
