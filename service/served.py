"""The production model of every dataset a service answers for, each with its own holder and batcher."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from contracts.datasets import UNDECLARED
from service.batcher import MicroBatcher
from service.holder import ModelHolder
from service.requests import RequestError
from trainers.kinds import ModelKind
from trainers.registry import ALIASES, DEFAULT_MODEL_NAME, registries

if TYPE_CHECKING:
    from service.generation import GenerationBatcher

LOG = logging.getLogger("refinery.service")
RETRY_FAILED_S = 30.0


@dataclass
class ServedModel:
    """One dataset's production model and the batcher in front of it (a classifier's, or a generator's)."""

    dataset: str
    holder: ModelHolder
    batcher: MicroBatcher | GenerationBatcher
    kind: ModelKind  # what the production folder is; its family says which routes answer for it

    @property
    def family(self) -> str:
        return self.kind.family


class ServedModels:
    """Models by dataset: a home's `models/` folder (every registry with a production alias) or one registry.

    A dataset whose first model is deployed while the service runs is picked up on its first request. One
    dataset's model that fails to load is reported (in `failed` and the log) and the others are served; it is
    tried again on a request for it, at most every RETRY_FAILED_S.
    """

    def __init__(self, models: Path, make: Callable[[str, Path], ServedModel]):
        self.models, self.make = models, make
        self.served: dict[str, ServedModel] = {}
        self.failed: dict[str, str] = {}  # dataset -> the error's type, for /health (the full reason is logged)
        self._reasons: dict[str, str] = {}  # dataset -> the whole error, for the 503 of a request behind the token
        self._failed_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self.refresh()
        if not self.served:
            reasons = "; ".join(f"{name}: {reason}" for name, reason in self._reasons.items())
            found = f" ({reasons})" if reasons else f" (no {ALIASES} in it or its sub-folders)"
            raise LookupError(f"{models}: no production model to serve{found}")

    def registries(self) -> dict[str, Path]:
        if (self.models / ALIASES).is_file():  # one registry given directly
            name = UNDECLARED if self.models.name == DEFAULT_MODEL_NAME else self.models.name
            return {name: self.models}
        return registries(self.models)

    def refresh(self) -> None:
        """Load the datasets that gained a production model; one that fails waits RETRY_FAILED_S to be retried."""
        with self._lock:
            for dataset, folder in self.registries().items():
                retry_at = self._failed_at.get(dataset, 0.0) + RETRY_FAILED_S
                if dataset not in self.served and time.monotonic() >= retry_at:
                    self._load(dataset, folder)

    def _load(self, dataset: str, folder: Path) -> None:
        try:
            self.served[dataset] = self.make(dataset, folder)
        except Exception as error:  # a broken registry or folder must not take the other datasets down
            LOG.exception("dataset %s: its production model does not load; serving the others", dataset)
            self.failed[dataset] = f"{type(error).__name__}; see the service log"
            self._reasons[dataset] = f"{type(error).__name__}: {error}"[:500]
            self._failed_at[dataset] = time.monotonic()
            return
        for known in (self.failed, self._reasons, self._failed_at):
            known.pop(dataset, None)

    def get(self, dataset: str | None) -> ServedModel:
        """The model of `dataset`; with none named, the only one served."""
        if dataset is None:
            if len(self.served) == 1 and not self.failed:  # never another dataset's model in a failed one's place
                return next(iter(self.served.values()))
            named = ", ".join(sorted([*self.served, *self.failed]))
            raise RequestError(f"this service answers for several datasets ({named}): POST /predict/{{dataset}}")
        if dataset not in self.served and len(dataset) <= 64:
            self.refresh()
        if dataset in self.failed and dataset not in self.served:
            raise RequestError(f"the model of dataset {dataset!r} does not load: {self._reasons[dataset]}", 503)
        if dataset not in self.served:
            raise RequestError(f"no model for dataset {dataset[:64]!r}; served: {', '.join(self.served)}", 404)
        return self.served[dataset]

    async def lookup(self, dataset: str | None) -> ServedModel:
        """`get` for a request handler: a dataset not loaded yet is looked for (and loaded) off the event loop,
        so loading one model never stalls the answers of the others."""
        if dataset is None or dataset in self.served:
            return self.get(dataset)
        return await asyncio.to_thread(self.get, dataset)

    def close(self) -> None:
        for model in self.served.values():
            model.batcher.close()
            model.holder.close()
