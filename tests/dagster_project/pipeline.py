"""A temporary home with its Dagster instance and a tiny model, and the moves the end-to-end tests make."""

from pathlib import Path

import dagster as dg
import polars as pl

from assets.demo.tickets import DEMO_DATASET, write_demo_declaration, write_demo_drop
from assets.storage.home import RefineryHome
from dagster_project.definitions import build_definitions
from dagster_project.jobs import PIPELINE_JOB
from dagster_project.versions import register_drop
from trainers.registry import models_of

ASSET_KEYS = {
    "raw_documents",
    "clean_documents",
    "tokenized_documents",
    "training_examples",
    "model_candidates",
    "fine_tuned_model",
    "model_evaluation",
    "deployed_model",
}


def _run_config(
    model: Path,
    min_accuracy: float = 0.0,
    learning_rate: float = 1e-3,
    max_regression: float = 1.0,  # no regression check unless a test asks for one
    force: bool = False,
    max_epochs: int = 1,
) -> dict:
    evaluation = {"min_accuracy": min_accuracy, "min_macro_f1": 0.0, "max_regression": max_regression, "force": force}
    return {
        "ops": {
            "fine_tuned_model": {
                "config": {"model_name_or_path": str(model), "max_epochs": max_epochs, "learning_rate": learning_rate}
            },
            "model_evaluation": {"config": evaluation},
            "model_candidates": {"config": {"model_name_or_path": str(model)}},
        }
    }


class Pipeline:
    """One temporary home with its instance, and helpers to run versions through the graph."""

    def __init__(self, home: RefineryHome, instance: dg.DagsterInstance, model: Path):
        self.home, self.instance, self.model = home, instance, model
        self.defs = build_definitions(home)

    def register_demo(self, version: str, rows: int, seed: int) -> None:
        write_demo_declaration(self.home.datasets)  # as `refinery demo` does: versions belong to `tickets`
        write_demo_drop(self.home.root / "incoming" / version, rows=rows, seed=seed)
        register_drop(self.instance, self.home, self.home.root / "incoming" / version, version)

    def register(self, drop: Path, version: str, dataset: str | None = None) -> None:
        register_drop(self.instance, self.home, drop, version, dataset=dataset)

    def run(self, version: str, **config) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def(PIPELINE_JOB)
        return job.execute_in_process(
            partition_key=version,
            instance=self.instance,
            run_config=_run_config(self.model, **config),
            raise_on_error=False,
        )

    def run_job(self, job_name: str, version: str, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def(job_name)
        return job.execute_in_process(
            partition_key=version, instance=self.instance, run_config=run_config or {}, raise_on_error=False
        )

    @property
    def models(self) -> Path:
        return self.home.models / DEMO_DATASET.name

    def model_of(self, version: str) -> Path:
        """The newest model folder trained for a dataset version."""
        return models_of(self.models, version)[-1]

    def table(self, name: str, version: str) -> pl.DataFrame:
        return pl.read_delta(str(self.home.lake / name)).filter(pl.col("dataset_version") == version)
