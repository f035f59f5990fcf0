"""The order book replayed as of any seq or time (``surveillance.replay``): equal to the live
core's book recorded at that seq, orders with their owners in time priority, from a snapshot
or from the journal alone, across snapshot boundaries and journal segments; the bound on the
work of a read, the cores kept between reads, the scrubbing walk; ``GET
/v1/surveillance/book`` on a running venue with its permission and its 400s; a seeded fuzz of
the ``at`` parser."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from helpers import SYM, SYM2, T0, spec

import engine.replay
from engine.codec import encode
from engine.commands import CancelOrder, NewOrder, ReplaceOrder
from engine.core import Core
from engine.events import OrderAccepted
from engine.journal import JournalWriter, first_record, list_segments
from engine.recovery import JOURNAL_DIR, SNAPSHOT_DIR
from engine.replay import Replayer, ReplayError, ReplayLimit
from engine.snapshot import snapshot_name, write_snapshot
from engine.types import OrdType, Side, TimeInForce
from surveillance.pages import BookPage
from surveillance.replay import (
    At,
    BookQueryError,
    BookReplay,
    BookReplayError,
    ReplayConfig,
    ReplayTooLong,
    book_at,
    parse_at,
    render_book,
    seq_at_time,
)
from venue.admin import staff_access, start_admin
from venue.config import DEFAULT_CONFIG_PATH, AdminConfig, VenueConfig, load_config
from venue.runtime import Venue

SPECS = (spec(SYM), spec(SYM2))
PRICE = 9_500_000  # 95000.00 USDT in ticks of BTC-USDT
LOT = 100_000  # 1 BTC in lots of 0.00001
MS = 1_000_000
#: Where the flow's snapshots are taken.
SNAPSHOTS = (120, 260)


def new_core() -> Core:
    return Core(SPECS)


CONFIG = ReplayConfig(SPECS, new_core)


def flow(count: int, seed: int = 11) -> list[Any]:
    """A seeded order flow over two instruments: limit orders around a mid from six accounts
    (some with client order ids, some icebergs, some IOC), market orders, cancels and
    replaces of live orders; several commands share a time, and time jumps now and then."""
    rng = random.Random(seed)
    commands: list[Any] = []
    ts = T0
    live: list[tuple[int, str, int]] = []  # (account, symbol, order id) possibly still live
    next_id = 1  # the core numbers accepted orders 1, 2, ... (rejected ones get none)
    for seq in range(1, count + 1):
        if rng.random() < 0.6:
            ts += rng.choice((0, 0, MS, 7 * MS, 1_000 * MS))
        symbol = rng.choice((SYM, SYM, SYM2))
        account = rng.randint(1, 6)
        roll = rng.random()
        cmd: Any
        if roll < 0.55 or not live:
            side = rng.choice((Side.BUY, Side.SELL))
            price = 10_000 + rng.randint(-12, 12)
            qty = rng.randint(1, 40)
            display = rng.randint(1, qty - 1) if qty > 2 and rng.random() < 0.1 else 0
            tif = TimeInForce.IOC if rng.random() < 0.1 else TimeInForce.GTC
            clid = f"c{seq}" if rng.random() < 0.5 else ""
            cmd = NewOrder(
                account,
                symbol,
                clid,
                side,
                OrdType.LIMIT,
                qty=qty,
                price=price,
                tif=tif,
                display_qty=display,
            )
            live.append((account, symbol, next_id))
            next_id += 1
        elif roll < 0.62:
            side = rng.choice((Side.BUY, Side.SELL))
            cmd = NewOrder(account, symbol, "", side, OrdType.MARKET, qty=rng.randint(1, 30))
            next_id += 1
        elif roll < 0.85:
            account, symbol, order_id = live.pop(rng.randrange(len(live)))
            cmd = CancelOrder(account, symbol, order_id)
        else:
            account, symbol, order_id = rng.choice(live)
            price = 10_000 + rng.randint(-12, 12)
            cmd = ReplaceOrder(account, symbol, order_id, "", "", rng.randint(1, 50), price)
        cmd.seq, cmd.ts = seq, ts
        commands.append(cmd)
    return commands


@dataclasses.dataclass
class History:
    data_dir: Path
    commands: list[Any]
    books: dict[tuple[str, int], dict[str, Any]]  # (symbol, seq) -> the live core's book
    owners: dict[int, tuple[int, str]]  # order id -> (account, client order id) accepted
    depths: dict[tuple[str, int], list[list[tuple[int, int, int]]]]  # the core's L2, a side each
    queues: dict[tuple[str, int], list[list[int]]]  # the core's order ids in priority, a side each


def write_history(
    data_dir: Path, count: int = 400, snapshots: tuple[int, ...] = SNAPSHOTS
) -> History:
    """Apply the flow to a live core, keeping its books after every command, journal it in
    small segments and write snapshots of the live core at ``snapshots``."""
    commands = flow(count)
    core = new_core()
    books: dict[tuple[str, int], dict[str, Any]] = {}
    owners: dict[int, tuple[int, str]] = {}
    depths: dict[tuple[str, int], list[list[tuple[int, int, int]]]] = {}
    queues: dict[tuple[str, int], list[list[int]]] = {}
    for symbol in (SYM, SYM2):
        books[(symbol, 0)] = render_book(core, spec(symbol), 1_000)
    with JournalWriter(data_dir / JOURNAL_DIR, segment_bytes=4_096, fsync=False) as journal:
        for cmd in commands:
            for event in core.apply(cmd):
                if isinstance(event, OrderAccepted):
                    owners[event.order_id] = (event.account, event.client_order_id)
            journal.append(cmd.seq, encode(cmd))
            for symbol in (SYM, SYM2):
                books[(symbol, cmd.seq)] = render_book(core, spec(symbol), 1_000)
                market = core.markets[symbol]
                sides = (market.bids, market.asks)
                depths[(symbol, cmd.seq)] = [side.depth(1_000) for side in sides]
                queues[(symbol, cmd.seq)] = [[o.order_id for o in side.orders()] for side in sides]
            if cmd.seq in snapshots:
                write_snapshot(data_dir / SNAPSHOT_DIR, cmd.seq, core.snapshot(), keep=10)
        journal.commit()
    return History(data_dir, commands, books, owners, depths, queues)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return write_history(tmp_path_factory.mktemp("replay") / "data")


def without_replayed(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "replayed"}


def test_the_flow_is_worth_replaying(history: History) -> None:
    """The flow builds deep books with icebergs, client ids and many owners, and spans
    several journal segments: the comparisons below are not trivially true."""
    last = history.books[(SYM, len(history.commands))]
    orders = [o for level in last["bids"] + last["asks"] for o in level["orders"]]
    assert len(last["bids"]) >= 5 and len(last["asks"]) >= 5
    assert len({o["account"] for o in orders}) >= 5
    assert any("clientOrderId" in o for o in orders)
    assert any("clientOrderId" not in o for o in orders)
    seen = [book for (symbol, _), book in history.books.items() if symbol == SYM]
    assert any("visibleQuantity" in o for b in seen for lv in b["bids"] for o in lv["orders"])
    assert any(len(level["orders"]) >= 3 for level in last["bids"] + last["asks"])
    assert len(list_segments(history.data_dir / JOURNAL_DIR)) >= 5


def test_an_answer_shows_the_core_levels_queues_and_owners(history: History) -> None:
    """The rendering against what the core says of itself: its L2 levels (price, visible
    quantity, order count), its orders in priority, the owner each order was accepted for."""
    replay = BookReplay(history.data_dir, CONFIG)
    unit = spec(SYM)
    checked = 0
    for seq in range(1, len(history.commands) + 1, 7):
        for symbol in (SYM, SYM2):
            answer = replay.book_at(symbol, seq, depth=1_000)
            sides = (answer["bids"], answer["asks"])
            for levels, depth, queue in zip(
                sides, history.depths[(symbol, seq)], history.queues[(symbol, seq)], strict=True
            ):
                shown = [
                    (
                        unit.price_to_ticks(level["price"]),
                        sum(
                            unit.qty_to_lots(o.get("visibleQuantity", o["quantity"]))
                            for o in level["orders"]
                        ),
                        len(level["orders"]),
                    )
                    for level in levels
                ]
                assert shown == depth, (symbol, seq)
                ids = [o["orderId"] for level in levels for o in level["orders"]]
                assert ids == queue
                for level in levels:
                    for o in level["orders"]:
                        account, clid = history.owners[o["orderId"]]
                        assert o["account"] == account
                        assert o.get("clientOrderId", "") == clid
                        checked += 1
    assert checked > 1_000


def test_the_book_at_every_seq_equals_the_live_core(history: History) -> None:
    replay = BookReplay(history.data_dir, CONFIG, cursors=0, answers=0)
    assert gc.isenabled()
    for seq in range(0, len(history.commands) + 1):
        for symbol in (SYM, SYM2):
            answer = replay.book_at(symbol, seq, depth=1_000)
            assert without_replayed(answer) == history.books[(symbol, seq)], (symbol, seq)
            start = max((s for s in SNAPSHOTS if s <= seq), default=0)
            assert answer["replayed"] == seq - start
    # the collector is paused while a replay runs (as recovery does), and on again after
    seen: list[bool] = []

    def watching() -> Core:
        seen.append(gc.isenabled())
        return new_core()

    BookReplay(history.data_dir, ReplayConfig(SPECS, watching)).book_at(SYM, 10)
    assert seen[-1] is False and gc.isenabled()
    # the levels are best first, the orders in time priority (ids rise unless re-queued)
    book = history.books[(SYM, 300)]
    bid_prices = [float(level["price"]) for level in book["bids"]]
    ask_prices = [float(level["price"]) for level in book["asks"]]
    assert bid_prices == sorted(bid_prices, reverse=True)
    assert ask_prices == sorted(ask_prices)
    assert bid_prices[0] < ask_prices[0]


def test_across_a_snapshot_boundary_and_with_a_damaged_snapshot(
    history: History, tmp_path: Path
) -> None:
    replay = BookReplay(history.data_dir, CONFIG, cursors=0, answers=0)
    for seq in (119, 120, 121, 259, 260, 261):
        answer = replay.book_at(SYM, At(seq=seq), depth=1_000)
        assert without_replayed(answer) == history.books[(SYM, seq)]
    assert replay.book_at(SYM, 120)["replayed"] == 0
    assert replay.book_at(SYM, 121)["replayed"] == 1
    assert replay.book_at(SYM, 119)["replayed"] == 119
    # a kept core is moved forward only when it is nearer than the snapshot
    keeping = BookReplay(history.data_dir, CONFIG, cursors=2)
    assert keeping.book_at(SYM, 110)["replayed"] == 110
    assert keeping.book_at(SYM, 115)["replayed"] == 5
    assert keeping.book_at(SYM, 125)["replayed"] == 5  # from the snapshot at 120
    assert keeping.book_at(SYM, 118)["replayed"] == 3  # from the core kept at 115
    # a snapshot that does not verify is passed over for the one before it
    copy = write_history(tmp_path / "data")
    path = copy.data_dir / SNAPSHOT_DIR / snapshot_name(260)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF
    path.write_bytes(bytes(raw))
    damaged = BookReplay(copy.data_dir, CONFIG, cursors=0, answers=0)
    answer = damaged.book_at(SYM, 300, depth=1_000)
    assert without_replayed(answer) == history.books[(SYM, 300)]
    assert answer["replayed"] == 300 - 120
    # and without any snapshot, from the first record
    for snap in (copy.data_dir / SNAPSHOT_DIR).iterdir():
        snap.unlink()
    answer = book_at(copy.data_dir, CONFIG, SYM2, "333", depth=1_000)
    assert without_replayed(answer) == history.books[(SYM2, 333)]
    assert answer["replayed"] == 333


def test_a_snapshot_pruned_under_a_read_is_read_again(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The venue writes a snapshot and prunes the oldest while a read lists them: the read
    lists them again once, then answers from what is there."""
    copy = write_history(tmp_path / "data")
    real = engine.replay.load_at_or_before
    calls: list[int] = []

    def racing(directory: Path, seq: int, **kwargs: Any) -> Any:
        calls.append(seq)
        if len(calls) == 1:
            (copy.data_dir / SNAPSHOT_DIR / snapshot_name(260)).unlink()
            raise FileNotFoundError(f"{directory}: {snapshot_name(260)} was pruned")
        return real(directory, seq, **kwargs)

    monkeypatch.setattr(engine.replay, "load_at_or_before", racing)
    answer = BookReplay(copy.data_dir, CONFIG).book_at(SYM, 300, depth=1_000)
    assert without_replayed(answer) == history.books[(SYM, 300)]
    assert answer["replayed"] == 180 and len(calls) == 2
    # a journal that cannot be read is said so, once
    calls.clear()
    monkeypatch.setattr(engine.replay, "load_at_or_before", real)
    for segment in (copy.data_dir / JOURNAL_DIR).iterdir():
        segment.write_bytes(b"garbage")
    with pytest.raises(BookReplayError):
        BookReplay(copy.data_dir, CONFIG).book_at(SYM, 300)


