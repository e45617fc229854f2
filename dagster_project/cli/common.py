"""What the pipeline commands share: the Dagster instance of a home and its dataset versions."""

from __future__ import annotations

import os

import dagster as dg

from assets.partitions import DATASET_VERSIONS, TRAINER_POOL
from assets.storage.home import RefineryHome
from assets.storage.version_manifest import dataset_name_of

TRAINER_SLOTS = "REFINERY_TRAINER_SLOTS"  # runs that may train at once (default 1: one set of devices)


def open_instance(home: RefineryHome) -> dg.DagsterInstance:
    """The persistent Dagster instance of `home` (DAGSTER_HOME is set to it, as `make ui` does), with the
    trainer pool's limit in place."""
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
    versions = open_instance(home).get_dynamic_partitions(DATASET_VERSIONS)
    return versions if dataset is None else [v for v in versions if dataset_name_of(home.landing / v) == dataset]
