"""``Core.check_invariants``: the core's own check of its state, the risk stage's included.

A state built by real commands (resting orders on several levels, an iceberg, a partial fill, a
GTD order, stops both ways, a pending withdrawal) is sound; then each structure is corrupted on
purpose, one at a time, and the check must name what broke. A snapshot holding a corrupt state
is refused at recovery, by ``venue run`` and by ``venue verify`` (exit 2, one line)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clearing.risk import RiskEngine
from engine.book import Level
from engine.commands import Deposit, NewOrder, Withdraw
from engine.core import Core
from engine.instrument import spec_from_decimals
from engine.order import Order
from engine.recovery import SNAPSHOT_DIR, RecoveryError, recover
from engine.snapshot import write_snapshot
from engine.types import OrderStatus, OrdType, Side, TimeInForce

SYM = "BTC-USDT"
ASSETS = {"BTC": 8, "USDT": 8}
SPECS = [spec_from_decimals(SYM, "BTC", "USDT", "0.01", "0.001", "0.001", "100", "0", 2000, "100")]
BUY, SELL = Side.BUY, Side.SELL
T0 = 19_675 * 86_400 * 10**9


class Book:
    """A core with the risk stage, driven by stamped commands."""

    def __init__(self, risk: bool = True) -> None:
        self.risk = RiskEngine(SPECS, ASSETS) if risk else None
        self.core = Core(SPECS, risk=self.risk)

    def do(self, cmd: Any) -> list[Any]:
        cmd.seq, cmd.ts = self.core.last_seq + 1, T0 + self.core.last_seq * 1000
        return self.core.apply(cmd)

    def order(self, account: int, side: Side, qty: int, price: int, clid: str, **kw: Any) -> None:
        kw.setdefault("ord_type", OrdType.LIMIT)
        self.do(NewOrder(account, SYM, clid, side, qty=qty, price=price, **kw))

    def find(self, clid: str) -> Order:
        for orders in self.core.live.values():
            for order in orders.values():
                if order.client_order_id == clid:
                    return order
        raise KeyError(clid)


def built(risk: bool = True) -> Book:
    b = Book(risk)
    if risk:
        for account in (1, 2):
            b.do(Deposit(account, "BTC", 10**10))
            b.do(Deposit(account, "USDT", 10**13))
        b.do(Withdraw(1, "USDT", 10**9, 1))
    b.order(1, BUY, 10, 9_900, "b1")
    b.order(1, BUY, 5, 9_900, "b2")
    gtd = T0 + 3_600 * 10**9
    b.order(1, BUY, 3, 9_800, "b3", tif=TimeInForce.GTD, expire_time=gtd)
    b.order(2, SELL, 4, 10_100, "s1", display_qty=2)
    b.order(2, SELL, 2, 10_200, "s2")
    b.order(2, SELL, 2, 9_900, "s3")  # fills 2 of b1
    b.order(2, SELL, 1, 0, "stop-down", ord_type=OrdType.STOP_LOSS, stop_price=9_500)
    stop_up = {"ord_type": OrdType.STOP_LOSS_LIMIT, "stop_price": 10_500}
    b.order(1, BUY, 1, 10_600, "stop-up", **stop_up)
    return b


def test_a_state_built_by_commands_is_sound() -> None:
    b = built()
    assert b.find("b1").leaves == 8  # the partial fill happened
    assert b.risk is not None and b.risk.withdrawals
    assert b.core.check_invariants() == []
    assert built(risk=False).core.check_invariants() == []


def _move(b: Book, clid: str, price: int) -> None:
    order = b.find(clid)
    side = b.core.markets[SYM].asks if order.side is SELL else b.core.markets[SYM].bids
    side.remove(order)
    order.price = price
    side.add(order)


def _hold(b: Book, clid: str) -> Any:
    assert b.risk is not None
    return b.risk.holds[b.find(clid).order_id]


def _level(b: Book, price: int) -> Any:
    return b.core.markets[SYM].bids.levels[price]


def _empty_level(b: Book) -> None:
    bids = b.core.markets[SYM].bids
    bids.levels[9_700] = Level(9_700)
    bids.keys.insert(0, 9_700)


Corruption = Callable[[Book], object]
CORRUPTIONS: dict[str, tuple[Corruption, str]] = {
    # the books
    "crossed": (lambda b: _move(b, "s1", 9_850), "the book is crossed"),
    "keys unsorted": (lambda b: b.core.markets[SYM].bids.keys.reverse(), "not sorted"),
    "key lost": (lambda b: b.core.markets[SYM].bids.keys.pop(0), "do not match levels"),
    "level count": (lambda b: setattr(_level(b, 9_900), "count", 3), "says 3 orders"),
    "level qty": (lambda b: setattr(_level(b, 9_900), "qty", 1), "showing 1"),
    "broken link": (
        lambda b: setattr(_level(b, 9_900).tail, "prev", None),
        "linked to the wrong prev",
    ),
    "tail": (lambda b: setattr(_level(b, 9_900), "tail", b.find("b1")), "the tail is not"),
    "cycle": (lambda b: setattr(b.find("b2"), "next", b.find("b1")), "does not end"),
    "empty level": (_empty_level, "bid level 9700: the level is empty"),
    "order at the wrong price": (
        lambda b: setattr(b.find("s2"), "price", 10_250),
        "does not belong there",
    ),
    "order on the wrong side": (lambda b: setattr(b.find("s2"), "side", BUY), "does not belong"),
    "visible": (lambda b: setattr(b.find("s1"), "visible", 3), "shows 3 of 4 open"),
    "status": (
        lambda b: setattr(b.find("b2"), "status", OrderStatus.PENDING_TRIGGER),
        "rests with status PENDING_TRIGGER",
    ),
    "leaves": (lambda b: setattr(b.find("s2"), "qty", 1), "rests with 2 of 1 open"),
    # the stop books
    "stop price": (
        lambda b: setattr(b.find("stop-down").ext, "stop_price", 9_400),
        "does not belong there",
    ),
    "stop keys": (lambda b: b.core.markets[SYM].stops.down_keys.append(1), "stop price keys"),
    "stop status": (
        lambda b: setattr(b.find("stop-up"), "status", OrderStatus.NEW),
        "waits with status NEW",
    ),
    "stop both ways": (
        lambda b: b.core.markets[SYM].stops.add(b.find("stop-down"), True),
        "in two places",
    ),
    # the indexes, and one place per live order
    "not live": (lambda b: b.core.live[2].pop(b.find("s2").order_id), "not among account 2"),
    "on no book": (lambda b: b.core.markets[SYM].asks.remove(b.find("s2")), "on no book"),
    "two places": (lambda b: b.core.markets[SYM].asks.add(b.find("b3")), "in two places"),
    "live under another id": (
        lambda b: b.core.live[1].__setitem__(99, b.find("b1")),
        "live order 99 is order",
    ),
    "clid lost": (lambda b: b.core.clids[1].pop("b2"), "'b2' is not indexed"),
    "clid stale": (
        lambda b: b.core.clids[1].__setitem__("gone", b.find("b2")),
        "'gone' of account 1 names order",
    ),
    "expiry lost": (lambda b: b.core.expiries.clear(), "unscheduled"),
    "expiry heap": (
        lambda b: b.core.expiries.append((0, 0, 0)),
        "the expiry heap is out of order",
    ),
    "next order id": (lambda b: setattr(b.core, "next_order_id", 2), "not below the next"),
    "update id": (lambda b: setattr(b.core.markets[SYM], "update_id", -1), "update id -1"),
    # the risk stage
    "hold amount": (
        lambda b: setattr(_hold(b, "b2"), "amount", _hold(b, "b2").amount + 1),
        "can spend",
    ),
    "hold leaves": (lambda b: setattr(_hold(b, "b1"), "leaves", 10), "its hold is for"),
    "locked": (lambda b: b.risk.balances[1]["USDT"].__setitem__(1, 0), "locked 0 but"),
    "negative": (lambda b: b.risk.balances[2]["BTC"].__setitem__(0, -1), "total -1"),
    "locked above total": (
        lambda b: b.risk.balances[2]["BTC"].__setitem__(0, 1),
        "total 1, locked",
    ),
    "sum": (lambda b: b.risk.venue.__setitem__(("fees", "BTC"), 10**12), "BTC: all accounts"),
    "hold of no order": (
        lambda b: b.risk.holds.__setitem__(999, _hold(b, "b2")),
        "order 999 is not open",
    ),
    "order without hold": (lambda b: b.risk.holds.pop(b.find("s2").order_id), "holds nothing"),
    "withdrawal": (
        lambda b: b.risk.withdrawals.__setitem__(1, (1, "USDT", 0)),
        "withdrawal 1 of account 1 holds 0",
    ),
    "held without a balance": (
        lambda b: b.risk.withdrawals.__setitem__(2, (3, "BTC", 5)),
        "account 3 BTC: 5 held without a balance",
    ),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_each_corruption_is_found(name: str) -> None:
    b = built()
    corrupt, expected = CORRUPTIONS[name]
    corrupt(b)
    findings = b.core.check_invariants()
    assert any(expected in finding for finding in findings), findings


def test_triggered_stops_left_queued_are_found() -> None:
    b = built()
    b.core._triggered.append(b.find("stop-up"))
    assert "stop orders triggered by a finished command are still queued" in (
        b.core.check_invariants()
    )


# -- where the check runs ---------------------------------------------------------------------
def _venue_config(tmp_path: Path) -> Any:
    import dataclasses

    from venue.config import DEFAULT_CONFIG_PATH, load_config

    data_dir = tmp_path / "data"
    return dataclasses.replace(load_config(DEFAULT_CONFIG_PATH), data_dir=data_dir)


def _corrupt_snapshot(tmp_path: Path) -> tuple[Any, Path]:
    """The shipped configuration's core with a deposit, its balance then off, snapshotted."""
    from venue.runtime import make_core

    config = _venue_config(tmp_path)
    core = make_core(config)
    risk = core.risk
    assert isinstance(risk, RiskEngine)
    b = Book()
    b.core, b.risk = core, risk
    b.do(Deposit(1001, "USDT", 10**12))
    assert core.check_invariants() == []
    risk.balances[1001]["USDT"][0] += 7  # money from nowhere
    write_snapshot(config.data_dir / SNAPSHOT_DIR, core.last_seq, core.snapshot())
    return config, config.data_dir


