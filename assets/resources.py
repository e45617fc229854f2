"""Resources: the lake, the landing folder, the model registry and the trainer launcher."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from assets.storage import delta as lake
from trainers import registry

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class LakeResource(dg.ConfigurableResource):
    """Delta Lake tables under `root` (a folder or an object-store URI), one partition per version."""

    root: str
    storage_options: dict[str, str] = Field(default_factory=dict, description="object-store credentials")

    def uri(self, table: str) -> str:
        return f"{self.root.rstrip('/')}/{table}"

    def exists(self, table: str) -> bool:
        return lake.table_exists(self.uri(table), self.storage_options)

    def write_version(self, table: str, frame: pl.DataFrame, version: str, scope: dict[str, str] | None = None) -> int:
        """Replace one version's rows of `table` (within `scope`); returns the new Delta version."""
        return lake.write_version(self.uri(table), frame, version, scope, self.storage_options)

    def write_version_stream(self, table: str, schema, batches, version: str) -> int:
        """Replace one version's rows of `table` with a stream of Arrow batches, in one commit."""
        return lake.write_version_stream(self.uri(table), schema, batches, version, self.storage_options)

    def scan(self, table: str, versions: list[str] | None = None) -> pl.LazyFrame:
        """Lazily read `versions` (all when None) of `table`."""
        if not self.exists(table):
            raise FileNotFoundError(f"Delta table {self.uri(table)} does not exist yet: materialize {table} first")
        return lake.scan_versions(self.uri(table), versions, self.storage_options)

    def table_version(self, table: str) -> int:
        import deltalake

        return deltalake.DeltaTable(self.uri(table), storage_options=self.storage_options or None).version()


class LandingResource(dg.ConfigurableResource):
    """The folder where each dataset version arrives as `landing/<version>/`, and the declared sources."""

    root: str
    sources_dir: str = Field(default="", description="folder of sources/*.yaml (default: REFINERY_SOURCES_DIR)")

    def folder(self, version: str) -> Path:
        return Path(self.root) / version

    def sources(self) -> dict:
        from assets.readers.declared import load_sources

        return load_sources(Path(self.sources_dir) if self.sources_dir else None)


class ModelRegistryResource(dg.ConfigurableResource):
    """Model folders `models/<name>/<version>/` and the aliases that say which one is deployed."""

    root: str
    model_name: str = "refinery-intent"

    @property
    def model_root(self) -> Path:
        return Path(self.root) / self.model_name

    def version_folder(self, version: str) -> Path:
        return self.model_root / version

    def aliases(self) -> dict[str, str]:
        return registry.read_aliases(self.model_root)

    def promote(self, version: str) -> dict[str, str]:
        return registry.promote(self.model_root, version)


class TrainerResource(dg.ConfigurableResource):
    """Launches `trainers.train` as a subprocess through dagster-pipes, optionally under a launcher."""

    bundles_root: str
    launcher: str = Field(default="", description="command prefix, e.g. 'torchrun --nproc-per-node 4'")

    def bundle_folder(self, version: str) -> Path:
        return Path(self.bundles_root) / version

    def command(self, bundle: Path, output: Path, params: dict[str, object]) -> list[str]:
        prefix = shlex.split(self.launcher) if self.launcher else [sys.executable]
        return [
            *prefix,
            "-m",
            "trainers.train",
            "--bundle",
            str(bundle),
            "--output",
            str(output),
            "--params",
            json.dumps(params),
        ]

    def train(
        self, context: dg.AssetExecutionContext, bundle: Path, output: Path, params: dict[str, object]
    ) -> dg.MaterializeResult:
        """Run the trainer and return the materialization it reported."""
        client = dg.PipesSubprocessClient(cwd=str(PROJECT_ROOT))
        return client.run(command=self.command(bundle, output, params), context=context).get_materialize_result()


def git_commit() -> str | None:
    """The project's git commit, when it runs from a checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None
