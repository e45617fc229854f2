"""Experiment tracking: each fine-tune is an MLflow run holding its settings, per-step metrics, curves, model card
and (once the pipeline has evaluated it) its test metrics. Runs go to the home's local store by default, or to
any tracking server by one setting, REFINERY_MLFLOW_TRACKING_URI ("off" turns tracking off)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from trainers.registry import MODEL_CARD, update_card

TRACKING_URI = "REFINERY_MLFLOW_TRACKING_URI"  # where runs go; "off": nowhere; unset: the home's local store
EXPERIMENT = "REFINERY_MLFLOW_EXPERIMENT"  # the experiment a trainer's run joins (the pipeline sets the dataset)
RUN_ID = "REFINERY_MLFLOW_RUN_ID"  # the run this process tracks into, for its Lightning logger
OFF = "off"
DEFAULT_EXPERIMENT = "refinery"
TRACKED_FILES = (MODEL_CARD, "metrics.csv", "training_curves.png", "reliability.png", "confusion_matrix.png")
MAX_PARAM_CHARS = 6000  # MLflow's limit on a parameter's value


def local_store(home: Path) -> str:
    """The home's own tracking store: an SQLite file, its artifacts in a folder beside it."""
    return f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"


def tracking_uri(home: Path) -> str | None:
    """Where this home's runs go: the setting, else its local store; None when tracking is off."""
    setting = os.environ.get(TRACKING_URI, "").strip()
    if setting.lower() == OFF:
        return None
    return setting or local_store(home)


def tracking_environment(home: Path, experiment: str) -> dict[str, str]:
    """What a trainer process is told: where its run goes and which experiment it joins (empty: tracking off)."""
    uri = tracking_uri(home)
    return {TRACKING_URI: uri, EXPERIMENT: experiment} if uri else {TRACKING_URI: OFF}


@contextmanager
def tracking_to(environment: Mapping[str, str]) -> Iterator[None]:
    """Runs this process opens in the block go where `environment` (`tracking_environment`'s) says; the variables
    are put back after it (a step that trains in-process, such as the search's trials, tracks like a trainer)."""
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def artifact_root(uri: str) -> str | None:
    """A local store's artifact folder, beside its database (MLflow's default, ./mlruns, is the working folder)."""
    if not uri.startswith("sqlite:///"):
        return None  # a tracking server decides
    folder = Path(uri.removeprefix("sqlite:///")).parent / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.as_uri()


def run_link(uri: str, experiment_id: str, run_id: str) -> str | None:
    """The run's page on a tracking server (without any credentials in the URI); None for a local store."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return None
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


@dataclass(frozen=True)
class TrackedRun:
    """An MLflow run this process opened, and the client that writes to it."""

    client: object  # mlflow.MlflowClient
    uri: str
    experiment_id: str
    run_id: str

    def finish(self, output: Path) -> None:
        """The model folder's card, metrics and pictures as artifacts, and the run named in the card."""
        for name in TRACKED_FILES:
            if (output / name).is_file():
                self.client.log_artifact(self.run_id, str(output / name))
        if (output / MODEL_CARD).is_file():
            update_card(output, tracking={"experiment_id": self.experiment_id, "run_id": self.run_id})


@contextmanager
def tracked_run(run_name: str, params: Mapping[str, object]) -> Iterator[TrackedRun | None]:
    """An MLflow run for one fine-tune, with its settings as parameters, ended FINISHED or FAILED; None when
    tracking is off or on a rank other than 0 (one run per fine-tune, however many processes train it)."""
    uri = os.environ.get(TRACKING_URI, "").strip()
    if not uri or uri.lower() == OFF or os.environ.get("RANK", "0") != "0":
        yield None
        return
    from mlflow import MlflowClient
    from mlflow.entities import Param

    client = MlflowClient(tracking_uri=uri)
    name = os.environ.get(EXPERIMENT) or DEFAULT_EXPERIMENT
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name, artifact_root(uri))
    run = client.create_run(experiment_id, run_name=run_name, tags={"refinery.model": run_name})
    values = [Param(key, as_param(value)) for key, value in sorted(params.items())]
    client.log_batch(run.info.run_id, params=values)
    os.environ[RUN_ID] = run.info.run_id
    status = "FAILED"
    try:
        yield TrackedRun(client, uri, experiment_id, run.info.run_id)
        status = "FINISHED"
    finally:
        os.environ.pop(RUN_ID, None)
        client.set_terminated(run.info.run_id, status)


def as_param(value: object) -> str:
    """A setting as MLflow keeps it: text, at most MAX_PARAM_CHARS."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_PARAM_CHARS]


def log_test_metrics(home: Path, card: Mapping[str, object], metrics: Mapping[str, float]) -> dict[str, str]:
    """The pipeline's test metrics added to the model's run; what the asset metadata shows of it (the run and,
    on a tracking server, its link). Empty when the model has no run or tracking is off."""
    tracked, uri = card.get("tracking"), tracking_uri(home)
    if not isinstance(tracked, Mapping) or not uri:
        return {}
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    for name, value in metrics.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            client.log_metric(str(tracked["run_id"]), f"test_{name}", float(value))
    shown = {"mlflow_run": f"experiment {tracked['experiment_id']}, run {tracked['run_id']}"}
    link = run_link(uri, str(tracked["experiment_id"]), str(tracked["run_id"]))
    return {**shown, "mlflow_link": link} if link else shown
