"""The order-to-trade ratio enforced by the risk stage (``[risk] otr_enforce``, off by default):
messages and trades counted per account, instrument and UTC day as the surveillance detector
counts them; the message that would go over the maximum refused (``OTR_EXCEEDED``), and every
new order and replace after it that day; cancels always pass; the next UTC day starts afresh;
the counts in snapshots, the state hash and replays; off, nothing changes.

Every command goes through ``Driver.do``, which checks the core's invariants after it."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
from fix_client import FixClient, now

from clearing.config import RiskConfig, read_risk
from clearing.risk import OtrLimit, RiskEngine
from engine import codec
from engine.commands import (
    CancelOrder,
    ConfigureOtrLimit,
    Deposit,
    MassCancel,
    NewOrder,
    ReplaceOrder,
)
from engine.configfile import ConfigError, Table
from engine.core import Core
from engine.events import (
    ClearingRejected,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    OtrLimitConfigured,
    ReplaceRejected,
    Trade,
)
from engine.instrument import spec_from_decimals
from engine.recovery import JOURNAL_DIR, SNAPSHOT_DIR, recover
from engine.types import CancelReason, MassCancelScope, OrdType, RejectReason, Side, StpMode
from gateway.edge.refusals import FIX_REASONS, binance_error
from gateway.rest.errors import from_reason
from surveillance.detect import LatestSink, Surveillance
from surveillance.detect.params import InstrumentParams, SurveillanceConfig
from venue.config import DEFAULT_CONFIG_PATH, load_config, parse_config
from venue.fix import attach_gateway, build_gateway
from venue.runtime import Venue, make_core

BUY, SELL, LIMIT = Side.BUY, Side.SELL, OrdType.LIMIT
DAY = 86_400 * 10**9
T0 = 19_675 * DAY + 10 * 3600 * 10**9  # 10:00 UTC
COIN = 10**8
ASSETS = {"BTC": 8, "USDT": 8}
BTC = spec_from_decimals(
    "BTC-USDT", "BTC", "USDT", "0.01", "0.00001", "0.00001", "1000", "0", 1000, "100.00"
)
PRICE = 10_000  # 100.00
LOW = 9_500  # a bid that rests
OVER = RejectReason.OTR_EXCEEDED
LIMIT_3_4 = OtrLimit(3, 4)  # 3 messages a trade, judged from the 4th message


class Driver:
    def __init__(self, limit: OtrLimit | None = LIMIT_3_4) -> None:
        self.risk = RiskEngine([BTC], ASSETS, limit)
        self.core = Core([BTC], default_stp=StpMode.NONE, risk=self.risk)
        self.seq = 0
        self.ts = T0
        self.clid = 0
        self.journal: list[bytes] = []
        self.stream: list[tuple[int, int, list[Any]]] = []

    def do(self, cmd: Any) -> list[Any]:
        self.seq += 1
        self.ts += 1_000_000
        cmd.seq, cmd.ts = self.seq, self.ts
        self.journal.append(codec.encode(cmd))
        events = self.core.apply(cmd)
        findings = self.core.check_invariants()
        assert not findings, f"after {cmd}: {findings}"
        self.stream.append((self.seq, self.ts, events))
        return events

    def fund(self, *accounts: int) -> None:
        for account in accounts:
            self.do(Deposit(account, "USDT", 1_000_000 * COIN, f"u{account}"))
            self.do(Deposit(account, "BTC", 1_000 * COIN, f"b{account}"))

    def order(self, account: int, side: Side, price: int, lots: int = 100) -> list[Any]:
        self.clid += 1
        return self.do(NewOrder(account, "BTC-USDT", f"c{self.clid}", side, LIMIT, lots, price))

    def count(self, account: int) -> tuple[int, int]:
        return self.risk.otr_count(account, "BTC-USDT")


def accepted(events: list[Any]) -> int:
    """The id of the order accepted, else 0."""
    return next((e.order_id for e in events if isinstance(e, OrderAccepted)), 0)


def rejected(events: list[Any]) -> RejectReason | None:
    found = [e.reason for e in events if isinstance(e, OrderRejected | ReplaceRejected)]
    return found[0] if found else None


def traded_twice(d: Driver) -> int:
    """Account 1 rests an ask of 300 lots (1 message) and account 2 takes 100 of it twice:
    account 1 has 1 message and 2 trades, so 3 x 2 = 6 messages are its maximum. The ask's id."""
    d.fund(1, 2)
    ask = accepted(d.order(1, SELL, PRICE, 300))
    for _ in range(2):
        assert any(isinstance(e, Trade) for e in d.order(2, BUY, PRICE))
    if d.risk.otr_limit is not None:
        assert d.count(1) == (1, 2) and d.count(2) == (2, 2)
    return ask


