"""The production model of every dataset a service answers for, each with its own holder and batcher."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from service.batcher import MicroBatcher
from service.holder import ModelHolder
from service.requests import RequestError
from trainers.kinds import ModelKind
from trainers.registry import ALIASES, DEFAULT_MODEL_NAME, UNDECLARED, registries

if TYPE_CHECKING:
    from service.generation import GenerationBatcher


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

    A dataset whose first model is deployed while the service runs is picked up on its first request.
    """

    def __init__(self, models: Path, make: Callable[[str, Path], ServedModel]):
        self.models, self.make = models, make
        self.served: dict[str, ServedModel] = {}
        self._lock = threading.Lock()
        self.refresh()
        if not self.served:
            raise LookupError(f"{models}: no production model to serve (no {ALIASES} in it or its sub-folders)")

    def registries(self) -> dict[str, Path]:
        if (self.models / ALIASES).is_file():  # one registry given directly
            name = UNDECLARED if self.models.name == DEFAULT_MODEL_NAME else self.models.name
            return {name: self.models}
        return registries(self.models)

    def refresh(self) -> None:
        """Load the datasets that gained a production model."""
        with self._lock:
            for dataset, folder in self.registries().items():
                if dataset not in self.served:
                    self.served[dataset] = self.make(dataset, folder)

    def get(self, dataset: str | None) -> ServedModel:
        """The model of `dataset`; with none named, the only one served."""
        if dataset is None:
            if len(self.served) == 1:
                return next(iter(self.served.values()))
            raise RequestError(
                f"this service serves several datasets ({', '.join(self.served)}): POST /predict/{{dataset}}"
            )
        if dataset not in self.served and len(dataset) <= 64:
            self.refresh()
        if dataset not in self.served:
            raise RequestError(f"no model for dataset {dataset[:64]!r}; served: {', '.join(self.served)}", 404)
        return self.served[dataset]

    def close(self) -> None:
        for model in self.served.values():
            model.batcher.close()
            model.holder.close()
