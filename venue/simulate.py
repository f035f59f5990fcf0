"""``venue simulate``: realistic flow through the venue's real doors, from a seed.

Market makers quote both sides of one instrument over FIX around a fair price that moves (a
seeded random walk pulled back towards where it started), replacing their quotes as it moves;
retail traders send market and limit orders, and cancel some, over the REST door's signed
Binance dialect; a few passive traders rest orders away from the touch. Optional abusive agents
show each pattern surveillance looks for: ``spoofing`` (a large order near the touch, a small
execution on the other side, the large order cancelled at once), ``layering`` (several orders on
successive levels, the same), ``wash`` (two accounts of one owner, self-trade prevention off,
trading the same quantity back and forth), ``structuring`` (deposits just under a round limit),
``in_out`` (a deposit withdrawn again with no trading).

It sets itself up through the admin API with a service token: funds its accounts, configures
owner groups, makes the REST keys and its makers' own FIX sessions (``/v1/fix/sessions``;
against a venue that cannot add sessions at run time, the single-account order-entry sessions
of ``[[fix.sessions]]`` without a password). It is also the bot an operator runs to seed
liquidity on a new instrument (``--traders 0``: makers only).

Every decision (prices, sizes, sides, which agent acts) comes from ``random.Random(seed)``; the
timing is real, so two runs send the same kinds of flow, not the same bytes. The run stops by
itself after ``--seconds`` (and stops waiting for late answers 10 s later); progress is printed
every second and a summary at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import secrets
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp

from engine.instrument import InstrumentSpec
from gateway.fix.codec import FixMessage, FixParser, Value
from gateway.fix.timestamps import format_utc_timestamp
from gateway.rest.signing import sign_hmac
from venue.config import VenueConfig
from venue.fix_demo import client_message

__all__ = ["ABUSES", "Simulation", "SimulationSettings", "Tally"]

#: The abusive agents that can be added.
ABUSES = frozenset({"spoofing", "layering", "wash", "structuring", "in_out"})
#: Orders a second one REST trader sends at most (more traders are added for a higher rate).
TRADER_RATE = 3.0
#: First account number of the simulator's REST traders (makers use their FIX sessions').
FIRST_ACCOUNT = 7001
#: Funds each account gets, per asset (decimal strings), below what surveillance's money-flow
#: velocity flags (1,000,000 USDT, 10 BTC, 300 ETH a day by default), so clean agents stay clean.
FUNDS = {"USDT": "500000", "BTC": "5", "ETH": "100"}  # under the AML velocity limits


@dataclass(frozen=True, slots=True)
class SimulationSettings:
    symbol: str = "BTC-USDT"
    seconds: float = 30.0
    rate: float = 50.0  # orders a second from the traders (the makers' quotes come on top)
    seed: int = 1
    traders: int = 4
    passive: int = 1
    levels: int = 3  # each maker's quotes per side
    requote_ms: int = 500
    abuses: frozenset[str] = frozenset()


@dataclass(slots=True)
class Tally:
    """What the run sent and got back, by agent kind."""

    sent: Counter[str] = field(default_factory=Counter)
    acked: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    fills: Counter[str] = field(default_factory=Counter)
    late: Counter[str] = field(default_factory=Counter)  # cancels of orders already done
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": dict(self.sent),
            "acked": dict(self.acked),
            "refused": dict(self.refused),
            "fills": dict(self.fills),
            "late": dict(self.late),
            "errors": self.errors[:20],
        }


class FairPrice:
    """A seeded random walk in ticks, pulled back towards its start (so a long run stays near
    the instrument's price band)."""

    def __init__(self, rng: random.Random, start: int, vol_bps: float = 1.5) -> None:
        self.rng = rng
        self.start = start
        self.ticks = start
        self.vol = vol_bps / 10_000

    def step(self) -> int:
        pull = (self.start - self.ticks) * 0.05
        move = self.ticks * self.vol * self.rng.gauss(0.0, 1.0)
        self.ticks = max(1, round(self.ticks + move + pull))
        return self.ticks


class Units:
    """Prices and quantities of one instrument as the doors take them (decimal strings)."""

    def __init__(self, spec: InstrumentSpec) -> None:
        self.spec = spec
        self.rest_symbol = spec.symbol.replace("-", "")

    def price(self, ticks: int) -> str:
        return format(self.spec.ticks_to_price(ticks), "f")

    def qty(self, lots: int) -> str:
        return format(self.spec.lots_to_qty(lots), "f")

    def lot(self, price: int) -> int:
        """The smallest order worth sending at ``price``: the minimum quantity, and the
        minimum notional with a margin (the price moves)."""
        spec = self.spec
        notional = -(-spec.min_notional * 5 // 4 // max(price, 1))
        return max(spec.min_qty, notional)


# -- the doors, as clients ---------------------------------------------------------------------


class FixConn:
    """An order-entry FIX session as a client runs one: logon (sequence numbers reset), a
    reader that answers TestRequests and counts ExecutionReports, heartbeats."""

    def __init__(self, port: int, sender: str, target: str, tally: Tally, kind: str) -> None:
        self.port = port
        self.sender = sender.encode()
        self.target = target.encode()
        self.tally = tally
        self.kind = kind
        self.seq = 0
        self.parser = FixParser()
        self.writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._logged_on = asyncio.Event()
        self.live: dict[bytes, bytes] = {}  # ClOrdID -> OrderID of orders resting
        #: orders a refused replace left resting under their old ClOrdID, to cancel
        self.orphans: list[bytes] = []
        #: ClOrdIDs answered for good (filled, cancelled, rejected, replaced away)
        self.finished: set[bytes] = set()

    async def logon(self, password: str = "") -> None:
        reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._reader_task = asyncio.create_task(self._read(reader))
        fields: list[tuple[int, Value]] = [(98, b"0"), (108, 30), (141, b"Y")]
        if password:
            fields.append((554, password.encode()))
        self.send(b"A", fields)
        await asyncio.wait_for(self._logged_on.wait(), 10)

    def send(self, msg_type: bytes, fields: list[tuple[int, Value]]) -> None:
        self.seq += 1
        assert self.writer is not None
        self.writer.write(client_message(msg_type, self.sender, self.target, self.seq, fields))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            for msg in self.parser.feed(data):
                if isinstance(msg, FixMessage):
                    self._on(msg)

    def _on(self, msg: FixMessage) -> None:
        kind = msg.msg_type
        if kind == b"A":
            self._logged_on.set()
        elif kind == b"1":
            self.send(b"0", [(112, msg.get(112) or b"")])
        elif kind == b"8":
            exec_type = msg.get(150)
            cl = msg.get(11) or b""
            if exec_type in (b"0", b"5"):
                self.tally.acked[self.kind] += 1
                self.live[cl] = msg.get(37) or b""
            elif exec_type == b"8":
                self.tally.refused[self.kind] += 1
                if len(self.tally.errors) < 50:
                    why = msg.get_str(58) if msg.get(58) else ""
                    self.tally.errors.append(f"{self.sender.decode()}: rejected {why}"[:200])
            elif exec_type == b"F":
                self.tally.fills[self.kind] += 1
            if msg.get(39) in (b"2", b"4", b"8", b"C"):
                self.live.pop(cl, None)
                self.live.pop(msg.get(41) or b"", None)  # a cancel's report names the order
                self.finished.update((cl, msg.get(41) or b""))
            if exec_type == b"5":
                old = msg.get(41)
                if old is not None:
                    self.live.pop(old, None)
                    self.finished.add(old)
        elif kind == b"9":  # a cancel or replace refused
            self.tally.late[self.kind] += 1
            orig = msg.get(41) or b""
            self.finished.add(msg.get(11) or b"")  # answered: the level may be quoted again
            if msg.get(102) in (b"0", b"1"):  # too late, unknown: the order is gone
                self.live.pop(orig, None)
                self.finished.add(orig)
            elif msg.get(434) == b"2" and orig in self.live:  # a replace refused: still there
                self.orphans.append(orig)
        elif kind in (b"3", b"j"):
            self.tally.refused[self.kind] += 1
            text = msg.get_str(58) if msg.get(58) else ""
            self.tally.errors.append(f"{self.sender.decode()}: {kind.decode()} {text}"[:200])

    async def close(self) -> None:
        if self.writer is None:
            return
        with contextlib.suppress(Exception):
            self.send(b"5", [])
            await self.writer.drain()
            await asyncio.sleep(0.2)
        self.writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task


class RestClient:
    """A REST key's signed requests (HMAC), as a trading bot sends them."""

    def __init__(self, http: aiohttp.ClientSession, url: str, key: str, secret: str) -> None:
        self.http = http
        self.url = url
        self.key = key
        self.secret = secret

    async def call(self, method: str, path: str, **params: str) -> tuple[int, Any]:
        params["timestamp"] = str(int(time.time() * 1000))
        query = urllib.parse.urlencode(params)
        query += "&signature=" + sign_hmac(self.secret, query)
        url = f"{self.url}{path}?{query}"
        async with self.http.request(method, url, headers={"X-MBX-APIKEY": self.key}) as r:
            return r.status, await r.json(content_type=None)


class Admin:
    """The admin API with the simulator's service token."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str) -> None:
        self.http = http
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"}

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        status, data = await self.request("POST", path, body)
        if status not in (200, 202):
            raise RuntimeError(f"POST {path}: {status} {data}")
        return data

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, json=body, headers=self.headers) as r:
            text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, {"msg": text[:200]}


# -- the agents --------------------------------------------------------------------------------


class Maker:
    """Quotes ``levels`` orders a side around the fair price over FIX, each a few ticks wider
    than the last, and replaces a quote whose price moved. A quote the venue still shows but
    the maker no longer means (a replace refused because the order was busy) is cancelled at
    the next requote, so nothing is left behind."""

    def __init__(self, conn: FixConn, units: Units, rng: random.Random, levels: int) -> None:
        self.conn = conn
        self.units = units
        self.rng = rng
        self.levels = levels
        self.quotes: dict[tuple[int, int], tuple[bytes, int, int]] = {}  # (side, level) -> ...
        self.sides: dict[bytes, int] = {}  # ClOrdID -> side, of what it sent
        self.cancelling: set[bytes] = set()
        self.n = 0

    def _cl(self) -> bytes:
        self.n += 1
        return f"{self.conn.sender.decode()}-q{self.n}".encode()

    def requote(self, fair: int) -> None:
        spread = max(2, fair // 20_000)  # about 1 bp a side, at least 2 ticks
        now = format_utc_timestamp(time.time_ns())
        for side in (1, 2):
            for level in range(self.levels):
                offset = spread + level * spread * 2
                price = fair - offset if side == 1 else fair + offset
                lots = self.units.lot(fair) * self.rng.randint(1, 20)
                old = self.quotes.get((side, level))
                answered = old is None or old[0] in self.conn.live or old[0] in self.conn.finished
                if not answered:
                    continue  # not answered yet: never quote a level twice
                cl = self._cl()
                fields: list[tuple[int, Value]] = [
                    (11, cl),
                    (55, self.units.spec.symbol),
                    (54, str(side).encode()),
                    (60, now),
                    (40, b"2"),
                    (38, self.units.qty(lots)),
                    (44, self.units.price(price)),
                ]
                if old is not None and old[0] in self.conn.live:
                    if old[1] == price:
                        continue
                    self.conn.send(b"G", [(41, old[0]), *fields])
                else:
                    self.conn.send(b"D", [*fields, (59, b"1")])
                self.sides[cl] = side
                self.conn.tally.sent["maker"] += 1
                self.quotes[(side, level)] = (cl, price, lots)
        orphans, self.conn.orphans = self.conn.orphans, []
        self._cancel([cl for cl in orphans if cl in self.conn.live], now)
        meant = {quote[0] for quote in self.quotes.values()}
        for cl in [cl for cl in self.sides if cl not in meant and cl in self.conn.finished]:
            del self.sides[cl]  # done with: keep the maps bounded
        self.conn.finished &= set(self.sides)

    def _cancel(self, orders: list[bytes], now: bytes) -> None:
        for cl in orders:
            if cl in self.cancelling or cl not in self.sides:
                continue
            self.cancelling.add(cl)
            self.conn.send(
                b"F",
                [
                    (11, cl + b"-x"),
                    (41, cl),
                    (55, self.units.spec.symbol),
                    (54, str(self.sides[cl]).encode()),
                    (60, now),
                ],
            )
        self.cancelling &= set(self.conn.live)

    async def cancel_all(self, timeout_s: float = 5.0) -> None:
        """Cancel every live quote and wait (bounded) until the venue says they are gone."""
        self.cancelling.clear()
        self._cancel(list(self.conn.live), format_utc_timestamp(time.time_ns()))
        deadline = time.monotonic() + timeout_s
        while self.conn.live and time.monotonic() < deadline:
            await asyncio.sleep(0.02)


class Trader:
    """A retail trader over REST: mostly small market orders, some limits near the touch, and
    cancels of its own resting orders; ``passive``: limits away from the touch only."""

    def __init__(
        self,
        name: str,
        client: RestClient,
        units: Units,
        rng: random.Random,
        tally: Tally,
        passive: bool = False,
    ) -> None:
        self.name = name
        self.client = client
        self.units = units
        self.rng = rng
        self.tally = tally
        self.passive = passive
        self.kind = "passive" if passive else "trader"
        self.open: deque[int] = deque()

    async def cancel_all(self) -> None:
        """Cancel what it still has resting (at the end of a run)."""
        if self.open:
            await self.client.call("DELETE", "/api/v3/openOrders", symbol=self.units.rest_symbol)
            self.open.clear()

    async def act(self, fair: int) -> None:
        rng = self.rng
        lots = self.units.lot(fair) * rng.randint(1, 10)
        side = rng.choice(("BUY", "SELL"))
        roll = rng.random()
        if self.open and roll < 0.15:
            await self._order("DELETE", orderId=str(self.open.popleft()))
            return
        if self.passive or roll < 0.45:
            away = rng.randint(5, 60) if self.passive else rng.randint(1, 10)
            away *= max(1, fair // 100_000)
            price = fair - away if side == "BUY" else fair + away
            await self._order(
                "POST",
                side=side,
                type="LIMIT",
                timeInForce="GTC",
                quantity=self.units.qty(lots),
                price=self.units.price(price),
            )
        else:
            await self._order("POST", side=side, type="MARKET", quantity=self.units.qty(lots))

    async def _order(self, method: str, **params: str) -> None:
        self.tally.sent[self.kind] += 1
        status, body = await self.client.call(
            method, "/api/v3/order", symbol=self.units.rest_symbol, **params
        )
        if status == 400 and method == "DELETE" and body.get("code") == -2011:
            self.tally.late[self.kind] += 1  # it filled first: the race every trader knows
            return
        if status != 200:
            self.tally.refused[self.kind] += 1
            if len(self.tally.errors) < 50:
                self.tally.errors.append(f"{self.name}: {status} {body}"[:200])
            return
        self.tally.acked[self.kind] += 1
        if method == "POST":
            fills = body.get("fills") or []
            self.tally.fills[self.kind] += len(fills)
            if body.get("status") in ("NEW", "PARTIALLY_FILLED"):
                self.open.append(int(body["orderId"]))
                if len(self.open) > 20:  # keep a bounded book of its own
                    await self._order("DELETE", orderId=str(self.open.popleft()))


class Abuser:
    """One abusive pattern, acted out every few seconds through REST (or the admin API)."""

    def __init__(
        self,
        kind: str,
        clients: list[RestClient],
        accounts: list[int],
        admin: Admin,
        units: Units,
        rng: random.Random,
        tally: Tally,
    ) -> None:
        self.kind = kind
        self.clients = clients
        self.accounts = accounts
        self.admin = admin
        self.units = units
        self.rng = rng
        self.tally = tally

    async def cancel_all(self) -> None:
        for client in self.clients:
            await client.call("DELETE", "/api/v3/openOrders", symbol=self.units.rest_symbol)

    async def _near_depth(self, client: RestClient, side: str, bps: int = 50) -> int:
        """Lots resting on ``side`` within ``bps`` of its best price (what surveillance calls
        near the touch)."""
        status, book = await client.call(
            "GET", "/api/v3/depth", symbol=self.units.rest_symbol, limit="100"
        )
        levels = book.get("bids" if side == "BUY" else "asks") if status == 200 else None
        if not levels:
            return 0
        spec = self.units.spec
        best = spec.price_to_ticks(levels[0][0])
        edge = best * bps // 10_000
        return sum(
            spec.qty_to_lots(qty)
            for price, qty in levels
            if abs(spec.price_to_ticks(price) - best) <= edge
        )

    async def _inside_spread(self, client: RestClient) -> int | None:
        """A price strictly between the best bid and the best ask now (ticks), or ``None``."""
        status, book = await client.call(
            "GET", "/api/v3/depth", symbol=self.units.rest_symbol, limit="5"
        )
        if status != 200 or not book.get("bids") or not book.get("asks"):
            return None
        spec = self.units.spec
        bid = spec.price_to_ticks(book["bids"][0][0])
        ask = spec.price_to_ticks(book["asks"][0][0])
        return (bid + ask) // 2 if ask - bid >= 2 else None

    async def _send(self, client: RestClient, method: str, **params: str) -> Any:
        self.tally.sent[self.kind] += 1
        status, body = await client.call(
            method, "/api/v3/order", symbol=self.units.rest_symbol, **params
        )
        if status != 200:
            self.tally.refused[self.kind] += 1
            self.tally.errors.append(f"{self.kind}: {status} {body}"[:200])
            return None
        self.tally.acked[self.kind] += 1
        self.tally.fills[self.kind] += len(body.get("fills") or [])
        return body

    async def act(self, fair: int) -> None:
        units, rng = self.units, self.rng
        lot = units.lot(fair)
        step = max(1, fair // 20_000)
        if self.kind in ("spoofing", "layering"):
            side = rng.choice(("BUY", "SELL"))
            other = "SELL" if side == "BUY" else "BUY"
            # large against the book: more than all that rests near the touch on that side
            near = await self._near_depth(self.clients[0], side)
            big = max(lot * rng.randint(150, 300), near + near // 2)
            count = 1 if self.kind == "spoofing" else 4
            placed = []
            for level in range(count):
                # 10 bp out: near the touch as surveillance sees it (50 bp), but behind the
                # makers' quotes and out of reach of the fair price's usual moves
                off = fair // 1_000 + step * level
                price = fair - off if side == "BUY" else fair + off
                body = await self._send(
                    self.clients[0],
                    "POST",
                    side=side,
                    type="LIMIT",
                    timeInForce="GTC",
                    quantity=units.qty(big if self.kind == "spoofing" else big // 3),
                    price=units.price(price),
                )
                if body is not None:
                    placed.append(int(body["orderId"]))
            await asyncio.sleep(0.05)
            await self._send(
                self.clients[0], "POST", side=other, type="MARKET", quantity=units.qty(lot * 2)
            )
            await asyncio.sleep(0.1)
            for order_id in placed:
                await self._send(self.clients[0], "DELETE", orderId=str(order_id))
        elif self.kind == "wash":
            a, b = self.clients[0], self.clients[1]
            at_ticks = await self._inside_spread(a)
            if at_ticks is None:
                return  # no room between the best bid and ask: try at its next turn
            lots = lot * rng.randint(5, 15)
            side = rng.choice(("BUY", "SELL"))
            other = "SELL" if side == "BUY" else "BUY"
            at = units.price(at_ticks)  # alone at the best price: the pair trades together
            await self._send(
                a,
                "POST",
                side=side,
                type="LIMIT",
                timeInForce="GTC",
                quantity=units.qty(lots),
                price=at,
            )
            await self._send(
                b,
                "POST",
                side=other,
                type="LIMIT",
                timeInForce="IOC",
                quantity=units.qty(lots),
                price=at,
            )
            await a.call("DELETE", "/api/v3/openOrders", symbol=units.rest_symbol)
        elif self.kind == "structuring":
            amount = str(9_900 + rng.randint(0, 99))
            self.tally.sent[self.kind] += 1
            ref = f"sim-st-{rng.getrandbits(32):08x}"
            body = {"account": self.accounts[0], "asset": "USDT", "amount": amount, "ref": ref}
            await self.admin.post("/v1/deposits", body)
            self.tally.acked[self.kind] += 1
        elif self.kind == "in_out":
            account = self.accounts[0]
            amount = str(rng.randint(20_000, 50_000))
            ref = f"sim-io-{rng.getrandbits(32):08x}"
            self.tally.sent[self.kind] += 2
            await self.admin.post(
                "/v1/deposits", {"account": account, "asset": "USDT", "amount": amount, "ref": ref}
            )
            withdrawal = {
                "account": account,
                "asset": "USDT",
                "amount": amount,
                "withdrawalId": rng.getrandbits(40),
                "ref": ref,
            }
            await self.admin.post("/v1/withdrawals", withdrawal)
            self.tally.acked[self.kind] += 2


# -- the run -----------------------------------------------------------------------------------


class Simulation:
    """Sets up, runs for ``settings.seconds`` and tears down; ``run()`` returns the tally."""

    def __init__(
        self,
        config: VenueConfig,
        settings: SimulationSettings,
        *,
        admin_url: str,
        token: str,
        rest_url: str,
        fix_port: int | None,
        out: Callable[[str], None] = print,
    ) -> None:
        specs = {spec.symbol: spec for spec in config.instruments}
        if settings.symbol not in specs:
            raise ValueError(f"no instrument {settings.symbol} in the configuration")
        unknown = settings.abuses - ABUSES
        if unknown:
            raise ValueError(f"unknown abuse {sorted(unknown)[0]}: known are {sorted(ABUSES)}")
        self.config = config
        self.settings = settings
        self.units = Units(specs[settings.symbol])
        self.admin_url = admin_url.rstrip("/")
        self.token = token
        self.rest_url = rest_url.rstrip("/")
        self.fix_port = fix_port
        self.out = out
        self.rng = random.Random(settings.seed)
        self.tally = Tally()

    def _sessions(self) -> list[tuple[str, int]]:
        fix = self.config.fix
        if fix is None or self.fix_port is None:
            return []
        return [
            (s.target_comp_id, s.accounts[0])
            for s in fix.sessions
            if s.kind == "order_entry"
            and len(s.accounts) == 1
            and not s.password_hash
            and not s.ed25519_public_key
        ]

    async def run(self) -> Tally:
        settings = self.settings
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
            admin = Admin(http, self.admin_url, self.token)
            fair = FairPrice(self.rng, self._start_price())
            makers, conns = await self._makers(admin)
            traders, abusers = await self._traders(http, admin)
            self.out(
                f"simulate: {settings.symbol} for {settings.seconds:g} s from seed "
                f"{settings.seed}: {len(makers)} makers over FIX, {len(traders)} traders over "
                f"REST at {settings.rate:g} orders/s, abuses: "
                f"{', '.join(sorted(settings.abuses)) or 'none'}"
            )
            try:
                await asyncio.wait_for(
                    self._loop(fair, makers, traders, abusers), settings.seconds + 10
                )
            finally:
                for maker in makers:
                    await maker.cancel_all()
                for agent in [*traders, *abusers]:
                    with contextlib.suppress(Exception):
                        await agent.cancel_all()  # type: ignore[attr-defined]
                for conn in conns:
                    await conn.close()
        self._summary()
        return self.tally

    def _start_price(self) -> int:
        spec = self.units.spec
        if spec.reference_price:
            return spec.reference_price
        raise ValueError(f"{spec.symbol} has no reference_price to start the fair price from")

    async def _fund(self, admin: Admin, account: int) -> None:
        for asset, amount in FUNDS.items():
            if asset in self.config.assets:
                ref = f"sim-{self.settings.seed}-{account}-{asset}-{time.time_ns()}"
                body = {"account": account, "asset": asset, "amount": amount, "ref": ref}
                await admin.post("/v1/deposits", body)

    async def _own_sessions(self, admin: Admin) -> list[tuple[str, int, str]]:
        """Two order-entry FIX sessions of its own, made through the admin API (SIM<seed>M1,
        SIM<seed>M2, accounts 7801 and 7802, fresh passwords; one left by an earlier run is
        disabled and made again); none when the venue cannot add sessions at run time."""
        made = []
        for i in (1, 2):
            target = f"SIM{self.settings.seed}M{i}"
            account = FIRST_ACCOUNT + 800 + i
            password = secrets.token_urlsafe(18)
            body = {
                "targetCompId": target,
                "type": "ORDER_ENTRY",
                "accounts": [account],
                "password": password,
                "throttlePerS": 1000,
            }
            status, data = await admin.request("POST", "/v1/fix/sessions", body)
            if status == 409:
                await admin.request("DELETE", f"/v1/fix/sessions/{target}")
                status, data = await admin.request("POST", "/v1/fix/sessions", body)
            if status == 404:
                return []  # this venue has no sessions added at run time
            if status != 200:
                raise RuntimeError(f"POST /v1/fix/sessions: {status} {data}")
            made.append((target, account, password))
        return made

    async def _makers(self, admin: Admin) -> tuple[list[Maker], list[FixConn]]:
        makers: list[Maker] = []
        conns: list[FixConn] = []
        if self.config.fix is None or self.fix_port is None:
            return makers, conns
        sessions = await self._own_sessions(admin)
        if not sessions:  # the configuration's single-account sessions without a password
            sessions = [(target, account, "") for target, account in self._sessions()[:2]]
        for target, account, password in sessions:
            await self._fund(admin, account)
            conn = FixConn(
                self.fix_port, target, self.config.fix.sender_comp_id, self.tally, "maker"
            )
            await conn.logon(password)
            conns.append(conn)
            makers.append(
                Maker(conn, self.units, random.Random(self.rng.random()), self.settings.levels)
            )
        return makers, conns

    async def _key(self, admin: Admin, http: aiohttp.ClientSession, account: int) -> RestClient:
        made = await admin.post(
            f"/v1/accounts/{account}/api-keys",
            {"permissions": ["TRADE", "USER_DATA"], "label": "simulate"},
        )
        return RestClient(http, self.rest_url, made["apiKey"], made["secretKey"])

    async def _traders(
        self, http: aiohttp.ClientSession, admin: Admin
    ) -> tuple[list[Trader], list[Abuser]]:
        s = self.settings
        traders: list[Trader] = []
        account = FIRST_ACCOUNT
        # enough traders that none passes the REST door's order limit (50 per 10 s by default)
        active = max(s.traders, math.ceil(s.rate / TRADER_RATE)) if s.traders else 0
        for i in range(active + s.passive):
            await self._fund(admin, account)
            client = await self._key(admin, http, account)
            rng = random.Random(self.rng.random())
            traders.append(
                Trader(f"trader{account}", client, self.units, rng, self.tally, i >= active)
            )
            account += 1
        abusers: list[Abuser] = []
        account = FIRST_ACCOUNT + 900
        for kind in sorted(s.abuses):
            accounts = [account, account + 1]
            account += 2
            owner = accounts[0]
            for a in accounts:
                await self._fund(admin, a)
                # one owner; for the wash pair self-trade prevention off, so it can trade itself
                stp = "NONE" if kind == "wash" else "EXPIRE_TAKER"
                await admin.post(f"/v1/accounts/{a}", {"owner": owner, "stpDefault": stp})
            clients = [await self._key(admin, http, a) for a in accounts]
            rng = random.Random(self.rng.random())
            abusers.append(Abuser(kind, clients, accounts, admin, self.units, rng, self.tally))
        return traders, abusers

    async def _loop(
        self, fair: FairPrice, makers: list[Maker], traders: list[Trader], abusers: list[Abuser]
    ) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        start = loop.time()
        end = start + s.seconds
        rng = self.rng
        tasks: set[asyncio.Task[None]] = set()
        next_quote = start + s.requote_ms / 1000
        next_abuse = start + 1.0
        turn = 0
        next_print = start + 1.0
        next_order = start
        price = fair.ticks
        for maker in makers:
            maker.requote(price)

        def spawn(coro: Awaitable[None]) -> None:
            task = asyncio.ensure_future(coro)
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            task.add_done_callback(self._failed)

        while (now := loop.time()) < end:
            if now >= next_quote:
                price = fair.step()
                for maker in makers:
                    maker.requote(price)
                next_quote += s.requote_ms / 1000
            if traders and s.rate > 0:
                while next_order <= now and len(tasks) < 256:
                    spawn(rng.choice(traders).act(price))
                    next_order += rng.expovariate(s.rate)
            if abusers and now >= next_abuse:  # each abuser in turn, one every second
                spawn(abusers[turn % len(abusers)].act(price))
                turn += 1
                next_abuse += 1.0
            if now >= next_print:
                self._progress(now - start, price)
                next_print += 1.0
            await asyncio.sleep(0.005)
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    def _failed(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and len(self.tally.errors) < 50:
            self.tally.errors.append(f"{type(exc).__name__}: {exc}"[:200])

    def _progress(self, elapsed: float, price: int) -> None:
        t = self.tally
        self.out(
            f"  {elapsed:4.0f} s  sent {sum(t.sent.values()):>7,}"
            f"  acked {sum(t.acked.values()):>7,}"
            f"  fills {sum(t.fills.values()):>6,}  refused {sum(t.refused.values()):>4,}"
            f"  fair {self.units.price(price)}"
        )

    def _summary(self) -> None:
        t = self.tally
        kinds = sorted(set(t.sent) | set(t.acked))
        self.out(f"  {'agent':<12}{'sent':>9}{'acked':>9}{'fills':>8}{'late':>7}{'refused':>9}")
        for kind in kinds:
            self.out(
                f"  {kind:<12}{t.sent[kind]:>9,}{t.acked[kind]:>9,}{t.fills[kind]:>8,}"
                f"{t.late[kind]:>7,}{t.refused[kind]:>9,}"
            )
        for line in t.errors[:5]:
            self.out(f"  refused: {line}")
        self.out(json.dumps({"simulate": t.to_json()}))


def parse_abuses(text: str) -> frozenset[str]:
    """``spoofing,wash`` -> the set; ``ValueError`` naming an unknown one."""
    wanted = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = wanted - ABUSES
    if unknown:
        raise ValueError(
            f"unknown abuse {sorted(unknown)[0]!r}: known are {', '.join(sorted(ABUSES))}"
        )
    return wanted


def decimal_seconds(text: str) -> float:
    value = Decimal(text)
    if not value.is_finite() or value <= 0 or value > 86_400:
        raise ValueError("seconds must be more than 0 and at most 86400")
    return float(value)
