"""The detectors in the running venue and over its journal: ``SurveillancePart`` catches up
and follows the live events, ``venue surveil`` replays the journal, and both raise the same
alerts; its ``--from``/``--to`` bounds, parsed and fuzzed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from engine.commands import ConfigureAccount, Deposit, NewOrder, Withdraw
from engine.types import OrdType, Side, StpMode
from surveillance.alerts import AlertType
from surveillance.detect import LatestSink
from surveillance.detect.batch import Bound, BoundError, parse_bound
from surveillance.detect.params import SurveillanceConfig
from venue.cli import run_cli
from venue.config import (
    DEFAULT_CONFIG_PATH,
    AdminConfig,
    ConfigError,
    VenueConfig,
    load_config,
    parse_config,
)
from venue.exits import CliError
from venue.parts import SurveillancePart
from venue.runtime import Venue

SYM = "BTC-USDT"
PRICE = 9_500_000  # 95000.00
USDT = 100_000_000
BTC = 100_000_000


def make_config(data_dir: Path) -> VenueConfig:
    config = load_config(DEFAULT_CONFIG_PATH)
    return dataclasses.replace(
        config,
        data_dir=data_dir,
        admin=AdminConfig("127.0.0.1", 0),
        journal=dataclasses.replace(config.journal, fsync=False),
    )


def order(account: int, side: Side, qty: int, clid: str, price: int = PRICE) -> NewOrder:
    return NewOrder(account, SYM, clid, side, OrdType.LIMIT, qty=qty, price=price)


def flow() -> list[Any]:
    """A self-trading account, two accounts trading back and forth, money in and out."""
    cmds: list[Any] = []
    for account in (1001, 1002, 1003):
        cmds.append(Deposit(account, "USDT", 1_000_000 * USDT, f"fund-{account}"))
        cmds.append(Deposit(account, "BTC", 10 * BTC, f"fund-{account}"))
    cmds.append(ConfigureAccount(1001, 1001, StpMode.NONE))
    for i in range(2):
        cmds.append(order(1001, Side.SELL, 1000, f"s{i}"))
        cmds.append(order(1001, Side.BUY, 1000, f"b{i}"))
    for i in range(3):
        cmds.append(order(1002, Side.SELL, 500, f"x{i}", PRICE + 100))
        cmds.append(order(1003, Side.BUY, 500, f"y{i}", PRICE + 100))
        cmds.append(order(1003, Side.SELL, 500, f"z{i}", PRICE + 100))
        cmds.append(order(1002, Side.BUY, 500, f"w{i}", PRICE + 100))
    cmds.append(Deposit(1004, "USDT", 50_000 * USDT, "in"))
    cmds.append(Withdraw(1004, "USDT", 49_000 * USDT, 1, "out"))
    for i in range(3):
        cmds.append(Deposit(1005, "USDT", (9_500 + i) * USDT, f"under-{i}"))
    return cmds


async def serve(data_dir: Path, cmds: list[Any]) -> tuple[LatestSink, SurveillancePart]:
    config = make_config(data_dir)
    venue = Venue(config)
    await venue.start()
    sink = LatestSink()
    part = SurveillancePart(venue, config, sink)
    await part.start()
    try:
        for cmd in cmds:
            await venue.submit(cmd)
    finally:
        await part.stop()
        await venue.stop()
    return sink, part


def lines(sink: LatestSink) -> list[str]:
    return [json.dumps(a.to_json(), separators=(",", ":")) for a in sink.latest()]


def surveil(
    capsys: pytest.CaptureFixture[str], data_dir: Path, *extra: str
) -> tuple[int, list[str], str]:
    capsys.readouterr()
    code = run_cli(["surveil", "--data-dir", str(data_dir), *extra])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_the_batch_over_the_journal_raises_what_the_live_venue_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    live, _ = asyncio.run(serve(data, flow()))
    types = {a.type for a in live.latest()}
    assert types == {
        AlertType.WASH_TRADE,
        AlertType.AML_IN_OUT,
        AlertType.AML_STRUCTURING,
    }
    kinds = sorted(a.evidence.get("kind", "") for a in live.alerts.values())
    assert kinds == ["", "", "collusion", "self"]
    code, out, err = surveil(capsys, data)
    assert code == 0 and out == lines(live)
    assert "4 alerts" in err
    # a restarted venue catches up from the journal to the same alerts, then follows
    again, part = asyncio.run(serve(data, [order(1001, Side.SELL, 1000, "late")]))
    assert part.caught_up >= len(flow())  # every command of the first run, replayed
    assert part.surveillance is not None
    assert part.surveillance.last_seq == part.caught_up + 1  # and the one sent live
    assert lines(again) == lines(live)


def test_the_range_bounds_the_commands_and_bad_bounds_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    asyncio.run(serve(data, flow()))
    code, out, err = surveil(capsys, data, "--to", "12")  # funding and the first self-trade
    assert code == 0
    [alert] = [json.loads(line) for line in out]
    assert alert["type"] == "WASH_TRADE" and alert["accounts"] == [1001]
    assert alert["lastSeq"] <= 12 and "seq 1 to 12" in err
    code, out, err = surveil(capsys, data, "--from", "2000-01-01", "--to", "2000-01-02T00:00Z")
    assert code == 0 and out == [] and "no command" in err
    now = datetime.now(UTC)
    since = (now - timedelta(hours=1)).isoformat()
    code, out, _ = surveil(
        capsys, data, "--from", since, "--to", (now + timedelta(hours=1)).isoformat()
    )
    assert code == 0 and len(out) == 4
    code, out, err = surveil(capsys, data, "--from", "yesterday")
    assert code == 3 and out == [] and err.startswith("venue: error: surveil: --from/--to:")
    assert err.count("\n") == 1
    code, _, err = surveil(capsys, tmp_path / "missing")
    assert code == 1 and "does not exist" in err


def test_bounds_parse_as_seqs_or_times() -> None:
    assert parse_bound("42") == Bound(42, False)
    assert parse_bound(" 0 ") == Bound(0, False)
    day = 19_675 * 86_400 * 1_000_000_000
    assert parse_bound("2023-11-14") == Bound(day, True)
    assert parse_bound("2023-11-14T00:00:00Z") == Bound(day, True)
    assert parse_bound("2023-11-14T02:00:00+02:00") == Bound(day, True)
    assert parse_bound("2023-11-14T00:00:00.000001") == Bound(day + 1000, True)
    for bad in ("", "-1", "1e3", "now", "2023-13-01", "9" * 20, "1969-12-31", "١٢"):
        with pytest.raises(BoundError):
            parse_bound(bad)


def test_bounds_fuzzed_parse_or_refuse_cleanly() -> None:
    rng = random.Random(20261207)
    alphabet = "0123456789-:T Z+.WZ\x00é"
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        try:
            bound = parse_bound(text)
        except BoundError as exc:
            assert "\n" not in str(exc)
            continue
        assert bound.value >= 0
        if not bound.is_time:
            assert bound.value == int(text)
    for _ in range(1000):  # real times, in the shapes people write, come back exact
        micros = rng.randrange(0, 4_000_000_000 * 1_000_000)
        when = epoch + timedelta(microseconds=micros)
        offset = timedelta(minutes=rng.choice((0, 60, -300, 330)))
        text = when.astimezone(timezone(offset)).isoformat()
        assert parse_bound(text) == Bound(micros * 1000, True), text
        seq = rng.randrange(0, 1 << 63)
        assert parse_bound(str(seq)) == Bound(seq, False)


# -- the [surveillance] section -----------------------------------------------------------------

SHIPPED = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
SECTION = SHIPPED[SHIPPED.index("[surveillance]") :]
BEFORE = SHIPPED[: SHIPPED.index("[surveillance]")]


def with_section(section: str) -> str:
    return BEFORE + section


def refusal(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return caught.value


def test_the_shipped_section_reads_into_minor_units_and_lots() -> None:
    config = parse_config(SHIPPED).surveillance
    assert config.enabled and config.defaults.otr_max_number == 500
    assert config.aml.structuring_limit == {"USDT": 10_000 * USDT, "BTC": BTC // 10, "ETH": 3 * BTC}
    text = SHIPPED.replace('wash_min_qty = "0" ', 'wash_min_qty = "0.5" ', 1)
    changed = parse_config(text).surveillance
    assert changed.params("BTC-USDT").wash_min_qty == 50_000  # lots of 0.00001
    assert changed.params("ETH-USDT").wash_min_qty == 0
    assert parse_config(BEFORE).surveillance == SurveillanceConfig()  # absent: the defaults
    off = parse_config(with_section("[surveillance]\nenabled = false\n")).surveillance
    assert not off.enabled


def test_bad_surveillance_keys_are_refused_naming_the_key() -> None:
    cases = {
        "[surveillance]\nspoof_size_mutliple = 5\n": "surveillance.spoof_size_mutliple",
        "[surveillance]\notr_max_number = 0\n": "surveillance.otr_max_number",
        "[surveillance]\nspoof_depth_pct = 101\n": "surveillance.spoof_depth_pct",
        '[surveillance]\nwash_min_qty = "1"\n': "surveillance.wash_min_qty",
        "[surveillance.instruments.DOGE-USDT]\notr_max_number = 9\n": (
            "surveillance.instruments.DOGE-USDT"
        ),
        '[surveillance.instruments.BTC-USDT]\nwash_min_qty = "0.000001"\n': (
            "surveillance.instruments.BTC-USDT.wash_min_qty"
        ),
        '[surveillance.aml]\nvelocity_limit = { XRP = "1" }\n': (
            "surveillance.aml.velocity_limit.XRP"
        ),
        "[surveillance.aml]\nvelocity_limit = { USDT = 1000 }\n": (
            "surveillance.aml.velocity_limit.USDT"
        ),
        "[surveillance.aml]\nwindow = 60\n": "surveillance.aml.window",
    }
    for section, key in cases.items():
        error = refusal(with_section(section))
        assert error.key == key, (section, error)


def test_the_part_does_nothing_when_turned_off(tmp_path: Path) -> None:
    async def body() -> tuple[SurveillancePart, int]:
        config = make_config(tmp_path / "data")
        config = dataclasses.replace(config, surveillance=SurveillanceConfig(enabled=False))
        venue = Venue(config)
        await venue.start()
        part = SurveillancePart(venue, config)
        await part.start()
        subscribers = len(venue._subscribers)
        for cmd in flow():
            await venue.submit(cmd)
        await part.stop()
        await venue.stop()
        return part, subscribers

    part, subscribers = asyncio.run(body())
    assert part.surveillance is None and part.sink is None and subscribers == 0


def test_the_part_refuses_a_journal_it_cannot_replay(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(serve(data, flow()))

    async def body() -> str:
        config = make_config(data)
        venue = Venue(config)
        await venue.start()
        segment = sorted((data / "journal").iterdir())[0]
        raw = bytearray(segment.read_bytes())
        raw[40] ^= 0xFF  # the venue recovered; the journal it replays is then damaged
        segment.write_bytes(bytes(raw))
        part = SurveillancePart(venue, config)
        try:
            await part.start()
        except CliError as exc:
            return f"{exc.code} {exc}"
        finally:
            await part.stop()
            await venue.stop()
        return "started"

    outcome = asyncio.run(body())
    assert outcome.startswith("2 surveillance cannot replay the journal: journal corrupt")