def test_recovery_refuses_a_snapshot_whose_state_is_inconsistent(tmp_path: Path) -> None:
    from venue.runtime import make_core

    config, data_dir = _corrupt_snapshot(tmp_path)
    with pytest.raises(RecoveryError) as raised:
        recover(data_dir, lambda: make_core(config), repair=False)
    message = str(raised.value)
    assert "\n" not in message
    assert message.endswith(
        "the state it holds is inconsistent: USDT: all accounts sum to 7, not 0"
    )


def test_venue_run_and_verify_refuse_it_in_one_line(tmp_path: Path) -> None:
    from venue.cli import run_cli

    _, data_dir = _corrupt_snapshot(tmp_path)
    args = ["--config", str(Path("config/venue.toml").resolve()), "--data-dir", str(data_dir)]
    for command in ("verify", "run"):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = run_cli([command, *args, "--admin-port", "0"] if command == "run" else
                           [command, *args])  # fmt: skip
        assert code == 2, err.getvalue()
        assert err.getvalue().count("\n") == 1, err.getvalue()
        assert "the state it holds is inconsistent" in err.getvalue()


def test_verify_reports_findings_in_the_recovered_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state that only goes wrong in the replay (no snapshot to check at recovery) is still
    found by ``venue verify``: a risk stage that reports a finding stands in for the bug."""
    import venue.runtime
    from venue.cli import run_cli

    make_core = venue.runtime.make_core

    class Broken:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def check_invariants(self, open_orders: list[Order]) -> list[str]:
            return [*self.inner.check_invariants(open_orders), "a planted finding"]

    def broken_core(config: Any) -> Core:
        core = make_core(config)
        return Core(config.instruments, risk=Broken(core.risk))  # type: ignore[arg-type]

    data_dir = tmp_path / "data"
    (data_dir / "journal").mkdir(parents=True)
    args = ["--config", str(Path("config/venue.toml").resolve()), "--data-dir", str(data_dir)]
    assert run_cli(["verify", *args]) == 0
    assert "invariants: hold" in capsys.readouterr().out
    monkeypatch.setattr(venue.runtime, "make_core", broken_core)
    assert run_cli(["verify", *args]) == 2
    out = capsys.readouterr().out
    assert "invariants: 1 broken\n  a planted finding\n" in out
    assert "result: the recovered state is inconsistent" in out
