"""uvicorn's h11 protocol with a deadline on each request head, so half-open and slow clients cannot hold connections.

uvicorn arms its keep-alive timer only after a response, and any byte received cancels it: a client that
opens a connection and sends nothing, or one header byte every few seconds, would hold its connection (and
one of `limit_concurrency`'s places) for ever.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

REQUEST_HEAD_TIMEOUT_S = 10.0  # from connection (or the previous response) to a complete request line and headers


class HeadDeadlineH11Protocol(H11Protocol):
    """Closes a connection whose request head is not complete `REQUEST_HEAD_TIMEOUT_S` after it could start."""

    head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is in: the app's own body deadline takes over
            self._cancel_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self.head_deadline = self.loop.call_later(REQUEST_HEAD_TIMEOUT_S, self._head_timed_out)

    def _cancel_head_deadline(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def _head_timed_out(self) -> None:
        self.head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
