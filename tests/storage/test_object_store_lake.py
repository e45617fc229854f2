"""The lake and the models on object storage: a local S3-compatible server (moto) on 127.0.0.1 holds every Delta
table and every deployed model, and a service on a home of its own serves production from there."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from pyarrow import fs as pafs

from assets.storage.delta import Lake, object_store_options
from assets.storage.home import LAKE_URI, RefineryHome
from tests.dagster_project.pipeline import Pipeline
from tests.servers import call, free_port
from trainers.model_store import MODELS_URI, ModelStore
from trainers.registry import read_aliases


def test_an_s3_lake_writes_with_conditional_puts_unless_a_locking_provider_is_chosen() -> None:
    assert object_store_options("s3://lake/x", {}) == {"conditional_put": "etag"}
    assert object_store_options("s3://lake/x", {"AWS_S3_LOCKING_PROVIDER": "dynamodb"}) == {
        "AWS_S3_LOCKING_PROVIDER": "dynamodb"
    }
    assert object_store_options("/local/lake", {}) == {}


@pytest.mark.slow
def test_the_pipeline_runs_on_a_local_s3_server_and_a_service_elsewhere_serves_its_model_from_there(
    s3: str, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LAKE_URI, "s3://lake/refinery")
    monkeypatch.setenv(MODELS_URI, "s3://lake/models")
    home = RefineryHome(tmp_path / "home").ensure()
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        pipeline = Pipeline(home, instance, tiny_model)
        pipeline.register_demo("v1", rows=300, seed=1)
        result = pipeline.run("v1")
        assert result.success
    assert not (home.lake / "raw_documents").exists()  # nothing of the lake on the local disk
    lake = Lake("s3://lake/refinery")
    raw = lake.scan("raw_documents", ["v1"]).collect()
    examples = lake.scan("training_examples", ["v1"]).collect()
    quarantined = lake.scan("quarantine", ["v1"]).select(pl.len()).collect().item()
    assert raw.height > 200 and examples.height + quarantined >= raw.height
    production = read_aliases(home.models / "tickets")["production"]  # trained from the S3 lake and deployed
    store = ModelStore("s3://lake/models")
    assert store.aliases("tickets")["production"] == production
    # the trainer read its bundle from the store (removed once read) and wrote the model there; the step downloaded it
    assert not store.filesystem.get_file_info(pafs.FileSelector(store._path(".bundles"), allow_not_found=True))
    trained = result.asset_materializations_for_node("fine_tuned_model")[0].metadata
    assert trained["model_path"].value == f"s3://lake/models/tickets/{production}"  # the trainer's upload
    assert (home.models / "tickets" / production / "model_card.json").is_file()

    service_home = tmp_path / "service"  # another machine: no shared disk with the pipeline's home
    port = free_port()
    environment = {**os.environ, "REFINERY_HOME": str(service_home)}
    with subprocess.Popen(
        [sys.executable, "-m", "dagster_project.cli", "serve", "--port", str(port)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as service:
        try:
            status, body = wait_for_prediction(f"http://127.0.0.1:{port}", service)
        finally:
            service.terminate()
            output = service.communicate(timeout=60)[0]
    assert status == 200 and body["model_version"] == production
    assert (service_home / "model-cache" / "tickets" / production / "model_card.json").is_file()
    assert lake.exists("predictions"), output  # the service's prediction log went to the S3 lake, flushed at exit
    logged = lake.scan("predictions").collect()
    assert logged["prediction_id"].to_list() == [body["predictions"][0]["id"]]

    environment["REFINERY_HOME"] = str(home.root)
    maintain = [sys.executable, "-m", "dagster_project.cli", "lake", "maintain"]
    refused = subprocess.run(
        [*maintain, "--retention-hours", "0"], env=environment, capture_output=True, text=True, timeout=300
    )
    assert refused.returncode != 0 and "refused on an object-store lake" in refused.stderr
    maintained = subprocess.run(maintain, env=environment, capture_output=True, text=True, timeout=300)
    assert maintained.returncode == 0, maintained.stderr[-3000:]
    assert "raw_documents" in maintained.stdout and "predictions" in maintained.stdout
    assert lake.scan("raw_documents", ["v1"]).collect().height == raw.height  # compacted, nothing lost


def wait_for_prediction(url: str, service: subprocess.Popen) -> tuple[int, dict]:
    """POST one text to the service once it answers /health; fails with its output if it exits first."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise AssertionError(f"refinery serve exited {service.returncode}:\n{service.stdout.read()}")
        try:
            if call(f"{url}/health")[0] == 200:
                return call(f"{url}/predict", {"texts": ["my vpn keeps dropping every hour"]})
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError("refinery serve did not answer within 180 s")


def test_allowing_unsafe_renames_does_not_turn_off_conditional_puts(monkeypatch) -> None:
    assert object_store_options("s3://lake/x", {"AWS_S3_ALLOW_UNSAFE_RENAME": "true"}) == {
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
        "conditional_put": "etag",
    }
    monkeypatch.setenv("AWS_S3_ALLOW_UNSAFE_RENAME", "true")
    assert object_store_options("s3://lake/x", {}) == {"conditional_put": "etag"}
