"""What the pipeline commands share: the Dagster instance of a home."""

from __future__ import annotations

import os

import dagster as dg

from assets.partitions import TRAINER_POOL
from assets.storage.home import RefineryHome

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
