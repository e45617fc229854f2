"""Lightning's MLflow logger on the run `trainers.tracking.tracked_run` opened for this process."""

from __future__ import annotations

import os

from lightning.pytorch.loggers import MLFlowLogger

from trainers.tracking import RUN_ID, TRACKING_URI


class RunLogger(MLFlowLogger):
    """Lightning's MLflow logger on the run `tracked_run` opened: it adds the per-step metrics; the settings are
    logged once by `tracked_run`, and the run ends there, after its artifacts."""

    def log_hyperparams(self, params: object) -> None:
        return None

    def finalize(self, status: str = "success") -> None:
        return None


def tracking_loggers() -> list[MLFlowLogger]:
    """A logger for this process's tracked run, when it has one."""
    run_id = os.environ.get(RUN_ID)
    if not run_id:
        return []
    return [RunLogger(tracking_uri=os.environ[TRACKING_URI], run_id=run_id)]
