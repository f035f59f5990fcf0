"""The admin port's ``/metrics``, ``/health`` and ``/ready`` on a running venue with its FIX and
REST doors: exact counts of orders and rejects by door and reason after orders sent through both
doors, histograms that count every command, connection gauges that follow connects and
disconnects, rate-limit refusals, and readiness before and after the venue stops. The exposition
is read with prometheus-client's own parser."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from fix_client import FixClient, now
from prometheus_client.parser import text_string_to_metric_families
from rest_client import signed
from venue_doors import config_with_fix, fix_session, serving

from engine.commands import Deposit
from gateway.rest.config import RestConfig
from venue.config import VenueConfig

ME = 1001
SYM = "BTC-USDT"
COIN = 10**8

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _config(data_dir: Path) -> VenueConfig:
    config = config_with_fix(data_dir, fix_session("A", accounts=(ME,)))
    rest = dataclasses.replace(config.rest or RestConfig(), orders_per_10s=2)
    return dataclasses.replace(config, rest=rest)


async def scrape(http: aiohttp.ClientSession) -> Samples:
    """Every sample of ``/metrics``, by name and labels."""
    async with http.get("/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


async def until(
    http: aiohttp.ClientSession, check: Callable[[Samples], bool], what: str
) -> Samples:
    """Scrape until ``check`` holds (a server notices a closed socket on its own time)."""
    for _ in range(200):
        samples = await scrape(http)
        if check(samples):
            return samples
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what}: {samples}")


def _order(cl_ord_id: bytes, qty: bytes, price: bytes) -> list[tuple[int, Any]]:
    return [(11, cl_ord_id), (55, SYM), (54, b"1"), (60, now()), (40, b"2"), (38, qty), (44, price)]


def test_orders_and_rejects_are_counted_by_door_and_reason(tmp_path: Path) -> None:
    async def body() -> None:
        async with serving(_config(tmp_path), rest_accounts=(ME,)) as served:
            await served.venue.submit(Deposit(ME, "USDT", 1_000_000 * COIN, "usdt"))
            before = await scrape(served.http)
            fix = FixClient(served.fix_port, "A")
            try:
                await fix.logon()
                fix.send(b"D", _order(b"ok1", b"0.001", b"90000"))
                fix.send(b"D", _order(b"ok2", b"0.002", b"90000"))
                fix.send(b"D", _order(b"band", b"0.001", b"50000"))  # outside the price band
                fix.send(b"D", _order(b"poor", b"100", b"95000"))  # 9.5 M USDT: not held
                for cl_ord_id, exec_type in (
                    (b"ok1", b"0"),
                    (b"ok2", b"0"),
                    (b"band", b"8"),
                    (b"poor", b"8"),
                ):
                    await fix.expect_type(b"8", _11=cl_ord_id, _150=exec_type)
            finally:
                await fix.close()
            key = served.keys[ME]
            async with aiohttp.ClientSession() as http:
                order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT"}
                order.update(timeInForce="GTC", quantity="0.001")
                url = served.rest_url
                status, answer = await signed(
                    http, url, "POST", "/api/v3/order", key, **order, price="90000"
                )
                assert status == 200, answer
                status, answer = await signed(
                    http, url, "POST", "/api/v3/order", key, **order, price="50000"
                )
                assert status == 400 and answer["code"] == -1013, answer  # the core's band
                # the third order within 10 s: refused by the door's limit, never sequenced
                status, answer = await signed(
                    http, url, "POST", "/api/v3/order", key, **order, price="90000"
                )
                assert status == 429 and answer["code"] == -1015, answer
            after = await scrape(served.http)

        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert delta("venue_orders_total", door="FIX") == 4
        assert delta("venue_orders_total", door="REST") == 2
        assert delta("venue_orders_total", door="ADMIN") == 0
        assert delta("venue_commands_total", door="FIX") == 4
        assert delta("venue_commands_total", door="REST") == 2
        rejects = {
            (dict(labels)["door"], dict(labels)["reason"]): v
            for (name, labels), v in after.items()
            if name == "venue_rejects_total"
        }
        assert rejects == {
            ("FIX", "PRICE_OUTSIDE_BAND"): 1,
            ("FIX", "INSUFFICIENT_BALANCE"): 1,
            ("REST", "PRICE_OUTSIDE_BAND"): 1,
        }
        assert value(after, "venue_rate_limit_refusals_total", limit="ORDERS") == 1
        assert value(after, "venue_rate_limit_refusals_total", limit="REQUEST_WEIGHT") == 0
        # every durable command observed once by each histogram; every batch once by the others
        commands = total(after, "venue_commands_total")
        assert commands >= 7  # the deposit, 4 FIX orders, 2 REST orders
        assert value(after, "venue_command_durable_seconds_count") == commands
        assert value(after, "venue_command_durable_seconds_bucket", le="+Inf") == commands
        assert value(after, "venue_batch_commands_sum") == commands
        batches = value(after, "venue_batch_commands_count")
        assert 1 <= batches <= commands
        assert value(after, "venue_journal_fsync_seconds_count") == batches
        assert value(after, "venue_command_durable_seconds_sum") > 0
        # prometheus-client's own process figures
        assert value(after, "process_resident_memory_bytes") > 0

    asyncio.run(asyncio.wait_for(body(), 60))


def test_connection_gauges_follow_connects_and_disconnects(tmp_path: Path) -> None:
    async def body() -> None:
        async with serving(_config(tmp_path), rest_accounts=(ME,)) as served:
            admin = served.http
            start = await scrape(admin)
            assert value(start, "venue_sessions", door="FIX") == 0
            assert value(start, "venue_connections", door="FIX") == 0
            assert value(start, "venue_connections", door="REST") == 0
            assert value(start, "venue_connections", door="WEBSOCKET") == 0

            fix = FixClient(served.fix_port, "A")
            await fix.connect()
            connected = await until(
                admin, lambda s: value(s, "venue_connections", door="FIX") == 1, "FIX connect"
            )
            assert value(connected, "venue_sessions", door="FIX") == 0  # not logged on yet
            await fix.logon()
            assert value(await scrape(admin), "venue_sessions", door="FIX") == 1
            await fix.close()
            await until(
                admin,
                lambda s: (
                    value(s, "venue_connections", door="FIX") == 0
                    and value(s, "venue_sessions", door="FIX") == 0
                ),
                "FIX disconnect",
            )

            async with aiohttp.ClientSession() as http:
                async with http.get(f"{served.rest_url}/api/v3/ping") as response:
                    assert response.status == 200
                # the client keeps its connection open
                await until(
                    admin, lambda s: value(s, "venue_connections", door="REST") == 1, "REST"
                )
                ws = await http.ws_connect(f"{served.rest_url}/ws/btcusdt@trade")
                samples = await until(
                    admin,
                    lambda s: value(s, "venue_connections", door="WEBSOCKET") == 1,
                    "WebSocket connect",
                )
                assert value(samples, "venue_websocket_connections", endpoint="streams") == 1
                assert value(samples, "venue_websocket_subscriptions", kind="market") == 1
                # the client upgraded its pooled connection: it counts as a WebSocket only
                assert value(samples, "venue_connections", door="REST") == 0
                await ws.close()
                samples = await until(
                    admin,
                    lambda s: value(s, "venue_connections", door="WEBSOCKET") == 0,
                    "WebSocket disconnect",
                )
                assert value(samples, "venue_websocket_subscriptions", kind="market") == 0
            await until(
                admin, lambda s: value(s, "venue_connections", door="REST") == 0, "REST close"
            )

    asyncio.run(asyncio.wait_for(body(), 60))


def test_health_and_readiness_before_and_after_the_venue_stops(tmp_path: Path) -> None:
    async def body() -> None:
        async with serving(_config(tmp_path)) as served:
            http = served.http
            metrics = served.metrics
            assert metrics is not None

            async def get(path: str) -> tuple[int, Any]:
                async with http.get(path) as response:
                    return response.status, await response.json()

            assert await get("/health") == (200, {"status": "ok"})
            assert await get("/ready") == (200, {"status": "ready"})
            assert value(await scrape(http), "venue_ready") == 1

            metrics.all_started = False  # as between the admin API's start and the last door's
            status, answer = await get("/ready")
            assert status == 503 and "starting" in answer["msg"], answer
            metrics.started()

            assert metrics.fix is not None
            await metrics.fix.acceptor.stop()
            status, answer = await get("/ready")
            assert status == 503 and answer["code"] == -1001 and "FIX" in answer["msg"], answer
            assert value(await scrape(http), "venue_ready") == 0

            await served.venue.stop()
            status, answer = await get("/ready")
            assert status == 503 and "not accepting commands" in answer["msg"], answer
            assert await get("/health") == (200, {"status": "ok"})

    asyncio.run(asyncio.wait_for(body(), 60))
