"""The FIX acceptor: TCP (optionally TLS) connections bound to configured sessions.

A connection is anonymous until its first message: that must be a well-formed Logon whose
BeginString, SenderCompID and TargetCompID name a configured session which no other connection
holds; anything else closes the connection without an answer (as QuickFIX does, so nothing is
told to an unknown peer). From then on every parsed message goes to the :class:`Session`;
garbled input is logged and ignored and never consumes a sequence number.

Writes are gathered per event-loop turn and go out in one ``transport.write``; the session's
store is flushed first, so a message is on disk in the store (for resends) no later than it is
on the wire. A 100 ms ticker drives every session's heartbeats and timeouts and flushes the
stores of sessions that sent while disconnected.

Limits: ``max_connections`` open sockets in all and ``max_connections_per_ip`` from one address
(more are closed at once), a Logon within ``logon_timeout_s``, ``max_body_length`` per message,
and an address whose Logons were refused ``max_logon_failures_per_minute`` times in the last
minute is closed at once until that minute has passed.

Garbage costs its sender, not the venue or the other sessions: input is parsed ``READ_SLICE``
bytes at a time, so a connection that is being dropped stops costing at once; a session that
sends ``max_garbled_per_minute`` garbled messages (or garbled stretches) within a minute is ended
with a Logout; and garbled input is logged at most once a second per connection, with the number
left unlogged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import cast

from gateway.fix.codec import DEFAULT_MAX_BODY_LENGTH, FixMessage, FixParser
from gateway.fix.errors import Garbled
from gateway.fix.session import Session

__all__ = ["FixAcceptor"]

log = logging.getLogger("gateway.fix.acceptor")

TICK_S = 0.1
#: Input is parsed this many bytes at a time (the loop reads up to 256 KiB at once).
READ_SLICE = 8192
#: Seconds between two log lines about one connection's garbled input.
GARBLED_LOG_INTERVAL_S = 1.0


class FixAcceptor:
    """Listens for FIX connections and binds each to its configured :class:`Session`."""

    def __init__(
        self,
        sessions: Iterable[Session],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 256,
        max_body_length: int = DEFAULT_MAX_BODY_LENGTH,
        logon_timeout_s: float = 10.0,
        max_connections_per_ip: int = 20,
        max_logon_failures_per_minute: int = 5,
        max_garbled_per_minute: int = 20,
        after_flush: Callable[[], None] | None = None,
    ) -> None:
        """``after_flush`` runs after every periodic flush of the stores (and at stop): what
        the stores now hold can be recorded as reported. ``max_garbled_per_minute``: a logged-on
        session sending that many garbled messages within 60 s is logged out and disconnected
        (0: never)."""
        self.sessions: dict[tuple[bytes, bytes, bytes], Session] = {}
        for session in sessions:
            cfg = session.config
            key = (
                cfg.begin_string.encode(),
                cfg.sender_comp_id.encode(),
                cfg.target_comp_id.encode(),
            )
            if key in self.sessions:
                raise ValueError(f"session {cfg.key} configured twice")
            self.sessions[key] = session
        #: sessions disabled at run time: no Logons, but their stores still take the reports
        #: of their orders, so they are flushed and closed with the others
        self.retired: list[Session] = []
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.max_connections = max_connections
        self.max_body_length = max_body_length
        self.logon_timeout_s = logon_timeout_s
        self.max_connections_per_ip = max_connections_per_ip
        self.max_logon_failures_per_minute = max_logon_failures_per_minute
        self._stopped = False
        self.max_garbled_per_minute = max_garbled_per_minute
        self.after_flush = after_flush
        self.connections: set[_Connection] = set()
        self._per_ip: dict[str, int] = {}
        self._failures: dict[str, deque[float]] = {}
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None

    def add_session(self, session: Session) -> None:
        """Accept Logons for ``session`` from now on (a session added at run time)."""
        cfg = session.config
        key = (cfg.begin_string.encode(), cfg.sender_comp_id.encode(), cfg.target_comp_id.encode())
        if key in self.sessions:
            raise ValueError(f"session {cfg.key} exists already")
        self.sessions[key] = session

    def take_retired(self, target_comp_id: str) -> Session | None:
        """The disabled session of that counterparty, handed over (to be closed), if any."""
        for session in self.retired:
            if session.config.target_comp_id == target_comp_id:
                self.retired.remove(session)
                return session
        return None

    def remove_session(self, target_comp_id: str) -> None:
        """Refuse the counterparty's Logons from now on and end its connection, if any."""
        for key, session in list(self.sessions.items()):
            if key[2] == target_comp_id.encode():
                del self.sessions[key]
                self.retired.append(session)
                session.disconnect("session disabled")

    async def start(self) -> tuple[str, int]:
        """Listen; the address actually bound (port 0 picks a free one)."""
        self._stopped = False
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, ssl=self.ssl_context
        )
        sockname = self._server.sockets[0].getsockname()
        self.port = int(sockname[1])
        self._ticker = asyncio.create_task(self._tick())
        return str(sockname[0]), self.port

    @property
    def listening(self) -> bool:
        """Whether the acceptor takes connections now."""
        server = self._server
        return server is not None and not self._stopped and server.is_serving()

    async def stop(self) -> None:
        """Stop listening, close every connection and flush every store. Safe to call again:
        only the first call does anything."""
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None:
            self._server.close()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        for session in self.sessions.values():
            if session.connected:
                session.detach()
        self.flush()
        for session in [*self.sessions.values(), *self.retired]:
            session.store.close()

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            for conn in list(self.connections):
                if conn.session is None and now - conn.opened >= self.logon_timeout_s:
                    log.info("no Logon within %.0f s: closing", self.logon_timeout_s)
                    conn.close()
            self.flush(timers=True)

    def flush(self, *, timers: bool = False) -> None:
        """Flush every session's store (running their timers first when asked), then tell
        ``after_flush``."""
        for session in self.sessions.values():
            if timers:
                session.on_timer()
            session.store.flush()
        for session in self.retired:
            session.store.flush()
        if self.after_flush is not None:
            self.after_flush()

    def logon_failed(self, ip: str) -> None:
        """A Logon from ``ip`` was refused (bad credentials)."""
        self._failures.setdefault(ip, deque()).append(time.monotonic())

    def blocked(self, ip: str) -> bool:
        """Too many refused Logons from ``ip`` within the last minute."""
        failures = self._failures.get(ip)
        if not failures:
            return False
        horizon = time.monotonic() - 60.0
        while failures and failures[0] < horizon:
            failures.popleft()
        if not failures:
            del self._failures[ip]
            return False
        return len(failures) >= self.max_logon_failures_per_minute

    def find(self, msg: FixMessage) -> Session | None:
        """The session a first message names (its TargetCompID is ours)."""
        return self.sessions.get((msg.fields[0][1], msg.get(56) or b"", msg.get(49) or b""))