def test_the_book_as_of_a_time_is_the_last_command_at_or_before_it(history: History) -> None:
    replay = BookReplay(history.data_dir, CONFIG)
    commands = history.commands
    times = sorted({cmd.ts for cmd in commands})
    assert len(times) < len(commands)  # some commands share a time
    rng = random.Random(5)
    probes = times[:3] + times[-3:] + rng.sample(times, 40)
    probes += [ts + 1 for ts in rng.sample(times, 20)] + [ts - 1 for ts in rng.sample(times, 20)]
    for ts in probes:
        expected = max((cmd.seq for cmd in commands if cmd.ts <= ts), default=None)
        journal = history.data_dir / JOURNAL_DIR
        assert seq_at_time(journal, ts, len(commands)) == expected, ts
        if expected is None:
            with pytest.raises(BookQueryError) as refused:
                replay.book_at(SYM, At(ts_ns=ts))
            assert refused.value.field == "at"
            continue
        answer = replay.book_at(SYM, At(ts_ns=ts), depth=1_000)
        assert without_replayed(answer) == history.books[(SYM, expected)]
        assert answer["ts"] == commands[expected - 1].ts // MS
    # the time as the API takes it, in ISO-8601 with an offset
    cmd = commands[200]
    moment = datetime.fromtimestamp(cmd.ts // 10**9, UTC) + timedelta(hours=2)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{cmd.ts % 10**9:09d}+02:00"
    last_at_that_time = max(c.seq for c in commands if c.ts <= cmd.ts)
    assert replay.resolve(text) == last_at_that_time
    # a durable seq before it bounds what a time finds
    assert replay.resolve(text, durable_seq=150) == min(150, last_at_that_time)


def test_bad_points_name_their_field(history: History) -> None:
    replay = BookReplay(history.data_dir, CONFIG)
    end = len(history.commands)
    cases: list[tuple[str, Any, dict[str, Any]]] = [
        ("symbol", "DOGE-USD", {}),
        ("at", str(end + 1), {}),
        ("at", "100", {"durable_seq": 99}),
        ("at", At(ts_ns=T0 - 1), {}),
        ("at", "yesterday", {}),
        ("at", "2023-11-14T10:00:00", {}),  # no offset: ambiguous
        ("depth", "5", {"depth": 0}),
    ]
    for field, at, extra in cases:
        symbol = at if field == "symbol" else SYM
        point = "1" if field == "symbol" else at
        with pytest.raises(BookQueryError) as refused:
            replay.book_at(symbol, point, **extra)
        assert refused.value.field == field, (field, at)
    assert replay.resolve(str(end)) == end  # the last record is there


def test_a_read_is_bounded_and_kept_cores_move_forward(history: History) -> None:
    config = dataclasses.replace(CONFIG, max_records=50)
    replay = BookReplay(history.data_dir, config, cursors=2)
    with pytest.raises(ReplayTooLong) as refused:
        replay.book_at(SYM, 200)  # 80 records after the snapshot at 120
    assert (refused.value.records, refused.value.limit, refused.value.start_seq) == (80, 50, 120)
    # stepping there from the snapshot: each read replays the step from the core kept
    for seq, replayed in ((160, 40), (200, 40), (240, 40), (230, 110)):
        if replayed > 50:
            with pytest.raises(ReplayTooLong):
                replay.book_at(SYM, seq)
            continue
        answer = replay.book_at(SYM, seq, depth=1_000)
        assert answer["replayed"] == replayed
        assert without_replayed(answer) == history.books[(SYM, seq)]
    # an answer already given is not replayed again; the other instrument's is
    assert replay.book_at(SYM, 200, depth=1_000)["replayed"] == 0
    other = replay.book_at(SYM2, 241, depth=1_000)
    assert other["replayed"] == 1
    assert without_replayed(other) == history.books[(SYM2, 241)]
    # the engine refuses the same before applying anything
    with pytest.raises(ReplayLimit):
        Replayer(history.data_dir, new_core).cursor_at(200, limit=50)


def test_scrubbing_walks_forward_without_starting_over(history: History) -> None:
    replay = BookReplay(history.data_dir, CONFIG)
    points: list[Any] = [5, 6, 30, 119, 121, "200", 260, 261, 400, 90, 91]
    answers = list(replay.scrub(SYM, points, depth=1_000))
    seqs = [int(p) for p in points]
    for seq, answer in zip(seqs, answers, strict=True):
        assert without_replayed(answer) == history.books[(SYM, seq)], seq
    # forward steps cost the step; going back starts from the snapshot before it
    assert [a["replayed"] for a in answers] == [5, 1, 24, 89, 2, 79, 60, 1, 139, 90, 1]
    bounded = BookReplay(history.data_dir, dataclasses.replace(CONFIG, max_records=50))
    walk = bounded.scrub(SYM, [130, 170, 230])
    assert next(walk)["replayed"] == 10 and next(walk)["replayed"] == 40
    with pytest.raises(ReplayTooLong) as refused:
        next(walk)  # 60 records past the core at 170
    assert (refused.value.records, refused.value.start_seq) == (60, 170)
    times = [history.commands[s - 1].ts for s in (10, 50, 300)]
    found = [a["seq"] for a in replay.scrub(SYM2, [At(ts_ns=t) for t in times])]
    assert found == [max(c.seq for c in history.commands if c.ts <= t) for t in times]


def test_a_cursor_follows_a_journal_that_grows(tmp_path: Path) -> None:
    commands = flow(60, seed=3)
    live = new_core()
    data = tmp_path / "data"
    with JournalWriter(data / JOURNAL_DIR, fsync=False) as journal:
        for cmd in commands[:30]:
            journal.append(cmd.seq, encode(cmd))
            live.apply(cmd)
        journal.commit()
        cursor = Replayer(data, new_core).cursor_at(20)
        assert cursor.advance(100) == 10 and cursor.seq == 30  # the journal's end for now
        assert cursor.core.state_hash() == live.state_hash()
        for cmd in commands[30:]:
            journal.append(cmd.seq, encode(cmd))
            live.apply(cmd)
        journal.commit()
        assert cursor.advance(45) == 15 and cursor.advance(60) == 15
        assert cursor.core.state_hash() == live.state_hash()
        cursor.close()
    with pytest.raises(ReplayError, match="ends at seq 60"):
        Replayer(data, new_core).cursor_at(61)
    first = first_record(list_segments(data / JOURNAL_DIR)[0][1])
    assert first is not None and first[0] == 1


def test_the_at_parser_under_a_seeded_fuzz() -> None:
    rng = random.Random(2024)
    alphabet = "0123456789-:T Z+.zt/,e\u0660x"
    for _ in range(4_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 36)))
        try:
            point = parse_at(text)
        except BookQueryError as exc:
            assert exc.field == "at" and "\n" not in str(exc)
            continue
        assert (point.seq is None) != (point.ts_ns is None)
    # valid times, with random offsets and fractions, land on the exact nanosecond
    base = datetime(2001, 1, 1, tzinfo=UTC)
    for _ in range(2_000):
        moment = base + timedelta(seconds=rng.randint(0, 60 * 365 * 86_400))
        ns = rng.randint(0, 10**9 - 1)
        digits = rng.randint(0, 9)
        fraction = f"{ns:09d}"[:digits]
        offset_min = rng.randint(-14 * 60, 14 * 60)
        local = moment + timedelta(minutes=offset_min)
        sign = "+" if offset_min >= 0 else "-"
        hours, minutes = divmod(abs(offset_min), 60)
        zone = "Z" if offset_min == 0 else f"{sign}{hours:02d}:{minutes:02d}"
        sep = rng.choice("T ")
        text = local.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (f".{fraction}" if digits else "") + zone
        expected = int(moment.timestamp()) * 10**9 + int(fraction.ljust(9, "0") or "0")
        assert parse_at(text) == At(ts_ns=expected), text
    # mutations of a valid time either parse or name 'at'
    good = "2024-02-29T23:59:59.123456789+05:30"
    for _ in range(2_000):
        chars = list(good)
        for _ in range(rng.randint(1, 3)):
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        try:
            parse_at("".join(chars))
        except BookQueryError as exc:
            assert exc.field == "at"
    assert parse_at(" 42 ") == At(seq=42)
    for bad in ("", "-1", "1.5", "2023-02-29T00:00:00Z", "2023-01-01T24:00:00Z", "9" * 20):
        with pytest.raises(BookQueryError):
            parse_at(bad)