# -- the refusal --------------------------------------------------------------------------------


def test_exactly_the_maximum_passes_and_one_message_more_is_refused() -> None:
    d = Driver(OtrLimit(3, 4))
    ask = traded_twice(d)
    bids = [accepted(d.order(1, BUY, LOW)) for _ in range(5)]  # messages 2 to 6
    assert all(bids) and d.count(1) == (6, 2)  # 6 / 2 = 3: at the maximum
    events = d.order(1, BUY, LOW)  # the 7th would be 3.5 a trade
    assert rejected(events) is OVER and not accepted(events)
    assert d.count(1) == (6, 2)  # a refused order is no message
    events = d.do(ReplaceOrder(1, "BTC-USDT", bids[0], "", "", 50, LOW, 0))
    assert rejected(events) is OVER and not any(isinstance(e, OrderReplaced) for e in events)
    # the other account is not concerned
    assert accepted(d.order(2, BUY, LOW))
    # cancels pass, and count
    events = d.do(CancelOrder(1, "BTC-USDT", bids[1]))
    assert any(isinstance(e, OrderCancelled) for e in events) and d.count(1) == (7, 2)
    # more trades bring the ratio under the maximum: still refused for the rest of the day
    for _ in range(2):
        assert any(isinstance(e, Trade) for e in d.order(2, BUY, PRICE, 50))
    assert d.count(1) == (7, 4)  # 1.75 a trade
    assert rejected(d.order(1, BUY, LOW)) is OVER
    assert rejected(d.order(1, SELL, PRICE + 100)) is OVER
    assert d.risk.snapshot_state()[0] == 3  # type: ignore[index]
    assert ask


def test_the_ratio_is_judged_once_the_minimum_of_messages_is_reached() -> None:
    d = Driver(OtrLimit(1, 5))
    d.fund(1)
    for n in range(4):  # 1 to 4 messages without a trade: over 1, but under the minimum
        assert accepted(d.order(1, BUY, LOW)), n
    assert rejected(d.order(1, BUY, LOW)) is OVER  # the 5th
    assert d.count(1) == (4, 0)


def test_mass_cancels_count_each_order_and_the_venue_s_cancels_none() -> None:
    d = Driver(OtrLimit(100, 1_000))
    d.fund(1)
    for _ in range(3):
        d.order(1, BUY, LOW)
    events = d.do(MassCancel(MassCancelScope.ACCOUNT, 1))
    assert sum(isinstance(e, OrderCancelled) for e in events) == 3
    assert d.count(1) == (6, 0)
    for _ in range(2):
        d.order(1, BUY, LOW)
    events = d.do(MassCancel(MassCancelScope.ACCOUNT, 1, reason=CancelReason.OPERATOR))
    assert sum(isinstance(e, OrderCancelled) for e in events) == 2
    assert d.count(1) == (8, 0)  # the operator's cancellations are not the member's


