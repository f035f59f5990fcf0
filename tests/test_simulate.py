"""``venue simulate`` against a real venue in process: its makers quote over FIX, its traders
trade over REST, its abusive agents act out their patterns, and the venue answers them all."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from staff_auth import admin_token
from venue_doors import serving

from engine.events import OrderCancelled, Trade
from venue.config import DEFAULT_CONFIG_PATH, load_config
from venue.simulate import Simulation, SimulationSettings, parse_abuses


def test_simulated_flow_goes_through_every_door(tmp_path: Path) -> None:
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.fix is not None
    config = dataclasses.replace(
        config,
        data_dir=tmp_path / "data",
        ledger=None,
        fix=dataclasses.replace(config.fix, port=0),
    )
    lines: list[str] = []

    async def body() -> None:
        async with serving(config, rest_accounts=(1,)) as doors:
            seen: list[object] = []
            doors.venue.subscribe(lambda seq, ts, events: seen.extend(events))
            settings = SimulationSettings(
                seconds=3,
                rate=40,
                seed=7,
                traders=3,
                passive=1,
                abuses=frozenset({"spoofing", "wash"}),
            )
            simulation = Simulation(
                config,
                settings,
                admin_url=str(doors.http._base_url),
                token=admin_token(config),
                rest_url=doors.rest_url,
                fix_port=doors.fix_port,
                out=lines.append,
            )
            tally = await simulation.run()
            assert tally.acked["maker"] > 10 and tally.acked["trader"] > 20, tally
            assert tally.fills["trader"] > 0, tally
            assert sum(tally.refused.values()) <= 2, tally.errors
            assert tally.acked["spoofing"] + tally.acked["wash"] > 0, tally
            trades = [e for e in seen if isinstance(e, Trade)]
            cancels = [e for e in seen if isinstance(e, OrderCancelled)]
            assert len(trades) >= tally.fills["trader"] // 2 and cancels
            book = doors.venue.core.markets["BTC-USDT"]
            assert book.bids.depth(1) == [] and book.asks.depth(1) == []  # makers cancelled
            # the same seed makes the same decisions: the fair price's path
            again = Simulation(config, settings, admin_url="", token="", rest_url="", fix_port=None)
            first = [simulation_price(again) for _ in range(5)]
            replay = Simulation(
                config, settings, admin_url="", token="", rest_url="", fix_port=None
            )
            assert first == [simulation_price(replay) for _ in range(5)]

    asyncio.run(asyncio.wait_for(body(), 60))
    assert lines[0].startswith("simulate: BTC-USDT for 3 s from seed 7: 2 makers over FIX")
    # its makers traded on FIX sessions of their own, made through the admin API
    assert (tmp_path / "data" / "fix" / "sessions.log").read_text().count('"SIM7M') == 2
    assert lines[-1].startswith('{"simulate": ')


def simulation_price(sim: Simulation) -> int:
    return sim.rng.randrange(1_000_000)


def test_bad_arguments_are_refused() -> None:
    config = load_config(DEFAULT_CONFIG_PATH)
    with pytest.raises(ValueError, match="unknown abuse 'pump'"):
        parse_abuses("spoofing,pump")
    assert parse_abuses(" wash , in_out ,") == {"wash", "in_out"}
    with pytest.raises(ValueError, match="no instrument"):
        Simulation(
            config,
            SimulationSettings(symbol="DOGE-USDT"),
            admin_url="",
            token="",
            rest_url="",
            fix_port=None,
        )