# -- the admin API ---------------------------------------------------------------------------


def make_config(data_dir: Path, **changes: Any) -> VenueConfig:
    """The shipped configuration, matching only (no [[assets]])."""
    config = load_config(DEFAULT_CONFIG_PATH)
    changes = {"assets": {}, "fees": None, "ledger": None, **changes}
    return dataclasses.replace(
        config, data_dir=data_dir, admin=AdminConfig("127.0.0.1", 0), **changes
    )


def test_the_api_answers_the_venue_book_at_seqs_and_times(tmp_path: Path) -> None:
    """A running venue (matching only, a snapshot every 5 records): after each command the
    live core's book is kept; the API answers the same at those seqs and times, with a
    compliance token; 401 without one, 403 for roles without ``surveillance.read``; 400s
    naming the parameter."""

    async def main() -> None:
        config = make_config(tmp_path / "data", snapshot_every=5)
        venue = Venue(config)
        await venue.start()
        sym = config.instruments[0]
        assert sym.symbol == "BTC-USDT"
        expected: dict[int, dict[str, Any]] = {}
        stamps: dict[int, int] = {}
        rng = random.Random(9)
        live: list[tuple[int, int]] = []
        runner, host, port = await start_admin(venue, "127.0.0.1", 0)
        try:
            for n in range(60):
                account = rng.randint(1, 5)
                if live and rng.random() < 0.25:
                    account, order_id = live.pop(rng.randrange(len(live)))
                    cmd: Any = CancelOrder(account, sym.symbol, order_id)
                else:
                    side = rng.choice((Side.BUY, Side.SELL))
                    price = PRICE + rng.randint(-5, 5) * 100
                    qty = rng.randint(1, 5) * LOT // 10
                    cmd = NewOrder(
                        account, sym.symbol, f"o{n}", side, OrdType.LIMIT, qty=qty, price=price
                    )
                events = await venue.submit(cmd)
                for event in events:
                    order_id = getattr(event, "order_id", 0)
                    if isinstance(event, OrderAccepted):
                        live.append((event.account, order_id))
                assert venue.core.last_seq == cmd.seq
                expected[cmd.seq] = render_book(venue.core, sym, 1_000)
                stamps[cmd.seq] = cmd.ts
                if n % 10 == 9:
                    await asyncio.sleep(0.05)  # let the snapshot writer run
            for _ in range(100):  # the last snapshot due is written in its thread
                if venue.core.last_seq - venue.snapshot_seq < 5:
                    break
                await asyncio.sleep(0.05)
            snapshots = sorted(int(p.name[:20]) for p in (config.data_dir / SNAPSHOT_DIR).iterdir())
            assert snapshots, "the venue took no snapshot"
            store = staff_access(config).store
            compliance = store.create_token(["compliance"], 600, "tests")[1]
            auditor = store.create_token(["auditor"], 600, "tests")[1]
            operator = store.create_token(["operator"], 600, "tests")[1]
            admin = store.create_token(["admin", "treasury", "approver"], 600, "tests")[1]
            async with aiohttp.ClientSession(f"http://{host}:{port}") as http:

                async def get(params: dict[str, str], token: str = compliance) -> tuple[int, Any]:
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    async with http.get(
                        "/v1/surveillance/book", params=params, headers=headers
                    ) as response:
                        return response.status, await response.json()

                # the last point first: from the newest snapshot before it
                last = max(expected)
                status, body = await get({"symbol": "BTC-USDT", "at": str(last), "depth": "1000"})
                assert status == 200, body
                assert body.pop("replayed") == last - max(s for s in snapshots if s <= last)
                assert body == expected[last]
                for seq in sorted(expected):
                    status, body = await get(
                        {"symbol": "BTC-USDT", "at": str(seq), "depth": "1000"}
                    )
                    assert status == 200, body
                    body.pop("replayed")
                    assert body == expected[seq], seq
                orders = [o for lv in expected[max(expected)]["bids"] for o in lv["orders"]]
                assert orders and all(o["clientOrderId"].startswith("o") for o in orders)
                seq = 37
                when = datetime.fromtimestamp(stamps[seq] / 1e9, UTC)
                iso = when.strftime("%Y-%m-%dT%H:%M:%S") + f".{stamps[seq] % 10**9:09d}Z"
                status, body = await get(
                    {"symbol": "BTC-USDT", "at": iso, "depth": "1000"}, auditor
                )
                assert status == 200, body
                last = max(s for s, ts in stamps.items() if ts <= stamps[seq])
                assert body["seq"] == last and body["bids"] == expected[last]["bids"]
                # who may ask
                status, body = await get({"symbol": "BTC-USDT", "at": "3"}, "")
                assert status == 401
                for token in (operator, admin):
                    status, body = await get({"symbol": "BTC-USDT", "at": "3"}, token)
                    assert status == 403, body
                # bad input names the parameter
                first_ts = min(stamps.values())
                before = datetime.fromtimestamp(first_ts / 1e9 - 3600, UTC)
                bad = {
                    "'symbol': unknown": {"symbol": "DOGE-USDT", "at": "3"},
                    "beyond the journal": {"symbol": "BTC-USDT", "at": str(venue.durable_seq + 1)},
                    "'at' is before": {
                        "symbol": "BTC-USDT",
                        "at": before.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    },
                    "'at' must": {"symbol": "BTC-USDT", "at": "noon"},
                    "'depth'": {"symbol": "BTC-USDT", "at": "3", "depth": "0"},
                    "'colour'": {"symbol": "BTC-USDT", "at": "3", "colour": "red"},
                    "'symbol' is required": {"at": "3"},
                }
                for words, params in bad.items():
                    status, body = await get(params)
                    assert status == 400, (words, body)
                    assert set(body) == {"code", "msg"} and words in body["msg"], body
                async with http.get(
                    "/v1/surveillance/book?symbol=BTC-USDT&at=3&at=4",
                    headers={"Authorization": f"Bearer {compliance}"},
                ) as response:
                    assert response.status == 400
                    assert "more than once" in (await response.json())["msg"]
        finally:
            await runner.cleanup()
            await venue.stop()

    asyncio.run(asyncio.wait_for(main(), 120))


