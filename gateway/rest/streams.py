"""WebSocket market streams as Binance serves them: ``/ws/<stream>``, ``/stream?streams=a/b``,
and ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` / ``SET_PROPERTY`` /
``GET_PROPERTY`` on any of them, answered ``{"result": ..., "id": ...}``.

Streams: ``<symbol>@depth`` and ``@depth@100ms`` (diffs numbered by the book's update id, see
``gateway.rest.bookfeed``), ``@depth5/10/20`` (and ``@100ms``), ``@bookTicker``, ``@trade``,
``@aggTrade``, ``@kline_<interval>``, ``@ticker``, ``@miniTicker``, ``!ticker@arr``,
``!miniTicker@arr``.

Fan-out: each update is encoded once per form (raw, and wrapped for combined connections) into
a whole WebSocket frame, and that frame is written straight to every subscriber's transport: no
task, queue or await per message per subscriber. A consumer whose transport holds more than
``ws_max_pending_bytes`` (its socket full: it does not read fast enough) is dropped at once,
never buffered without bound. Limits: ``ws_messages_per_s`` incoming messages per second
(beyond: closed), ``ws_streams_per_connection``, ``ws_connections_per_5m`` per address,
``ws_lifetime_s``. The server pings every 20 s and closes a connection that does not answer
(aiohttp's heartbeat); it never compresses (permessage-deflate would compress each message once
per connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aiohttp import WSMsgType, web

from engine.core import Core
from engine.events import Event
from gateway.rest.bookfeed import BookDiff, BookFeed
from gateway.rest.candles import INTERVALS
from gateway.rest.context import SERVED, Served
from gateway.rest.errors import compact
from gateway.rest.history import TradeRecord

__all__ = ["StreamHub", "add_streams", "find_hub", "hub_of"]

log = logging.getLogger("gateway.rest.streams")

#: The partial depth streams' sizes.
PARTIAL = (5, 10, 20)
HEARTBEAT_S = 20.0


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


class Connection:
    """One WebSocket client of the streams: its subscriptions and its queue of messages."""

    __slots__ = (
        "closed",
        "combined",
        "id",
        "ip",
        "received",
        "streams",
        "transport",
        "ws",
    )

    def __init__(self, ws: web.WebSocketResponse, ip: str, combined: bool, number: int) -> None:
        self.ws = ws
        self.ip = ip
        self.combined = combined
        self.id = number
        self.streams: set[str] = set()
        #: where its frames are written, once the handshake is done
        self.transport: asyncio.Transport | None = None
        self.closed = False
        #: times (monotonic s) of the recent incoming messages, for the per-second limit
        self.received: deque[float] = deque()


class StreamHub:
    """Subscriptions, the book feed and the periodic streams of one application."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.config = served.config
        self.by_stream: dict[str, set[Connection]] = {}
        self.connections: set[Connection] = set()
        self.feed = BookFeed()
        self._next_id = 1
        #: symbol (Binance name, lower case) -> venue symbol
        self.lower = {name.lower(): spec.symbol for name, spec in served.symbols.by_name.items()}
        #: depth diffs waiting for their 100 ms / 1000 ms emission: stream -> merged diff
        self._waiting: dict[str, list[Any]] = {}
        self._partial: dict[str, dict[str, Any]] = {}
        self._unsubscribe: list[Callable[[], None]] = []
        self._timer: asyncio.Task[None] | None = None
        self._connects: dict[str, deque[float]] = {}
        self.sent = 0
        self.dropped = 0
        #: connections refused by ``ws_connections_per_5m``
        self.refused_connects = 0
        self._trades: list[tuple[str, TradeRecord]] = []
        #: kline stream -> (open time, closed) of the candle it last sent
        self._klines_sent: dict[str, tuple[int, bool]] = {}
        #: symbol -> (bid price, bid qty, ask price, ask qty) at the last durable batch end
        self.tops: dict[str, tuple[int, int, int, int]] = {}

    # -- life cycle ------------------------------------------------------------------------------

    def start(self, core: Core) -> None:
        venue = self.served.venue
        self.feed.load(core)
        for symbol, m in core.markets.items():
            bid, ask = m.bids.best(), m.asks.best()
            self.tops[symbol] = (
                bid.price if bid is not None else 0,
                bid.qty if bid is not None else 0,
                ask.price if ask is not None else 0,
                ask.qty if ask is not None else 0,
            )
        self.served.history.on_trade.append(self.on_trade)
        self._unsubscribe.append(lambda: self.served.history.on_trade.remove(self.on_trade))
        self._unsubscribe.append(venue.subscribe(self.on_events))
        self._unsubscribe.append(venue.subscribe_batches(self.on_batch))
        self._timer = asyncio.get_running_loop().create_task(self._tick(), name="rest-streams")

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            with contextlib.suppress(ValueError):
                unsubscribe()
        self._unsubscribe.clear()
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        for conn in list(self.connections):
            await conn.ws.close(code=1001, message=b"server stopping")

    # -- feeding ---------------------------------------------------------------------------------

    def on_trade(self, symbol: str, record: TradeRecord) -> None:
        """A trade the history just numbered (called from its ``apply``, before ours)."""
        if self.by_stream:
            self._trades.append((symbol, record))

    def on_events(self, seq: int, ts: int, events: list[Event]) -> None:
        self.feed.apply(seq, ts, events)
        if self._trades:
            trades, self._trades = self._trades, []
            self._publish_trades(trades, ts // 1_000_000)

    def _publish_trades(self, trades: list[tuple[str, TradeRecord]], ms: int) -> None:
        """``@trade`` for each trade, ``@aggTrade`` for each aggregate (an aggregate never
        spans two commands: it is complete here)."""
        aggregates: dict[tuple[str, int], list[TradeRecord]] = {}
        for symbol, r in trades:
            name = self.served.symbols.name(symbol)
            units = self.served.symbols.units[symbol]
            stream = name.lower() + "@trade"
            if stream in self.by_stream:
                self.publish(
                    stream,
                    {
                        "e": "trade",
                        "E": ms,
                        "s": name,
                        "t": r.id,
                        "p": units.tick.text(r.price),
                        "q": units.lot.text(r.qty),
                        "T": r.time,
                        "m": r.buyer_maker,
                        "M": True,
                    },
                )
            if name.lower() + "@aggTrade" in self.by_stream:
                aggregates.setdefault((symbol, r.agg_id), []).append(r)
        for (symbol, agg_id), records in aggregates.items():
            name = self.served.symbols.name(symbol)
            units = self.served.symbols.units[symbol]
            first = records[0]
            self.publish(
                name.lower() + "@aggTrade",
                {
                    "e": "aggTrade",
                    "E": ms,
                    "s": name,
                    "a": agg_id,
                    "p": units.tick.text(first.price),
                    "q": units.lot.text(sum(r.qty for r in records)),
                    "f": first.id,
                    "l": records[-1].id,
                    "T": first.time,
                    "m": first.buyer_maker,
                    "M": True,
                },
            )

    def on_batch(self) -> None:
        """A durable batch ended: read the books it changed (the core holds exactly what is
        durable now), publish bookTicker, remember the diffs and partial books for the timer."""
        core = self.served.venue.core
        diffs = self.feed.flush(core)
        for diff in diffs:
            self.tops[diff.symbol] = (*diff.best_bid, *diff.best_ask)
        if not diffs or not self.by_stream:
            return
        for diff in diffs:
            name = self.served.symbols.name(diff.symbol).lower()
            for suffix in ("@depth", "@depth@100ms"):
                stream = name + suffix
                if stream in self.by_stream:
                    self._wait_diff(stream, diff)
            if name + "@bookTicker" in self.by_stream:
                self._book_ticker(name, diff)
            for size in PARTIAL:
                for suffix in (f"@depth{size}", f"@depth{size}@100ms"):
                    stream = name + suffix
                    if stream in self.by_stream:
                        self._partial[stream] = self._partial_book(core, diff, size)

    def _wait_diff(self, stream: str, diff: BookDiff) -> None:
        waiting = self._waiting.get(stream)
        if waiting is None:
            self._waiting[stream] = [
                diff.symbol,
                diff.first,
                diff.last,
                dict(diff.bids),
                dict(diff.asks),
            ]
            return
        waiting[2] = diff.last
        waiting[3].update(diff.bids)
        waiting[4].update(diff.asks)

    def _book_ticker(self, name: str, diff: BookDiff) -> None:
        units = self.served.symbols.units[diff.symbol]
        tick, lot = units.tick.text, units.lot.text
        self.publish(
            name + "@bookTicker",
            {
                "u": diff.last,
                "s": name.upper(),
                "b": tick(diff.best_bid[0]),
                "B": lot(diff.best_bid[1]),
                "a": tick(diff.best_ask[0]),
                "A": lot(diff.best_ask[1]),
            },
        )

    def _partial_book(self, core: Core, diff: BookDiff, size: int) -> dict[str, Any]:
        m = core.markets[diff.symbol]
        units = self.served.symbols.units[diff.symbol]
        tick, lot = units.tick.text, units.lot.text
        return {
            "lastUpdateId": diff.last,
            "bids": [[tick(p), lot(q)] for p, q, _ in m.bids.depth(size)],
            "asks": [[tick(p), lot(q)] for p, q, _ in m.asks.depth(size)],
        }

    async def _tick(self) -> None:
        """Every 100 ms: the 100 ms depth streams; every second: the 1000 ms ones, tickers and
        candles. The ticks keep to a fixed 100 ms grid: sleeping 100 ms after each tick's work
        would stretch the period by that work (to 200 ms and more on a loaded loop); a tick
        that fell behind by more than a period skips to the next one due."""
        loop = asyncio.get_running_loop()
        count = 0
        due = loop.time()
        while True:
            due += 0.1
            now = loop.time()
            if due < now - 0.1:
                due = now
            await asyncio.sleep(max(0.0, due - now))
            count += 1
            try:
                self._emit(fast=True)
                if count % 10 == 0:
                    self._emit(fast=False)
                    self._periodic()
            except Exception:
                log.exception("the streams' timer failed")

    def _emit(self, *, fast: bool) -> None:
        now = self.served.venue.now_ms()
        for stream in [s for s in self._waiting if s.endswith("@100ms") == fast]:
            symbol, first, last, bids, asks = self._waiting.pop(stream)
            units = self.served.symbols.units[symbol]
            tick, lot = units.tick.text, units.lot.text
            name = self.served.symbols.name(symbol)
            self.publish(
                stream,
                {
                    "e": "depthUpdate",
                    "E": now,
                    "s": name,
                    "U": first,
                    "u": last,
                    "b": [[tick(p), lot(q)] for p, q in sorted(bids.items(), reverse=True)],
                    "a": [[tick(p), lot(q)] for p, q in sorted(asks.items())],
                },
            )
        for stream in [s for s in self._partial if s.endswith("@100ms") == fast]:
            self.publish(stream, self._partial.pop(stream))

    def _periodic(self) -> None:
        """Tickers and candles, once a second, for the streams someone follows."""
        history = self.served.history
        now = self.served.venue.now_ms()
        traded = set(history.changed)
        history.changed.clear()
        for stream in list(self.by_stream):
            name, _, kind = stream.partition("@")
            symbol = self.lower.get(name)
            if symbol is None:
                continue
            if kind.startswith("kline_"):
                # the open candle while it trades, and once more when its interval has ended
                # (``x`` true), as Binance sends the final state of each candle
                event = self._kline(symbol, kind[6:], now)
                if event is None:
                    continue
                candle = event["k"]
                sent = self._klines_sent.get(stream)
                closed = (candle["t"], True)
                if symbol in traded or (candle["x"] and sent != closed):
                    self.publish(stream, event)
                    self._klines_sent[stream] = (candle["t"], candle["x"])
            elif kind == "ticker":
                self.publish(stream, self._ticker(symbol, now, mini=False))
            elif kind == "miniTicker":
                self.publish(stream, self._ticker(symbol, now, mini=True))
        for stream, mini in (("!ticker@arr", False), ("!miniTicker@arr", True)):
            if stream in self.by_stream:
                self.publish(
                    stream, [self._ticker(s, now, mini=mini) for s in sorted(self.lower.values())]
                )

    def _kline(self, symbol: str, interval: str, now: int) -> dict[str, Any] | None:
        history = self.served.history
        candle = history.current_candle(symbol, interval)
        if candle is None:
            return None
        row = history.kline_row(history.history(symbol), candle)
        name = self.served.symbols.name(symbol)
        return {
            "e": "kline",
            "E": now,
            "s": name,
            "k": {
                "t": row[0],
                "T": row[6],
                "s": name,
                "i": interval,
                "f": candle.first_id,
                "L": candle.last_id,
                "o": row[1],
                "c": row[4],
                "h": row[2],
                "l": row[3],
                "v": row[5],
                "n": row[8],
                "x": now > row[6],
                "q": row[7],
                "V": row[9],
                "Q": row[10],
                "B": "0",
            },
        }

    def _ticker(self, symbol: str, now: int, *, mini: bool) -> dict[str, Any]:
        tops = self.tops
        row = self.served.history.ticker_24hr(
            symbol, "FULL", lambda s: tops.get(s, (0, 0, 0, 0)), now
        )
        assert isinstance(row, dict)
        name = self.served.symbols.name(symbol)
        if mini:
            return {
                "e": "24hrMiniTicker",
                "E": now,
                "s": name,
                "c": row["lastPrice"],
                "o": row["openPrice"],
                "h": row["highPrice"],
                "l": row["lowPrice"],
                "v": row["volume"],
                "q": row["quoteVolume"],
            }
        return {
            "e": "24hrTicker",
            "E": now,
            "s": name,
            "p": row["priceChange"],
            "P": row["priceChangePercent"],
            "w": row["weightedAvgPrice"],
            "x": row["prevClosePrice"],
            "c": row["lastPrice"],
            "Q": row["lastQty"],
            "b": row["bidPrice"],
            "B": row["bidQty"],
            "a": row["askPrice"],
            "A": row["askQty"],
            "o": row["openPrice"],
            "h": row["highPrice"],
            "l": row["lowPrice"],
            "v": row["volume"],
            "q": row["quoteVolume"],
            "O": row["openTime"],
            "C": row["closeTime"],
            "F": row["firstId"],
            "L": row["lastId"],
            "n": row["count"],
        }

    # -- fan-out ---------------------------------------------------------------------------------

    def publish(self, stream: str, data: object) -> None:
        """Encode ``data`` once per form into a whole WebSocket frame and write that frame to
        every subscriber of ``stream``.

        Written straight to each connection's transport: no task, queue or await per message
        per subscriber (the transport's buffer is the queue), which is what makes a thousand
        subscribers cheap. A consumer whose buffer holds more than ``ws_max_pending_bytes``
        (its socket is full: it does not read fast enough) is cut off at once."""
        subscribers = self.by_stream.get(stream)
        if not subscribers:
            return
        raw = combined = b""
        for conn in list(subscribers):
            if conn.combined:
                if not combined:
                    combined = text_frame(_dumps({"stream": stream, "data": data}).encode())
                self._send(conn, combined)
            else:
                if not raw:
                    raw = text_frame(_dumps(data).encode())
                self._send(conn, raw)

    def _send(self, conn: Connection, frame: bytes) -> None:
        transport = conn.transport
        if conn.closed or transport is None:
            return
        if transport.is_closing():
            self._slow(conn, count=False)
            return
        transport.write(frame)
        self.sent += 1
        if transport.get_write_buffer_size() > self.config.ws_max_pending_bytes:
            self.dropped += 1
            self._slow(conn)

    def _slow(self, conn: Connection, *, count: bool = True) -> None:
        """A consumer that cannot keep up (or is gone): forget it and drop its connection;
        what it was owed is dropped with it, never kept."""
        conn.closed = True
        self._forget(conn)
        if conn.transport is not None:
            conn.transport.abort()

    def _forget(self, conn: Connection) -> None:
        for stream in conn.streams:
            subscribers = self.by_stream.get(stream)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del self.by_stream[stream]
        conn.streams.clear()

    # -- connections -----------------------------------------------------------------------------

    def valid(self, stream: str) -> bool:
        if stream in ("!ticker@arr", "!miniTicker@arr"):
            return True
        name, at, kind = stream.partition("@")
        if not at or name not in self.lower:
            return False
        if kind in ("depth", "depth@100ms", "depth@1000ms", "trade", "aggTrade", "bookTicker"):
            return True
        if kind in ("ticker", "miniTicker"):
            return True
        for size in PARTIAL:
            if kind in (f"depth{size}", f"depth{size}@100ms", f"depth{size}@1000ms"):
                return True
        return kind.startswith("kline_") and kind[6:] in INTERVALS

    def subscribe(self, conn: Connection, streams: Iterable[str]) -> str | None:
        """Add ``streams``; an error text when one is unknown or there would be too many."""
        wanted = [_canonical(s) for s in streams]
        for stream in wanted:
            if not self.valid(stream):
                return f"Invalid request: unknown stream '{stream[:64]}'"
        if len(conn.streams | set(wanted)) > self.config.ws_streams_per_connection:
            return f"Invalid request: more than {self.config.ws_streams_per_connection} streams"
        for stream in wanted:
            conn.streams.add(stream)
            self.by_stream.setdefault(stream, set()).add(conn)
        return None

    def unsubscribe(self, conn: Connection, streams: Iterable[str]) -> None:
        for stream in streams:
            stream = _canonical(stream)
            conn.streams.discard(stream)
            subscribers = self.by_stream.get(stream)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del self.by_stream[stream]

    def admit(self, ip: str) -> bool:
        """Whether ``ip`` may open another connection (``ws_connections_per_5m``)."""
        now = time.monotonic()
        recent = self._connects.get(ip)
        if recent is None:
            if len(self._connects) > 100_000:
                self._connects.clear()  # a flood of addresses: forget rather than grow
            recent = self._connects[ip] = deque()
        while recent and now - recent[0] > 300:
            recent.popleft()
        if len(recent) >= self.config.ws_connections_per_5m:
            self.refused_connects += 1
            return False
        recent.append(now)
        return True

    async def serve(
        self, request: web.Request, streams: Sequence[str], combined: bool
    ) -> web.StreamResponse:
        ip = request.remote or ""
        if not self.admit(ip):
            return web.json_response(
                {
                    "code": -1034,
                    "msg": "Too many connection attempts from IP; current limit is "
                    f"{self.config.ws_connections_per_5m} per '5 minutes'.",
                },
                status=429,
                dumps=compact,
            )
        # compress=False: permessage-deflate would compress each message once per connection
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=64 * 1024, compress=False)
        if streams:
            probe = Connection(ws, ip, combined, 0)
            error = self.subscribe(probe, streams)
            self._forget(probe)
            if error is not None:
                return web.json_response({"code": -1121, "msg": error}, status=400, dumps=compact)
        await ws.prepare(request)
        conn = Connection(ws, ip, combined, self._next_id)
        conn.transport = request.transport
        self._next_id += 1
        self.connections.add(conn)
        if streams:
            self.subscribe(conn, streams)
        lifetime = asyncio.get_running_loop().call_later(
            self.config.ws_lifetime_s, lambda: asyncio.ensure_future(ws.close(code=1000))
        )
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    if not self._rate_ok(conn):
                        await ws.close(code=1008, message=b"too many messages")
                        break
                    answer = self._command(conn, msg.data)
                    if answer is not None:
                        self._send(conn, text_frame(answer.encode()))
                elif msg.type is WSMsgType.BINARY:
                    await ws.close(code=1003, message=b"text frames only")
                    break
        finally:
            lifetime.cancel()
            conn.closed = True
            self._forget(conn)
            self.connections.discard(conn)
        return ws

    def _rate_ok(self, conn: Connection) -> bool:
        now = time.monotonic()
        received = conn.received
        received.append(now)
        while received and now - received[0] >= 1.0:
            received.popleft()
        return len(received) <= self.config.ws_messages_per_s

    def _command(self, conn: Connection, text: str) -> str | None:
        """Answer one SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY /
        GET_PROPERTY message."""
        try:
            message = json.loads(text)
        except ValueError:
            return _dumps(
                {"error": {"code": 3, "msg": "Invalid JSON: expected a JSON object"}, "id": None}
            )
        if not isinstance(message, dict):
            return _dumps(
                {"error": {"code": 3, "msg": "Invalid JSON: expected a JSON object"}, "id": None}
            )
        request_id = message.get("id")
        if request_id is not None and (
            isinstance(request_id, bool) or not isinstance(request_id, int | str)
        ):
            return _error(2, "Invalid request: request ID must be an unsigned integer", None)
        method = message.get("method")
        params = message.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return _error(
                    2, "Invalid request: 'params' must be a list of stream names", request_id
                )
            if method == "SUBSCRIBE":
                problem = self.subscribe(conn, params)
                if problem is not None:
                    return _error(2, problem, request_id)
            else:
                self.unsubscribe(conn, params)
            return _dumps({"result": None, "id": request_id})
        if method == "LIST_SUBSCRIPTIONS":
            return _dumps({"result": sorted(conn.streams), "id": request_id})
        if method == "SET_PROPERTY":
            if (
                isinstance(params, list)
                and len(params) == 2
                and params[0] == "combined"
                and isinstance(params[1], bool)
            ):
                conn.combined = params[1]
                return _dumps({"result": None, "id": request_id})
            return _error(0, "Unknown property", request_id)
        if method == "GET_PROPERTY":
            if isinstance(params, list) and params == ["combined"]:
                return _dumps({"result": conn.combined, "id": request_id})
            return _error(0, "Unknown property", request_id)
        return _error(2, "Invalid request: unknown method", request_id)


