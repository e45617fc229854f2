"""What the pipeline commands share: the Dagster instance of a home and its dataset versions."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from assets.storage.home import DAGSTER_POSTGRES_URL, RefineryHome, dagster_yaml
from assets.storage.version_manifest import dataset_name_of
from contracts.datasets import DATASET_VERSIONS, TRAINER_POOL

if TYPE_CHECKING:
    import dagster as dg

DAGSTER_INDEX = Path("history", "runs", "index.db")  # the default SQLite event-log index, under DAGSTER_HOME

TRAINER_SLOTS = "REFINERY_TRAINER_SLOTS"  # runs that may train at once (default 1: one set of devices)


def open_instance(home: RefineryHome) -> dg.DagsterInstance:
    """The persistent Dagster instance of `home` (DAGSTER_HOME is set to it, as `make ui` does), with the
    trainer pool's limit in place."""
    import dagster as dg

    home.ensure()
    os.environ["DAGSTER_HOME"] = str(home.dagster)
    instance = dg.DagsterInstance.get()
    limit_trainer_pool(instance, os.environ.get(TRAINER_SLOTS))
    return instance


def limit_trainer_pool(instance: dg.DagsterInstance, slots: str | None) -> None:
    """Give `refinery_trainer` its limit: `slots` when set, else 1 when the pool has none yet (a limit set with
    `dagster instance concurrency set` is kept)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    if slots is not None:
        if not slots.isdigit() or int(slots) < 1:  # 0 slots would queue every training run forever
            raise ValueError(f"{TRAINER_SLOTS}: expected a whole number of slots, at least 1, got {slots!r}")
        wanted = int(slots)
    elif TRAINER_POOL in storage.get_concurrency_keys():
        return
    else:
        wanted = 1
    if (
        TRAINER_POOL not in storage.get_concurrency_keys()
        or storage.get_concurrency_info(TRAINER_POOL).slot_count != wanted
    ):
        storage.set_concurrency_slots(TRAINER_POOL, wanted)


def registered_versions(home: RefineryHome, dataset: str | None = None) -> list[str]:
    """The home's versions in registration order (of `dataset` when given)."""
    versions = indexed_versions(home)
    if versions is None:
        versions = open_instance(home).get_dynamic_partitions(DATASET_VERSIONS)
    return versions if dataset is None else [v for v in versions if dataset_name_of(home.landing / v) == dataset]


def indexed_versions(home: RefineryHome) -> list[str] | None:
    """The registered versions read straight from the home's SQLite event-log index, the table and order that
    `get_dynamic_partitions` reads, without loading Dagster and its storage (1.8 s of a 2.4 s `refinery status`).
    None, and the caller asks the instance, unless the home runs on Refinery's own SQLite config and the index
    answers."""
    config, index = home.dagster / "dagster.yaml", home.dagster / DAGSTER_INDEX
    if os.environ.get(DAGSTER_POSTGRES_URL) or not index.is_file() or not config.is_file():
        return None
    if config.read_text() != dagster_yaml():
        return None
    query = "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = ? ORDER BY id"
    try:
        with closing(sqlite3.connect(f"{index.as_uri()}?mode=ro", uri=True)) as index_db:
            return [partition for (partition,) in index_db.execute(query, (DATASET_VERSIONS,))]
    except sqlite3.Error:
        return None
