"""Surveillance's pages of the staff console: their JSON endpoints and their scripts.

The audit trail (``surveillance.trail``) is served as

- ``GET /v1/audit?actor=&account=&action=&from=&to=&limit=&before=``: ``{"entries": [rows,
  newest first], "next": the cursor of the next page (pass it as ``before``) or null}``;
- ``GET /v1/audit.csv?...``: the same filters, every matching row (``limit`` aside) in chain
  order, as CSV with a header row, streamed as an attachment. An export is itself a staff
  action: it is chained (``audit.export``, its filters as subject) before the first byte is
  sent, and refused (503) when it cannot be;
- ``GET /console/pages/audit.js``: the console's page over them (static, like the console).

Both endpoints need the ``audit.read`` permission.

The order book replayed (``surveillance.replay``) is served as

- ``GET /v1/surveillance/book?symbol=&at=&depth=``: the book of ``symbol`` as of ``at`` (a seq,
  or an ISO-8601 time with its offset), ``depth`` price levels a side (20 unless given, at
  most 5,000). It needs ``surveillance.read``. Only durable records are read (up to the
  venue's durable seq, asked on the event loop); the replay runs in a worker thread, one at a
  time. Bad input is a 400 naming the parameter; a point too far from any snapshot a 422 with
  what it would cost (``records``, ``limit``, ``startSeq``); an unreadable journal a 503.

The order-to-trade ratios the running detector counts (``surveillance.detect.otr``) are served
as

- ``GET /v1/surveillance/otr?symbol=&account=&day=YYYY-MM-DD``: ``{"day", "days", "rows"}``,
  the rows of ``OrderToTradeRatio.rows`` (per account and per owner group, per instrument) of
  ``day`` (the detector's current UTC day unless given), highest ratio first; ``days`` the days
  kept in memory (the current one and the one before: older days' breaches are in the
  ``OTR_BREACH`` alerts; another day answers no rows). It needs ``surveillance.read``; it
  reads the detector on the event loop, where the detector runs, and copies the rows out. A
  503 while the detectors are off or still catching up with the journal.

The admin API's authentication is the gateway's, which this package may not import:
``routes()`` lists each route with the permission it needs and the composition root registers
them with the gateway's checks (and tells who the caller is, for the export's record). Errors
are the admin API's ``{"code", "msg"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import re
import time
from collections.abc import Awaitable, Callable, Collection, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from surveillance.audit import AuditStoreError, StaffEvent
from surveillance.detect.otr import OrderToTradeRatio
from surveillance.detect.state import DAY_NS
from surveillance.replay import (
    DEFAULT_DEPTH,
    MAX_DEPTH,
    BookQueryError,
    BookReplay,
    BookReplayError,
    ReplayTooLong,
)
from surveillance.timeline import DEFAULT_LEVELS, MAX_LEVELS, timeline
from surveillance.trail import (
    TrailError,
    TrailQuery,
    TrailQueryError,
    Units,
    csv_chunks,
    iter_rows,
    parse_query,
    read_page,
)

__all__ = [
    "AUDIT_READ",
    "AUDIT_SCRIPT",
    "SURVEILLANCE_READ",
    "AuditTrailPage",
    "BookPage",
    "OtrPage",
    "OtrQuery",
    "OtrQueryError",
    "Route",
    "parse_otr_query",
    "static_script",
]

#: The permission the audit trail needs (``gateway.staff.roles.Permission.AUDIT_READ``).
AUDIT_READ = "audit.read"
#: The permission the book replay needs (``gateway.staff.roles.Permission.SURVEILLANCE_READ``).
SURVEILLANCE_READ = "surveillance.read"
#: Where the console's audit page script is served.
AUDIT_SCRIPT = "/console/pages/audit.js"
_STATIC = Path(__file__).resolve().parent / "static"
#: The admin API's codes (Binance's): a bad parameter, the server cannot answer.
_INVALID_PARAM = -1130
_INTERNAL = -1001
#: Scans running at once (each a full read of the chain, in a worker thread).
_SCANS = 2

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Who is calling: (operator name, address), as the admin API's authentication knows them.
Caller = Callable[[web.Request], tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Route:
    """A route to add: ``permission`` empty for a static one anyone may read."""

    method: str
    path: str
    handler: Handler
    permission: str


_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def static_script(name: str) -> Handler:
    """A handler serving ``surveillance/static/<name>``, a console page's script or style sheet
    (static, like the console's own files: the data it shows comes from the endpoints, each
    checked)."""
    path = _STATIC / name
    content_type = _STATIC_TYPES.get(path.suffix)
    if content_type is None or not path.is_file():
        raise ValueError(f"no script or style sheet {name!r} in {_STATIC}")

    async def script(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(
            path,
            headers={
                "Content-Type": content_type,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-cache",
            },
        )

    return script


def _remote(request: web.Request) -> tuple[str, str]:
    return "", request.remote or ""


def _error(code: int, msg: str, status: int) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


class AuditTrailPage:
    """The audit trail of ``<data_dir>``; ``record`` chains a staff action (the running
    ``AuditChain.record``; None when the venue keeps no chain: exports are then refused);
    ``units``: the venue's instruments and assets, to show a command's numbers as decimals."""

    def __init__(
        self,
        data_dir: Path,
        record: Callable[[StaffEvent], object] | None,
        caller: Caller = _remote,
        clock: Callable[[], int] = time.time_ns,
        units: Units | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.units = units
        self.record = record
        self.caller = caller
        self.clock = clock
        self._scans = asyncio.Semaphore(_SCANS)

    script_url = AUDIT_SCRIPT

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v1/audit", self.entries, AUDIT_READ),
            Route("GET", "/v1/audit.csv", self.export, AUDIT_READ),
            Route("GET", AUDIT_SCRIPT, static_script("audit.js"), ""),
        ]

    def add_routes(self, app: web.Application) -> None:
        """Add the routes without any permission check (tests; a venue without logins)."""
        for route in self.routes():
            app.router.add_route(route.method, route.path, route.handler)

    @staticmethod
    def _query(request: web.Request) -> TrailQuery | web.Response:
        if any(len(request.query.getall(name)) > 1 for name in request.query):
            return _error(_INVALID_PARAM, "A parameter is given more than once.", 400)
        try:
            return parse_query(dict(request.query))
        except TrailQueryError as exc:
            return _error(_INVALID_PARAM, str(exc), 400)

    async def entries(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/audit``."""
        query = self._query(request)
        if isinstance(query, web.Response):
            return query
        async with self._scans:
            try:
                page = await asyncio.to_thread(read_page, self.data_dir, query, self.units)
            except TrailError as exc:
                return _error(_INTERNAL, str(exc), 503)
        return web.json_response({"entries": page.entries, "next": page.next})

    async def export(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/audit.csv``: recorded, then streamed."""
        query = self._query(request)
        if isinstance(query, web.Response):
            return query
        async with self._scans:
            chunks = csv_chunks(iter_rows(self.data_dir, query, self.units))
            try:
                first = await asyncio.to_thread(next, chunks)  # the header, or TrailError
            except TrailError as exc:
                return _error(_INTERNAL, str(exc), 503)
            try:
                return await self._stream(request, query, first, chunks)
            finally:
                # cancelled while a worker thread runs it: it ends with that thread
                with contextlib.suppress(ValueError):
                    chunks.close()

    async def _stream(
        self,
        request: web.Request,
        query: TrailQuery,
        first: str,
        chunks: Generator[str, None, None],
    ) -> web.StreamResponse:
        actor, ip = self.caller(request)
        now = self.clock()
        filters = " ".join(
            f"{name}={value}"
            for name, value in (
                ("actor", query.actor),
                ("account", query.account),
                ("action", query.action),
                ("from", query.from_ms),
                ("to", query.to_ms),
                ("before", query.before),
            )
            if value not in ("", None)
        )
        event = StaffEvent(now, actor, "audit.export", f"audit trail {filters}".strip(), ip, "ok")
        if self.record is None:
            return _error(_INTERNAL, "Exports are recorded in the audit chain: it is off.", 503)
        try:
            self.record(event)
        except (AuditStoreError, ValueError) as exc:
            return _error(_INTERNAL, f"The export cannot be recorded: {exc}", 503)
        name = f"audit-{now // 1_000_000}.csv"
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
            }
        )
        await response.prepare(request)
        await response.write(first.encode("utf-8"))
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            await response.write(chunk.encode("utf-8"))
        await response.write_eof()
        return response


#: The book replay's query parameters.
_BOOK_PARAMETERS = ("symbol", "at", "depth")
_TIMELINE_PARAMETERS = ("symbol", "from", "to", "accounts", "levels")
_ACCOUNT = re.compile(r"[1-9][0-9]{0,17}")
_DEPTH = re.compile(r"[0-9]{1,6}")


class BookPage:
    """``GET /v1/surveillance/book`` over ``replay``; ``durable_seq`` tells the venue's durable
    seq (called on the event loop, before the replay runs in its worker thread)."""

    def __init__(self, replay: BookReplay, durable_seq: Callable[[], int]) -> None:
        self.replay = replay
        self.durable_seq = durable_seq
        self._reads = asyncio.Semaphore(1)

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v1/surveillance/book", self.book, SURVEILLANCE_READ),
            Route("GET", "/v1/surveillance/timeline", self.timeline, SURVEILLANCE_READ),
        ]

    def add_routes(self, app: web.Application) -> None:
        """Add the routes without any permission check (tests; a venue without logins)."""
        for route in self.routes():
            app.router.add_route(route.method, route.path, route.handler)

    async def book(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/surveillance/book``."""
        query = request.query
        for name in query:
            if name not in _BOOK_PARAMETERS:
                return _error(_INVALID_PARAM, f"Parameter '{name[:64]}' is not known here.", 400)
            if len(query.getall(name)) > 1:
                return _error(_INVALID_PARAM, f"Parameter '{name}' is given more than once.", 400)
        symbol = query.get("symbol", "").strip()
        if not symbol:
            return _error(_INVALID_PARAM, "Parameter 'symbol' is required.", 400)
        depth = DEFAULT_DEPTH
        text = query.get("depth", "").strip()
        if text:
            if not _DEPTH.fullmatch(text) or not 1 <= int(text) <= MAX_DEPTH:
                return _error(
                    _INVALID_PARAM,
                    f"Parameter 'depth' must be a whole number, 1 to {MAX_DEPTH}.",
                    400,
                )
            depth = int(text)
        durable = self.durable_seq()
        return await self._replayed(self._answer, symbol, query.get("at", ""), durable, depth)

    async def timeline(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/surveillance/timeline``: ``surveillance.timeline`` over the durable
        journal."""
        query = request.query
        for name in query:
            if name not in _TIMELINE_PARAMETERS:
                return _error(_INVALID_PARAM, f"Parameter '{name[:64]}' is not known here.", 400)
            if len(query.getall(name)) > 1:
                return _error(_INVALID_PARAM, f"Parameter '{name}' is given more than once.", 400)
        for name in ("symbol", "from", "to"):
            if not query.get(name, "").strip():
                return _error(_INVALID_PARAM, f"Parameter '{name}' is required.", 400)
        accounts: list[int] = []
        for part in query.get("accounts", "").split(","):
            part = part.strip()
            if not part:
                continue
            if not _ACCOUNT.fullmatch(part):
                return _error(
                    _INVALID_PARAM, "Parameter 'accounts' must list account numbers.", 400
                )
            accounts.append(int(part))
        levels = DEFAULT_LEVELS
        text = query.get("levels", "").strip()
        if text:
            if not _DEPTH.fullmatch(text) or not 1 <= int(text) <= MAX_LEVELS:
                return _error(_INVALID_PARAM, f"Parameter 'levels' must be 1 to {MAX_LEVELS}.", 400)
            levels = int(text)
        durable = self.durable_seq()
        args = (query["symbol"].strip(), query["from"].strip(), query["to"].strip())
        return await self._replayed(self._timeline, *args, accounts, levels, durable)

    async def _replayed(self, work: Callable[..., bytes], *args: Any) -> web.StreamResponse:
        """``work(*args)`` (a replay answering JSON bytes) in a worker thread, one at a time;
        its refusals as the API's answers: 400 naming the parameter, 422 with what a read past
        the bound would cost, 503 when the journal cannot be replayed."""
        async with self._reads:
            try:
                body = await asyncio.to_thread(work, *args)
            except BookQueryError as exc:
                return _error(_INVALID_PARAM, str(exc), 400)
            except ReplayTooLong as exc:
                return web.json_response(
                    {
                        "code": _INVALID_PARAM,
                        "msg": str(exc),
                        "records": exc.records,
                        "limit": exc.limit,
                        "startSeq": exc.start_seq,
                    },
                    status=422,
                )
            except BookReplayError as exc:
                return _error(_INTERNAL, f"The journal cannot be replayed: {exc}", 503)
        return web.Response(body=body, content_type="application/json")

    def _timeline(
        self, symbol: str, start: str, end: str, accounts: list[int], levels: int, durable: int
    ) -> bytes:
        answer = timeline(
            self.replay, symbol, start, end, accounts, levels=levels, durable_seq=durable
        )
        return json.dumps(answer, separators=(",", ":")).encode()

    def _answer(self, symbol: str, at: str, durable: int, depth: int) -> bytes:
        """The answer as JSON, in the worker thread: a deep book is megabytes to encode."""
        answer = self.replay.book_at(symbol, at, durable_seq=durable, depth=depth)
        return json.dumps(answer, separators=(",", ":")).encode()


#: ``GET /v1/surveillance/otr``'s parameters.
_OTR_PARAMETERS = ("symbol", "account", "day")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EPOCH = datetime.date(1970, 1, 1)


class OtrQueryError(ValueError):
    """A bad parameter of ``GET /v1/surveillance/otr``; the message names it."""


@dataclass(frozen=True, slots=True)
class OtrQuery:
    symbol: str  # "" for every instrument
    account: int  # 0 for every account
    day: int | None  # days since the epoch (UTC); None for the detector's current day


def parse_otr_query(query: Mapping[str, list[str]], symbols: Collection[str]) -> OtrQuery:
    """``query`` (each parameter's values) as an ``OtrQuery``; ``symbols``: the venue's
    instruments. Raises ``OtrQueryError`` naming the parameter."""
    for name, values in query.items():
        if name not in _OTR_PARAMETERS:
            raise OtrQueryError(f"Parameter '{name[:64]}' is not known here.")
        if len(values) > 1:
            raise OtrQueryError(f"Parameter '{name}' is given more than once.")
    symbol = "".join(query.get("symbol", [])).strip()
    if symbol and symbol not in symbols:
        raise OtrQueryError(f"Parameter 'symbol': unknown instrument {symbol[:32]!r}.")
    account = 0
    text = "".join(query.get("account", [])).strip()
    if text:
        if not _ACCOUNT.fullmatch(text):
            raise OtrQueryError("Parameter 'account' must be an account number.")
        account = int(text)
    day: int | None = None
    text = "".join(query.get("day", [])).strip()
    if text:
        try:
            if not _DAY.fullmatch(text):
                raise ValueError(text)
            day = (datetime.date.fromisoformat(text) - _EPOCH).days
        except ValueError:
            raise OtrQueryError("Parameter 'day' must be a date, YYYY-MM-DD.") from None
        if day < 0:
            raise OtrQueryError("Parameter 'day' must be a date, YYYY-MM-DD.")
    return OtrQuery(symbol, account, day)


def _iso_day(day: int) -> str:
    return (_EPOCH + datetime.timedelta(days=day)).isoformat()


class OtrPage:
    """``GET /v1/surveillance/otr`` over the running detector: ``detector`` gives it (None
    while the detectors are off or catching up); ``symbols`` the venue's instruments;
    ``clock`` (ns) tells today before the detector has seen any command."""

    def __init__(
        self,
        detector: Callable[[], OrderToTradeRatio | None],
        symbols: Collection[str],
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.detector = detector
        self.symbols = frozenset(symbols)
        self.clock = clock

    def routes(self) -> list[Route]:
        return [Route("GET", "/v1/surveillance/otr", self.otr, SURVEILLANCE_READ)]

    def add_routes(self, app: web.Application) -> None:
        """Add the routes without any permission check (tests; a venue without logins)."""
        for route in self.routes():
            app.router.add_route(route.method, route.path, route.handler)

    async def otr(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/surveillance/otr``: on the event loop, where the detector runs."""
        query = {name: request.query.getall(name) for name in request.query}
        try:
            parsed = parse_otr_query(query, self.symbols)
        except OtrQueryError as exc:
            return _error(_INVALID_PARAM, str(exc), 400)
        detector = self.detector()
        if detector is None:
            return _error(_INTERNAL, "The detectors are off or still reading the journal.", 503)
        days = detector.days()
        day = parsed.day
        if day is None:
            day = days[0] if days else self.clock() // DAY_NS
        rows = detector.rows(day, parsed.symbol, parsed.account)
        return web.json_response(
            {"day": _iso_day(day), "days": [_iso_day(d) for d in days], "rows": rows}
        )
