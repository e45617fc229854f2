"""The lake on object storage: a local S3-compatible server (moto) on 127.0.0.1 holds every Delta table."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.storage.delta import Lake, object_store_options
from assets.storage.home import LAKE_URI, RefineryHome
from tests.dagster_project.pipeline import Pipeline
from trainers.registry import read_aliases
from trainers.serving.server import free_port


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server in its own process (delta-rs holds the GIL while it waits on the network, so a server
    thread in this process would never answer) with a bucket `lake`, and the AWS_* variables delta-rs reads."""
    import boto3

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "refinery", "AWS_SECRET_ACCESS_KEY":
                        "not-a-secret", "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="lake")
                break
            except Exception:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_an_s3_lake_writes_with_conditional_puts_unless_a_locking_provider_is_chosen() -> None:
    assert object_store_options("s3://lake/x", {}) == {"conditional_put": "etag"}
    assert object_store_options("s3://lake/x", {"AWS_S3_LOCKING_PROVIDER": "dynamodb"}) == {
        "AWS_S3_LOCKING_PROVIDER": "dynamodb"
    }
    assert object_store_options("/local/lake", {}) == {}


@pytest.mark.slow
def test_the_pipeline_runs_with_its_lake_on_a_local_s3_server(
    s3: str, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LAKE_URI, "s3://lake/refinery")
    home = RefineryHome(tmp_path / "home").ensure()
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        pipeline = Pipeline(home, instance, tiny_model)
        pipeline.register_demo("v1", rows=300, seed=1)
        assert pipeline.run("v1").success
    assert not (home.lake / "raw_documents").exists()  # nothing of the lake on the local disk
    lake = Lake("s3://lake/refinery")
    raw = lake.scan("raw_documents", ["v1"]).collect()
    examples = lake.scan("training_examples", ["v1"]).collect()
    quarantined = lake.scan("quarantine", ["v1"]).select(pl.len()).collect().item()
    assert raw.height > 200 and examples.height + quarantined >= raw.height
    assert read_aliases(home.models / "tickets")["production"]  # trained from the S3 lake and deployed
