"""Dynamic batching: concurrent requests share one forward pass."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass

from service.holder import ModelHolder


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


class ServiceBusyError(RuntimeError):
    """More requests are waiting for the model than the service queues; the client should retry shortly."""


class MicroBatcher:
    """Collects concurrent requests for up to `max_wait_ms` (or `max_texts` texts) and predicts them together.

    At most `max_pending` requests wait; one more is refused at once (`ServiceBusyError`) rather than queued
    without bound.
    """

    def __init__(
        self, holder: ModelHolder, max_texts: int = 64, max_wait_ms: float = 5.0, observe=None, max_pending: int = 512
    ):
        self.holder, self.max_texts, self.max_wait = holder, max_texts, max_wait_ms / 1000
        self.observe = observe or (lambda size: None)
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._thread.start()

    async def predict(self, texts: list[str]) -> tuple[str, list]:
        loop = asyncio.get_running_loop()
        pending = _Pending(texts, loop.create_future(), loop)
        try:
            self._queue.put_nowait(pending)
        except queue.Full as error:
            raise ServiceBusyError(f"{self._queue.maxsize} requests are already waiting for the model") from error
        return await pending.future

    def _collect(self) -> list[_Pending]:
        first = self._queue.get()
        if first is None:
            return []
        batch, size = [first], len(first.texts)
        deadline = time.perf_counter() + self.max_wait
        while size < self.max_texts:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if item is None:
                self._queue.put_nowait(None)  # a slot was just freed: the sentinel always fits
                break
            batch.append(item)
            size += len(item.texts)
        return batch

    def _run(self) -> None:
        while batch := self._collect():
            classifier, version = self.holder.classifier, self.holder.version  # one model for the whole batch
            texts = [text for item in batch for text in item.texts]
            self.observe(len(texts))
            try:
                predictions = classifier.predict(texts)
            except Exception as error:
                for item in batch:
                    item.loop.call_soon_threadsafe(set_exception, item.future, error)
                continue
            start = 0
            for item in batch:
                part = predictions[start : start + len(item.texts)]
                start += len(item.texts)
                item.loop.call_soon_threadsafe(set_result, item.future, (version, part))

    def close(self) -> None:
        self._queue.put(None, timeout=10)


def set_result(future: asyncio.Future, value: object) -> None:
    """Resolve a request's future (scheduled on its loop by the batching thread), unless it was cancelled."""
    if not future.done():
        future.set_result(value)


def set_exception(future: asyncio.Future, error: Exception) -> None:
    """Fail a request's future, unless it was cancelled."""
    if not future.done():
        future.set_exception(error)