class _Connection(asyncio.Protocol):
    """One TCP connection: parser in, batched writes out."""

    def __init__(self, acceptor: FixAcceptor) -> None:
        self.acceptor = acceptor
        self.parser = FixParser(max_body_length=acceptor.max_body_length, any_begin_string=True)
        self.session: Session | None = None
        self.transport: asyncio.Transport | None = None
        self.opened = 0.0
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._closing = False
        self._counted = False
        self.peer = "?"
        self.ip = "?"
        self._garbled_times: deque[float] = deque()  # of the last garbled items, for the limit
        self._garbled_logged_at = -GARBLED_LOG_INTERVAL_S
        self._garbled_unlogged = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport = transport
        self.opened = asyncio.get_running_loop().time()
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.ip = str(peer[0]) if peer else "?"
        acceptor = self.acceptor
        why = ""
        if len(acceptor.connections) >= acceptor.max_connections:
            why = f"{len(acceptor.connections)} connections open"
        elif acceptor._per_ip.get(self.ip, 0) >= acceptor.max_connections_per_ip:
            why = f"{acceptor.max_connections_per_ip} connections open from {self.ip}"
        elif acceptor.blocked(self.ip):
            why = f"too many refused Logons from {self.ip} in the last minute"
        if why:
            log.warning("%s: refused: %s", self.peer, why)
            self._closing = True
            transport.abort()
            return
        acceptor.connections.add(self)
        acceptor._per_ip[self.ip] = acceptor._per_ip.get(self.ip, 0) + 1
        self._counted = True

    def data_received(self, data: bytes) -> None:
        # In slices: a connection found hostile stops costing before the rest of a large read.
        for start in range(0, len(data), READ_SLICE):
            if self._closing:
                return
            self._received(data[start : start + READ_SLICE] if len(data) > READ_SLICE else data)

    def _received(self, data: bytes) -> None:
        parser = self.parser
        before = parser.garbled_count
        for item in parser.feed(data):
            if self._closing:
                return
            session = self.session
            if isinstance(item, Garbled):
                if session is None:
                    log.info("%s: garbled first message (%s): closing", self.peer, item.reason)
                    self.close()
                else:
                    # the first item of the feed takes the count of all (runs are merged)
                    self._garbled(session, item, parser.garbled_count - before)
                    before = parser.garbled_count
                continue
            if session is None:
                session = self._bind(item)
                if session is None:
                    return
            session.on_message(item)

    def _garbled(self, session: Session, item: Garbled, count: int) -> None:
        """Ignore ``count`` garbled messages (``item``: one or a run of them); log them (at most
        once a second); end the session when it sent too many within a minute."""
        now = time.monotonic()
        if now - self._garbled_logged_at >= GARBLED_LOG_INTERVAL_S:
            more = self._garbled_unlogged
            log.warning(
                "%s: %d garbled message(s) ignored: %s (%d bytes)%s",
                session.config.key,
                count,
                item.reason,
                len(item.raw),
                f"; {more} more since the last report" if more else "",
            )
            self._garbled_logged_at = now
            self._garbled_unlogged = 0
        else:
            self._garbled_unlogged += count
        limit = self.acceptor.max_garbled_per_minute
        if not limit:
            return
        times = self._garbled_times
        times.extend([now] * min(count, limit))
        while times and times[0] < now - 60.0:
            times.popleft()
        if len(times) >= limit:
            text = f"Too many garbled messages: {len(times)} within a minute"
            log.warning("%s: %s: logging out", session.config.key, text)
            if session.logged_on and not session.sent_logout:
                session.logout(text)
            self.close()

    def _bind(self, msg: FixMessage) -> Session | None:
        if msg.msg_type != b"A":
            log.info("%s: first message is not a Logon: closing", self.peer)
            self.close()
            return None
        session = self.acceptor.find(msg)
        if session is None:
            log.info(
                "%s: Logon for an unknown session %r/%r/%r: closing",
                self.peer,
                msg.fields[0][1],
                msg.get(49),
                msg.get(56),
            )
            self.close()
            return None
        if session.connected:
            log.warning("%s: %s is already logged on: closing", self.peer, session.config.key)
            self.close()
            return None
        self.session = session
        session.remote = self.peer
        session.attach(self.write, self.close)
        ip = self.ip
        session.on_logon_refused = lambda: self.acceptor.logon_failed(ip)
        return session

    def write(self, raw: bytes) -> None:
        if self._closing:
            return
        self._out.append(raw)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self._out
        if not out:
            return
        self._out = []
        if self.session is not None:
            self.session.store.flush()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(b"".join(out))

    def close(self) -> None:
        if self._closing:
            return
        self._flush()
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        acceptor = self.acceptor
        acceptor.connections.discard(self)
        if self._counted:
            self._counted = False
            left = acceptor._per_ip.get(self.ip, 1) - 1
            if left:
                acceptor._per_ip[self.ip] = left
            else:
                acceptor._per_ip.pop(self.ip, None)
        session = self.session
        if session is not None:
            self.session = None
            session.detach()
