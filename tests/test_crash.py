"""Crash safety of a real ``venue run`` process: concurrent clients send orders (some rest, some
trade, some are cancelled), the process is SIGKILLed mid-load, restarted, and every command that
was acknowledged must be in the recovered state with exactly the events it was acknowledged with.
The recovered state hash must equal an independent replay of the journal."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
from staff_auth import admin_headers

from engine.codec import decode
from engine.core import Core
from engine.journal import scan
from engine.recovery import JOURNAL_DIR
from venue.admin import render_event
from venue.config import DEFAULT_CONFIG_PATH, VenueConfig, load_config

# the shipped configuration, matching only (up to its [[assets]]): a journal and runtime test
SHIPPED = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8").split("# Assets:")[0]
SYM = "BTC-USDT"
CLIENTS = 8
LOAD_SECONDS = 3.0


class VenueProcess:
    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "venue.cli",
                "run",
                "--config",
                str(config),
                "--admin-port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        stream = self.proc.stdout
        threading.Thread(target=lambda: [self.lines.put(x) for x in stream], daemon=True).start()

    def url(self, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                assert self.proc.poll() is None, self.stderr()
                continue
            match = re.search(r"admin API on (http://[0-9.]+:\d+)", line)
            if match:
                return match.group(1)
        raise AssertionError("the venue did not start in time")

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read() if self.proc.poll() is not None else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def write_config(tmp_path: Path) -> tuple[Path, VenueConfig]:
    text = SHIPPED.replace('data_dir = "data"', f'data_dir = "{tmp_path / "data"}"')
    text = text.replace("snapshot_every = 100000", "snapshot_every = 250")
    path = tmp_path / "venue.toml"
    path.write_text(text, encoding="utf-8")
    return path, load_config(path)


async def client(
    http: aiohttp.ClientSession, account: int, acked: list[dict[str, Any]], stop: asyncio.Event
) -> None:
    """Orders around 95000.00: about half rest, the rest cross; some resting ones are cancelled."""
    rng = random.Random(account)
    mine: list[int] = []
    n = 0
    while not stop.is_set():
        n += 1
        if mine and rng.random() < 0.15:
            method = "DELETE"
            body: dict[str, Any] = {"account": account, "symbol": SYM, "orderId": mine.pop(0)}
        else:
            method = "POST"
            side = rng.choice(["BUY", "SELL"])
            offset = rng.randint(-40, 8) * 100  # ticks of 0.01: -40.00 .. +8.00 through the mid
            price = 9_500_000 + (offset if side == "BUY" else -offset)
            body = {
                "account": account,
                "symbol": SYM,
                "side": side,
                "type": "LIMIT",
                "quantity": f"0.{rng.randint(1, 99):02d}000",
                "price": f"{price // 100}.{price % 100:02d}",
                "clientOrderId": f"c{account}-{n}",
            }
        try:
            async with http.request(method, "/v1/orders", json=body) as response:
                if response.status != 200:
                    raise AssertionError(f"{response.status}: {await response.text()}")
                data = await response.json()
        except (TimeoutError, aiohttp.ClientError, ConnectionError):
            return  # the venue was killed: this request's outcome is unknown
        acked.append(data)
        for event in data["events"]:
            if event["type"] == "OrderAccepted":
                mine.append(event["orderId"])


async def load_then_kill(url: str, pid: int, headers: dict[str, str]) -> list[dict[str, Any]]:
    acked: list[dict[str, Any]] = []
    stop = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(url, timeout=timeout, headers=headers) as http:
        tasks = [asyncio.create_task(client(http, a, acked, stop)) for a in range(1, CLIENTS + 1)]
        await asyncio.sleep(LOAD_SECONDS)
        os.kill(pid, signal.SIGKILL)  # mid-load: requests are in flight
        await asyncio.wait(tasks, timeout=10)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return acked


def replay(config: VenueConfig) -> tuple[Core, dict[int, dict[str, Any]]]:
    """An independent replay of the whole journal (no snapshot, no repair): the core and every
    command's ``{"ts", "events"}`` rendered as the admin API renders them."""
    core = Core(
        config.instruments, default_stp=config.default_stp, session_end_s=config.session_end_utc
    )
    specs = {spec.symbol: spec for spec in config.instruments}
    by_seq: dict[int, dict[str, Any]] = {}
    for seq, payload in scan(config.data_dir / JOURNAL_DIR).records:
        cmd = decode(payload)
        events = core.apply(cmd)
        rendered = [render_event(e, specs) for e in events]
        by_seq[seq] = {"ts": cmd.ts, "events": json.loads(json.dumps(rendered))}
    return core, by_seq


def verify_hash(config: Path) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "venue.cli", "verify", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"state hash: ([0-9a-f]+)", result.stdout)
    assert match, result
    return result.returncode, match.group(1)


def test_acknowledged_commands_survive_sigkill(tmp_path: Path) -> None:
    config_path, config = write_config(tmp_path)
    headers = admin_headers(config)  # made before the venue starts: it reads the store then
    first = VenueProcess(config_path)
    try:
        url = first.url()
        acked = asyncio.run(asyncio.wait_for(load_then_kill(url, first.proc.pid, headers), 60))
    finally:
        first.kill()
    assert first.proc.returncode == -signal.SIGKILL
    assert len(acked) > 100, f"only {len(acked)} commands were acknowledged"
    assert any(e["type"] == "Trade" for a in acked for e in a["events"])
    assert any(e["type"] == "OrderCancelled" for a in acked for e in a["events"])
    top = max(a["seq"] for a in acked)

    # the journal as the kill left it: verify (no repair) agrees with an independent replay
    code, hash_after_kill = verify_hash(config_path)
    assert code in (0, 1)  # 1: a torn tail (an unacknowledged batch) would be cut
    core, by_seq = replay(config)
    assert core.state_hash() == hash_after_kill
    assert core.last_seq >= top
    for answer in acked:  # every acknowledged command, with exactly its acknowledged events
        assert by_seq[answer["seq"]] == {"ts": answer["ts"], "events": answer["events"]}

    second = VenueProcess(config_path)
    try:
        url = second.url()

        async def check() -> None:
            async with aiohttp.ClientSession(url, headers=headers) as http:
                async with http.get("/v1/status") as response:
                    status = await response.json()
                assert status["lastSeq"] == core.last_seq >= top
                for account in range(1, CLIENTS + 1):
                    async with http.get(f"/v1/accounts/{account}/orders") as response:
                        live = {o["orderId"]: o for o in (await response.json())["orders"]}
                    expected = {o.order_id for o in core.open_orders(account)}
                    assert set(live) == expected
                    for answer in acked:  # acked resting orders: there unless since removed
                        for e in answer["events"]:
                            if e["type"] == "OrderAccepted" and e["account"] == account:
                                assert (e["orderId"] in live) == (
                                    core.order(account, e["orderId"]) is not None
                                )

        asyncio.run(asyncio.wait_for(check(), 30))
        second.proc.send_signal(signal.SIGINT)
        assert second.proc.wait(30) == 0, second.stderr()
    finally:
        second.kill()
    # after the clean stop: a snapshot at the last seq, the same state as the full replay
    code, hash_after_stop = verify_hash(config_path)
    assert code == 0 and hash_after_stop == core.state_hash()
