"""What the pipeline commands share: the Dagster instance of a home."""

from __future__ import annotations

import os

import dagster as dg

from assets.storage.home import RefineryHome


def open_instance(home: RefineryHome) -> dg.DagsterInstance:
    """The persistent Dagster instance of `home` (DAGSTER_HOME is set to it, as `make ui` does)."""
    home.ensure()
    os.environ["DAGSTER_HOME"] = str(home.dagster)
    return dg.DagsterInstance.get()