def text_frame(payload: bytes) -> bytes:
    """A whole server-to-client WebSocket text frame (RFC 6455: FIN, opcode 1, unmasked) of
    ``payload``: built once per message, written to every subscriber as is."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


def _error(code: int, msg: str, request_id: object) -> str:
    return _dumps({"error": {"code": code, "msg": msg}, "id": request_id})


def _canonical(stream: str) -> str:
    """Symbols are lower case in stream names; ``@depth@1000ms`` is ``@depth``."""
    name, at, kind = stream.partition("@")
    if name.startswith("!"):
        return stream
    if kind.endswith("@1000ms"):
        kind = kind[: -len("@1000ms")]
    return f"{name.lower()}{at}{kind}"


_HUB = web.AppKey("stream_hub", StreamHub)


def add_streams(app: web.Application) -> None:
    """Serve ``/ws``, ``/ws/<streams>`` and ``/stream`` from a hub started with the app."""

    async def on_startup(app: web.Application) -> None:
        served = app[SERVED]
        hub = StreamHub(served)
        app[_HUB] = hub
        await served.venue.read(hub.start)  # loaded and subscribed at one durable point

    async def on_shutdown(app: web.Application) -> None:
        hub = app.get(_HUB)
        if hub is not None:
            await hub.stop()

    async def raw(request: web.Request) -> web.StreamResponse:
        path = request.match_info.get("streams", "")
        streams = [s for s in path.split("/") if s]
        listen = request.app[SERVED].user_stream
        if (
            len(streams) == 1
            and listen is not None
            and streams[0] in request.app[SERVED].listen_keys
        ):
            return await listen(request, streams[0])
        # a segment that names no stream is no stream, as at Binance: ccxt connects to /ws/0,
        # /ws/1... (one connection per subscription) and SUBSCRIBEs on it
        hub = request.app[_HUB]
        streams = [s for s in streams if hub.valid(_canonical(s))]
        return await hub.serve(request, streams, combined=False)

    async def combined(request: web.Request) -> web.StreamResponse:
        names = request.rel_url.query.get("streams", "")
        streams = [s for s in names.split("/") if s]
        return await request.app[_HUB].serve(request, streams, combined=True)

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/ws", raw)
    app.router.add_get("/ws/{streams:.*}", raw)
    app.router.add_get("/stream", combined)


def hub_of(app: web.Application) -> StreamHub:
    return app[_HUB]


def find_hub(app: web.Application) -> StreamHub | None:
    """The application's hub once it started (None before, or without the streams)."""
    return app.get(_HUB)
