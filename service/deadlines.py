"""uvicorn's h11 protocol with bounded connections: a deadline on each request head, no keep-alive after an answer
sent with the body unread, an absolute lifetime, and places kept free for health checks.

uvicorn arms its keep-alive timer only after a response, and any byte received cancels it: a client that opens a
connection and sends nothing, or one header byte every few seconds, or a body one byte at a time after it was
answered (401, 408, 413), would hold its connection, and one of `limit_concurrency`'s places, for ever.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

REQUEST_HEAD_TIMEOUT_S = 10.0  # from connection (or the previous response) to a complete request line and headers
CONNECTION_LIFETIME_S = 300.0  # no connection, however busy, lives longer
UNREAD_BODY_LINGER_S = 2.0  # after answering with the body unread: the client may read the answer, then it closes
HEALTH_PATHS = frozenset({"/health", "/metrics"})
HEALTH_RESERVE = 8  # connections beyond `limit_concurrency` that only health checks and metrics may use


class BoundedH11Protocol(H11Protocol):
    """Closes a connection whose request head is late, whose answer went out with its body unread, or that has
    lived `CONNECTION_LIFETIME_S`; health checks may use `HEALTH_RESERVE` places past the concurrency limit."""

    head_deadline: asyncio.TimerHandle | None = None
    lifetime: asyncio.TimerHandle | None = None
    linger: asyncio.TimerHandle | None = None
    ordinary_limit: int | None = None

    @property
    def limit_concurrency(self) -> int | None:  # type: ignore[override]
        """The limit uvicorn applies to the request it has just parsed (its scope is set before the check)."""
        if self.ordinary_limit is None:
            return None
        path = (getattr(self, "scope", None) or {}).get("path")
        return self.ordinary_limit + (HEALTH_RESERVE if path in HEALTH_PATHS else 0)

    @limit_concurrency.setter
    def limit_concurrency(self, limit: int | None) -> None:
        self.ordinary_limit = limit

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.lifetime = self.loop.call_later(CONNECTION_LIFETIME_S, self._close_now)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        if self.linger is not None:  # answered and half-closed: what still arrives is the unread body, dropped
            return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is in: the app's own body deadline takes over
            self._cancel_head_deadline()

    def on_response_complete(self) -> None:
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            self._close_after_answer()
            return
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        for timer in (self.lifetime, self.linger):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def _close_after_answer(self) -> None:
        """The body was never read to its end: end our side once the answer is out, close shortly after.

        Closing at once with unread bytes in the socket would make the kernel reset the connection, and the
        client could lose the answer (a 401 or 413 it should see).
        """
        self.server_state.total_requests += 1
        self._unset_keepalive_if_required()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()  # read and drop what is still in flight, so the close is clean
        self.linger = self.loop.call_later(UNREAD_BODY_LINGER_S, self._close_now)

    def _close_now(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

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
