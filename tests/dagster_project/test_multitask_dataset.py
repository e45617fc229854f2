"""A dataset that declares two tasks is learned by one multi-task model, gated per task, served and batch-scored
with both."""

from __future__ import annotations

import random
from pathlib import Path

import dagster as dg
import polars as pl

from assets.datasets.declaration import DatasetDeclaration, Task, declaration_yaml
from assets.readers.mapping import RecordMapping
from assets.storage.home import RefineryHome
from dagster_project.jobs import MONITORING_JOB
from service.app import build_app
from service.server import ServiceThread
from tests.conftest import build_tiny_model
from tests.dagster_project.pipeline import Pipeline
from tests.servers import call
from trainers.registry import read_aliases, read_card

ORDERS = DatasetDeclaration(
    "orders",
    mapping=RecordMapping(text_column="message", label_column="outcome"),
    tasks=(Task("outcome", "label", ("late", "lost", "damaged")), Task("urgency", "urgency", ("high", "low"))),
)
WORDS = {
    "late": ["delayed", "waiting", "slow", "courier", "overdue", "behind", "schedule", "days"],
    "lost": ["missing", "vanished", "never", "gone", "trace", "parcel", "depot", "stolen"],
    "damaged": ["broken", "cracked", "smashed", "dented", "torn", "crushed", "leaking", "bent"],
}


def write_orders(folder: Path, rows: int) -> None:
    """Order complaints with an outcome and an urgency; every fifth row has no urgency."""
    rng = random.Random(5)
    folder.mkdir(parents=True)
    records = []
    for n in range(rows):
        outcome, urgent = ORDERS.primary.labels[n % 3], n % 2 == 0
        text = "my order is " + " ".join(rng.sample(WORDS[outcome], 4)) + (" please help now" if urgent else "")
        records.append(
            {"message": text, "outcome": outcome, "urgency": None if n % 5 == 4 else ("high" if urgent else "low")}
        )
    pl.DataFrame(records).write_csv(folder / "orders.csv")


def test_a_two_task_dataset_trains_one_model_gated_per_task_and_served_with_both(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "tiny-bert")
    home = RefineryHome(tmp_path / "home").ensure()
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        pipeline = Pipeline(home, instance, model)
        (home.datasets / "orders.yaml").write_text(declaration_yaml(ORDERS))
        write_orders(tmp_path / "orders-drop", 300)
        pipeline.register(tmp_path / "orders-drop", "orders-v1", "orders")
        result = pipeline.run("orders-v1", max_epochs=2)
        assert result.success
        examples = pipeline.table("training_examples", "orders-v1")
        # rows without an urgency (every fifth; source_row counts the header line) are kept, masked for that task
        without = examples.select(((pl.col("source_row") - 2) % 5 == 4) == pl.col("urgency").is_null())
        assert without.to_series().all() and examples["urgency"].null_count() > 50
        evaluated = result.asset_materializations_for_node("model_evaluation")[0].metadata
        assert set(evaluated["test_per_task"].value) == {"outcome", "urgency"}
        production = home.models / "orders" / read_aliases(home.models / "orders")["production"]
        assert read_card(production)["tasks"] == ["outcome", "urgency"]
        assert pipeline.run_job(MONITORING_JOB, "orders-v1").success
        scored = pipeline.table("batch_predictions", "orders-v1")  # every task's label, from one forward pass
        assert scored["urgency_label"].is_in(["high", "low"]).all() and scored["urgency_score"].is_not_null().all()
        assert scored["label"].is_in(list(ORDERS.primary.labels)).all()
    with ServiceThread(build_app(home.models, token="")) as service:
        status, body = call(f"{service.url}/predict/orders", {"texts": ["my order is broken and smashed please"]})
    assert status == 200
    tasks = body["predictions"][0]["tasks"]
    assert tasks["outcome"]["label"] in ORDERS.primary.labels and tasks["urgency"]["label"] in {"high", "low"}
