"""The model being served, swapped for a new one when the `production` alias moves."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from trainers.inference import Classifier
from trainers.kinds import load_classifier
from trainers.registry import ALIASES, PRODUCTION, resolve_alias


class ModelHolder:
    """The production model; a watcher thread loads a new one when the alias file changes, then swaps."""

    def __init__(
        self,
        model_root: Path,
        poll_seconds: float = 1.0,
        on_reload: Callable[[str], None] | None = None,
        quantize: bool = False,
    ):
        self.model_root, self.poll_seconds, self.on_reload = model_root, poll_seconds, on_reload
        self.quantize = quantize
        self._stamp: int | None = None
        self.version: str | None = None
        self.loaded = None
        self.current: tuple[str | None, object] = (None, None)
        self._stop = threading.Event()
        self.refresh()
        self._watcher = threading.Thread(target=self._watch, name="model-watcher", daemon=True)
        self._watcher.start()

    def refresh(self) -> bool:
        """Load the aliased model if the alias file changed; the old model serves until the new one is ready."""
        stamp = (self.model_root / ALIASES).stat().st_mtime_ns
        if stamp == self._stamp:
            return False
        folder = resolve_alias(self.model_root, PRODUCTION)
        if folder.name != self.version:
            loaded = self.load(folder)
            self.loaded, self.version = loaded, folder.name  # one reference swap; readers see old or new
            self.current = (folder.name, loaded)  # both at once, for a reader that needs them to agree
            if self.on_reload:
                self.on_reload(folder.name)
        self._stamp = stamp
        return True

    def load(self, folder: Path) -> object:
        """The model of an exported folder, ready to answer."""
        return load_classifier(folder, quantize=self.quantize)

    @property
    def classifier(self) -> Classifier:
        return self.loaded

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception as error:  # a half-written or broken model must not stop the service
                print(f"model reload failed, still serving {self.version}: {error}", flush=True)

    def close(self) -> None:
        self._stop.set()