def test_the_counts_are_the_detector_s() -> None:
    """The same stream counted by the risk stage and by ``surveillance.detect.otr``."""
    d = Driver(OtrLimit(1_000, 1_000))
    ask = traded_twice(d)
    bids = [accepted(d.order(1, BUY, LOW)) for _ in range(3)]
    d.do(ReplaceOrder(1, "BTC-USDT", bids[0], "", "", 50, LOW, 0))
    d.do(CancelOrder(1, "BTC-USDT", bids[1]))
    assert any(isinstance(e, Trade) for e in d.order(2, SELL, LOW, 30))  # into a bid of 1
    d.do(MassCancel(MassCancelScope.ACCOUNT, 1))  # the ask and two bids
    config = SurveillanceConfig(defaults=InstrumentParams())
    surveillance = Surveillance(config, [BTC], LatestSink(), ASSETS)
    for seq, ts, events in d.stream:
        surveillance.on_events(seq, ts, events)
    rows = surveillance.otr.rows(T0 // DAY)
    detector = {r["account"]: (r["messages"], r["trades"]) for r in rows if "account" in r}
    assert detector == {1: d.count(1), 2: d.count(2)}
    assert d.count(1) == (1 + 3 + 1 + 1 + 3, 3) and d.count(2) == (3, 3)
    assert ask


def test_the_next_utc_day_starts_afresh() -> None:
    d = Driver(OtrLimit(1, 2))
    d.fund(1)
    d.order(1, BUY, LOW)
    assert rejected(d.order(1, BUY, LOW)) is OVER
    midnight = (T0 // DAY + 1) * DAY
    d.ts = midnight - 2_000_000  # the next command is 1 ms before midnight: still refused
    assert rejected(d.order(1, BUY, LOW)) is OVER
    events = d.order(1, BUY, LOW)  # at midnight exactly
    assert d.ts == midnight and accepted(events)
    assert d.count(1) == (1, 0) and d.risk.otr_day == T0 // DAY + 1
    assert rejected(d.order(1, BUY, LOW)) is OVER  # and judged again


# -- core state -----------------------------------------------------------------------------------


def _refused_history(d: Driver) -> None:
    traded_twice(d)
    for _ in range(5):
        d.order(1, BUY, LOW)
    assert rejected(d.order(1, BUY, LOW)) is OVER


def test_snapshot_restore_and_replay_give_the_same_state_and_refusals() -> None:
    d = Driver()
    _refused_history(d)
    fresh = Driver()
    fresh.core.restore(d.core.snapshot())
    replayed = Driver()
    for payload in d.journal:
        replayed.core.apply(codec.decode(payload))
    for other in (fresh, replayed):
        assert other.core.state_hash() == d.core.state_hash()
        assert not other.core.check_invariants()
        assert other.risk.otr_counts == d.risk.otr_counts
        assert other.risk.otr_refused == d.risk.otr_refused == {(1, "BTC-USDT")}
    off = Driver(None)
    for payload in d.journal:
        off.core.apply(codec.decode(payload))
    assert off.core.state_hash() != d.core.state_hash()  # the counts are in the hash
    seq, ts, clid = d.seq, d.ts, d.clid
    for driver in (d, fresh, replayed):
        driver.seq, driver.ts, driver.clid = seq, ts, clid
        assert rejected(driver.order(1, BUY, LOW)) is OVER
        assert accepted(driver.order(2, BUY, LOW))
    assert d.core.state_hash() == fresh.core.state_hash() == replayed.core.state_hash()


def test_the_limit_is_a_journaled_command_in_the_snapshot() -> None:
    """``ConfigureOtrLimit`` sets the limit (counting starts then), travels in the journal and
    the snapshot, keeps the day's counts when it changes, drops them when removed."""
    d = Driver(None)
    d.fund(1)
    assert accepted(d.order(1, BUY, LOW))  # not counted: no limit yet
    events = d.do(ConfigureOtrLimit(1, 2))
    assert [e for e in events if isinstance(e, OtrLimitConfigured)] == [OtrLimitConfigured(1, 2)]
    assert accepted(d.order(1, BUY, LOW)) and d.count(1) == (1, 0)
    assert rejected(d.order(1, BUY, LOW)) is OVER
    restored = Driver(None)
    restored.core.restore(d.core.snapshot())
    replayed = Driver(None)
    for payload in d.journal:
        replayed.core.apply(codec.decode(payload))
    for other in (restored, replayed):
        assert other.core.state_hash() == d.core.state_hash()
        limit = other.risk.otr_limit
        assert limit is not None and (limit.max_number, limit.min_messages) == (1, 2)
        assert other.risk.otr_refused == {(1, "BTC-USDT")}
    d.do(ConfigureOtrLimit(5, 2))  # a new limit: the day's counts and refusals stay
    assert d.count(1) == (1, 0) and rejected(d.order(1, BUY, LOW)) is OVER
    bad = d.do(ConfigureOtrLimit(0, 5))
    assert any(isinstance(e, ClearingRejected) for e in bad) and d.risk.otr_limit is not None
    d.do(ConfigureOtrLimit(0, 0))  # none: nothing counted, nothing refused
    assert d.risk.otr_limit is None and not d.risk.otr_counts and not d.risk.otr_refused
    assert accepted(d.order(1, BUY, LOW))
    assert d.risk.snapshot_state()[0] == 1  # type: ignore[index]


def test_a_broken_count_is_found_by_the_invariants() -> None:
    d = Driver()
    _refused_history(d)
    d.risk.otr_counts[(1, "BTC-USDT")][0] = 1
    assert any("refused on BTC-USDT after 1 messages" in f for f in d.core.check_invariants())
    d.risk.otr_counts[(2, "BTC-USDT")][1] = -1
    assert any("-1 trades" in f for f in d.core.check_invariants())


# -- off by default -------------------------------------------------------------------------------


def test_off_the_same_flow_is_accepted_and_the_state_keeps_its_version() -> None:
    off, plain = Driver(None), Driver(None)
    traded_twice(off)
    for _ in range(10):
        assert accepted(off.order(1, BUY, LOW))
    assert not off.risk.otr_counts and off.risk.snapshot_state()[0] == 1  # type: ignore[index]
    # a risk stage built as before (no limit argument) is the same state machine
    plain.risk = RiskEngine([BTC], ASSETS)
    plain.core = Core([BTC], default_stp=StpMode.NONE, risk=plain.risk)
    for payload in off.journal:
        plain.core.apply(codec.decode(payload))
    assert plain.core.state_hash() == off.core.state_hash()


def test_the_shipped_configuration_enforces_nothing_and_old_journals_keep_their_hash(
    tmp_path: Path,
) -> None:
    shipped = load_config(DEFAULT_CONFIG_PATH)
    assert shipped.risk.otr_enforce is False and shipped.risk.otr_limit() is None
    core = make_core(shipped)
    assert isinstance(core.risk, RiskEngine) and core.risk.otr_limit is None
    old = Path(__file__).resolve().parent / "data" / "journal-784838d"
    data = tmp_path / "data"
    shutil.copytree(old / JOURNAL_DIR, data / JOURNAL_DIR)
    shutil.copytree(old / SNAPSHOT_DIR, data / SNAPSHOT_DIR)
    text = (old / "venue.toml").read_text(encoding="utf-8")
    config = parse_config(text + "\n[risk]\notr_enforce = false\n", "venue.toml")
    config = dataclasses.replace(config, data_dir=data)
    _, report = recover(data, lambda: make_core(config), repair=False, state_hash=True)
    assert report.state_hash == "c9609c66347f460e857398ee7196c8d95ce647e4659b79c159c18e725cb9640a"


def test_the_configuration_turns_it_on_and_needs_assets() -> None:
    text = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
    assert "otr_enforce = false" in text
    on = parse_config(
        text.replace("otr_enforce = false", "otr_enforce = true").replace(
            "otr_max_number = 500 ", "otr_max_number = 250 "
        ),
        "venue.toml",
    )
    limit = on.risk.otr_limit()
    assert limit is not None and (limit.max_number, limit.min_messages) == (250, 1000)
    core = make_core(on)  # the runtime sequences the limit: a new core has none
    assert isinstance(core.risk, RiskEngine) and core.risk.otr_limit is None
    root = Table({"risk": {"otr_enforce": True}}, "", "venue.toml")
    with pytest.raises(ConfigError, match=r"risk\.otr_enforce.*needs \[\[assets\]\]"):
        read_risk(root, {})  # a matching-only venue has no risk stage


# -- the doors ------------------------------------------------------------------------------------


def test_the_refusal_reaches_the_doors() -> None:
    assert FIX_REASONS[OVER] == ("99", "99")  # Other, with VenueRejectReason 30 and its name
    error = binance_error(OVER)
    assert error.code == -2010 and error.status == 400
    assert "order-to-trade ratio" in error.msg and "cancels are accepted" in error.msg
    api = from_reason(OVER)
    assert api.code == -2010 and api.msg == error.msg


def test_a_fix_session_over_the_ratio_is_refused_and_may_still_cancel(tmp_path: Path) -> None:
    """A running venue enforcing 1 message a trade from the 2nd message, behind the FIX
    acceptor: the second order is an ExecutionReport Rejected with OrdRejReason 99 Other and
    VenueRejectReason 30, a replace an OrderCancelReject 99; the cancel passes."""
    from test_fix_orders import SESSIONS, make_config, order

    async def body() -> None:
        config = make_config(tmp_path)
        config = dataclasses.replace(config, risk=RiskConfig(True, 1, 2))
        venue = Venue(config)
        await venue.start()
        assert config.fix is not None
        gateway = build_gateway(config.fix, venue)
        unsubscribe = attach_gateway(gateway, venue)
        _, port = await gateway.acceptor.start()
        try:
            assert SESSIONS[0].accounts == (1001,)
            await venue.submit(Deposit(1001, "USDT", 1_000_000 * COIN, "usdt-1001"))
            a = FixClient(port, "A")
            await a.logon()
            a.send(b"D", order("o1", b"1", b"0.1", b"94000.00"))
            await a.expect_type(b"8", _11=b"o1", _150=b"0")
            a.send(b"D", order("o2", b"1", b"0.1", b"94000.00"))
            refused = await a.expect_type(b"8", _11=b"o2", _150=b"8")
            assert (refused.get(39), refused.get(103), refused.get(25006), refused.get(58)) == (
                b"8",
                b"99",
                b"30",
                b"OTR_EXCEEDED",
            )
            fields = [(11, b"o1b"), (41, b"o1"), (55, b"BTC-USDT"), (54, b"1"), (60, now())]
            a.send(b"G", [*fields, (40, b"2"), (38, b"0.2"), (44, b"94000.00")])
            cxl_reject = await a.expect_type(b"9")
            assert (cxl_reject.get(434), cxl_reject.get(102), cxl_reject.get(25006)) == (
                b"2",
                b"99",
                b"30",
            )
            a.send(b"F", [(11, b"c1"), (41, b"o1"), (55, b"BTC-USDT"), (54, b"1"), (60, now())])
            await a.expect_type(b"8", _150=b"4", _11=b"c1")
            assert not a.invalid, a.invalid
            risk = venue.core.risk
            assert isinstance(risk, RiskEngine) and risk.otr_count(1001, "BTC-USDT") == (2, 0)
            state_hash = venue.core.state_hash()
        finally:
            await gateway.acceptor.stop()
            unsubscribe()
            await venue.stop()
        # the limit is in the journal: replayed by a venue whose file enforces none, the same
        # state and the same refusals
        off = dataclasses.replace(config, risk=RiskConfig())
        core, _ = recover(tmp_path, lambda: make_core(off), repair=False)
        assert isinstance(core.risk, RiskEngine) and core.risk.otr_refused == {(1001, "BTC-USDT")}
        assert core.state_hash() == state_hash

    asyncio.run(asyncio.wait_for(body(), 60))