def test_the_page_reads_only_the_durable_seq_and_says_what_a_long_read_costs(
    history: History,
) -> None:
    async def main() -> None:
        replay = BookReplay(history.data_dir, dataclasses.replace(CONFIG, max_records=30))
        durable = [100]
        page = BookPage(replay, lambda: durable[0])
        app = web.Application()
        page.add_routes(app)
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/v1/surveillance/book?symbol=BTC-USD&at=101")
            assert response.status == 400
            assert "beyond the journal (seq 100)" in (await response.json())["msg"]
            response = await client.get("/v1/surveillance/book?symbol=BTC-USD&at=100")
            assert response.status == 422
            body = await response.json()
            assert (body["records"], body["limit"], body["startSeq"]) == (100, 30, 0)
            durable[0] = 400
            response = await client.get("/v1/surveillance/book?symbol=BTC-USD&at=280&depth=2")
            assert response.status == 200
            body = await response.json()
            assert body["replayed"] == 20 and len(body["bids"]) <= 2
            full = history.books[(SYM, 280)]
            assert body["bids"] == full["bids"][:2] and body["asks"] == full["asks"][:2]

    asyncio.run(asyncio.wait_for(main(), 60))


def test_the_event_loop_serves_while_a_replay_runs(history: History) -> None:
    """The replay runs in a worker thread: while one is held inside the core's construction,
    the same application answers another request."""
    started = threading.Event()
    release = threading.Event()
    hold = [False]

    def held_core() -> Core:
        if hold[0]:
            started.set()
            assert release.wait(10)
        return new_core()

    async def main() -> None:
        page = BookPage(BookReplay(history.data_dir, ReplayConfig(SPECS, held_core)), lambda: 400)
        app = web.Application()
        page.add_routes(app)

        async def ping(request: web.Request) -> web.Response:
            return web.json_response({"ok": True})

        app.router.add_get("/ping", ping)
        hold[0] = True
        async with TestClient(TestServer(app)) as client:
            slow = asyncio.ensure_future(client.get("/v1/surveillance/book?symbol=BTC-USD&at=50"))
            assert await asyncio.to_thread(started.wait, 10)
            response = await client.get("/ping")
            assert response.status == 200 and not slow.done()
            release.set()
            response = await slow
            assert response.status == 200
            assert (await response.json())["seq"] == 50

    asyncio.run(asyncio.wait_for(main(), 30))
