"""How a trainer tells Dagster what it does: logs and the final materialization through Pipes, or stderr and
stdout when run by hand; rank 0 alone speaks."""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack


def global_rank() -> int:
    """This process's rank under torchrun, SLURM or Lightning's launcher (0 when alone)."""
    for variable in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if variable in os.environ:
            return int(os.environ[variable])
    return 0


class Reporter:
    """Sends logs and the final materialization to Dagster through Pipes, or to stderr when run by hand."""

    def __init__(self, model_location: str | None = None) -> None:
        self._stack = ExitStack()
        self.pipes = None
        self.model_location = model_location  # where the model ends up, when not the folder it was exported to

    def __enter__(self) -> Reporter:
        from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes

        if global_rank() == 0 and PipesEnvVarParamsLoader().is_dagster_pipes_process():
            self.pipes = self._stack.enter_context(open_dagster_pipes())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.__exit__(*exc_info)

    def log(self, message: str) -> None:
        if self.pipes is not None:
            self.pipes.log.info(message)
        elif global_rank() == 0:
            print(message, file=sys.stderr, flush=True)

    def report(self, metadata: dict[str, object]) -> None:
        if self.model_location and "model_path" in metadata:
            metadata = {**metadata, "model_path": self.model_location}
        if self.pipes is not None:
            self.pipes.report_asset_materialization(metadata=metadata)
        elif global_rank() == 0:
            print(json.dumps(metadata, default=str), flush=True)
