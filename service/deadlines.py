"""uvicorn's h11 protocol with bounded connections: a deadline on each request head, no keep-alive after an answer
sent with the body unread, a lifetime, and health checks that open connections cannot crowd out.

uvicorn arms its keep-alive timer only after a response, and any byte received cancels it: a client that opens a
connection and sends nothing, or one header byte every few seconds, or a body one byte at a time after it was
answered (401, 408, 413), would hold its connection, and one of `limit_concurrency`'s places, for ever.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

REQUEST_HEAD_TIMEOUT_S = 10.0  # from connection (or the previous response) to a complete request line and headers
CONNECTION_LIFETIME_S = 300.0  # then an idle connection closes, a busy one closes after its current answer
LIFETIME_GRACE_S = 60.0  # and one whose answer is still unfinished this much later is cut
UNREAD_BODY_LINGER_S = 2.0  # after answering with the body unread: the client may read the answer, then it closes
HEALTH_PATHS = frozenset({"/health", "/metrics"})  # cheap answers that `limit_concurrency` never refuses


class BoundedH11Protocol(H11Protocol):
    """Closes a connection whose request head is late, whose answer went out with its body unread, or that has
    lived `CONNECTION_LIFETIME_S`; health checks and metrics are answered however many connections are open."""

    head_deadline: asyncio.TimerHandle | None = None
    lifetime: asyncio.TimerHandle | None = None
    linger: asyncio.TimerHandle | None = None
    ordinary_limit: int | None = None

    @property
    def limit_concurrency(self) -> int | None:  # type: ignore[override]
        """The limit uvicorn applies to the request it has just parsed (its scope is set before the check): none
        for a health check, which idle or trickling connections must not crowd out."""
        path = (getattr(self, "scope", None) or {}).get("path")
        return None if path in HEALTH_PATHS else self.ordinary_limit

    @limit_concurrency.setter
    def limit_concurrency(self, limit: int | None) -> None:
        self.ordinary_limit = limit

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.lifetime = self.loop.call_later(CONNECTION_LIFETIME_S, self._lifetime_over)
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
        self.linger = self.loop.call_later(UNREAD_BODY_LINGER_S, self._abort)

    def _lifetime_over(self) -> None:
        """Close an idle connection; let a busy one finish its answer (no keep-alive), and cut it after a grace."""
        if self.cycle is None or self.cycle.response_complete:
            self._abort()
            return
        self.cycle.keep_alive = False
        self.lifetime = self.loop.call_later(LIFETIME_GRACE_S, self._abort)

    def _abort(self) -> None:
        """Drop the connection now: `close()` would wait for a client that stopped reading to take the rest."""
        self.transport.abort()

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
