"""Two datasets with different label sets and rules in one home: each trained, both served by one service."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from assets.datasets.declaration import DatasetDeclaration, Task, declaration_yaml
from assets.readers.mapping import RecordMapping
from assets.storage.home import RefineryHome
from service.app import build_app
from service.server import ServiceThread
from tests.conftest import build_tiny_model
from tests.dagster_project.pipeline import Pipeline
from tests.servers import call
from trainers.registry import read_aliases

ORDERS = DatasetDeclaration(
    "orders",
    mapping=RecordMapping(text_column="message", label_column="outcome"),
    tasks=(Task("outcome", "label", ("late", "lost", "damaged"), "quarantine"),),
    rules={"clean_documents": {"columns": {"text": {"checks": [{"name": "text_length", "str_length": {"max": 60}}]}}}},
)


# fmt: off
WORDS = {
    "late": ["delayed", "waiting", "still", "tracking", "slow", "courier", "expected", "arrival", "yesterday",
             "week", "overdue", "behind", "schedule", "promised", "days"],
    "lost": ["missing", "vanished", "never", "arrived", "disappeared", "nowhere", "gone", "found", "trace",
             "parcel", "depot", "address", "neighbour", "stolen"],
    "damaged": ["broken", "cracked", "smashed", "dented", "torn", "scratched", "crushed", "leaking",
                "shattered", "bent", "wet", "ruined", "glass", "screen", "box"],
}
# fmt: on


def write_orders(folder: Path, rows: int) -> None:
    """Order complaints with their own columns and labels; every tenth is too long for the orders rules."""
    import random

    rng = random.Random(5)
    folder.mkdir(parents=True)
    records = []
    for n in range(rows):
        label = ORDERS.primary.labels[n % 3]
        text = "my order is " + " ".join(rng.sample(WORDS[label], 5))
        records.append({"message": text + (" and it is really bad" * 4 if n % 10 == 0 else ""), "outcome": label})
    pl.DataFrame(records).write_csv(folder / "orders.csv")


def test_two_datasets_keep_their_own_rules_labels_and_models_and_one_service_serves_both(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "tiny-bert")
    home = RefineryHome(tmp_path / "home").ensure()
    with dg.instance_for_test(temp_dir=str(home.dagster)) as instance:
        pipeline = Pipeline(home, instance, model)
        pipeline.register_demo("tickets-v1", rows=400, seed=1)
        (home.datasets / "orders.yaml").write_text(declaration_yaml(ORDERS))
        write_orders(tmp_path / "orders-drop", 300)
        pipeline.register(tmp_path / "orders-drop", "orders-v1", "orders")
        assert pipeline.run("tickets-v1").success
        assert pipeline.run("orders-v1").success
        orders_quarantine = pipeline.table("quarantine", "orders-v1")
        assert orders_quarantine.filter(pl.col("rule") == "text_length").height == 30  # the orders rules only
        assert pipeline.table("clean_documents", "tickets-v1")["text"].str.len_chars().max() > 60  # shipped rules
        assert read_aliases(home.models / "orders")["production"].startswith("orders-v1-")
        assert read_aliases(home.models / "tickets")["production"].startswith("tickets-v1-")
    with ServiceThread(build_app(home.models, token="")) as service:
        _, health = call(f"{service.url}/health")
        assert set(health["models"]) == {"orders", "tickets"}
        _, orders = call(f"{service.url}/predict/orders", {"texts": ["my order is delayed and still waiting"]})
        _, tickets = call(f"{service.url}/predict/tickets", {"texts": ["my vpn keeps dropping at home"]})
    assert orders["predictions"][0]["label"] in ORDERS.primary.labels
    assert tickets["predictions"][0]["label"] not in ORDERS.primary.labels
