"""The live lag of the market-abuse detectors: a running venue (``venue run`` with
``bench/fix_load.toml``: the journal fsynced before every acknowledgement) under FIX load from
``bench.fix_load``'s generator (sessions LOAD1 to LOAD3, non-crossing limit orders at ``rate``
a second, in a process of its own), while a spoofer on LOAD4 acts out one episode every
``every_s``: a very large bid just behind the load's bids, a small IOC sell into them, the bid
cancelled 50 ms later. The lag of an episode is the moment its alert is readable from the
venue's alert store through the admin API (``GET /v1/surveillance/alerts``, polled every 5 ms)
minus the sequencer's stamp of the cancel that completed the pattern (the alert's ``toTime``);
both clocks are this machine's.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.fix_load import (
    BENCH_CONFIG,
    ID_BLOCK,
    RECV_SIZE,
    Server,
    TargetSpec,
    free_port,
    log_on,
    read_target,
    run_step,
)
from gateway.fix.codec import Value, encode
from gateway.fix.timestamps import format_utc_timestamp

_ADMIN = re.compile(rb"admin API on (http://[0-9.]+:\d+)")


def _load(spec: TargetSpec, server: Server, rate: int, seconds: float, out: Any) -> None:
    step = run_step(spec, server, rate, seconds, 3, 5.0, 50e-6, False, ID_BLOCK)
    out.put(
        {
            "orders": step.orders,
            "acked": step.acked,
            "achieved": step.achieved,
            "ack_p99_ms": round(step.p99_us / 1000, 1),
        }
    )


class Spoofer:
    """LOAD4's session, sending raw FIX and discarding what comes back."""

    def __init__(self, spec: TargetSpec, port: int) -> None:
        self.spec = spec
        self.session = spec.sessions[3]
        self.sock, _ = log_on(spec, self.session, port)
        self.seq = 1

    def send(self, msg_type: bytes, fields: list[tuple[int, Value]]) -> None:
        self.seq += 1
        now = format_utc_timestamp(time.time_ns())
        header: list[tuple[int, Value]] = [
            (35, msg_type),
            (49, self.session.target_comp_id),
            (56, self.spec.sender_comp_id),
            (34, self.seq),
            (52, now),
        ]
        self.sock.setblocking(True)
        self.sock.sendall(encode([*header, *fields, (60, now)]))
        self.drain()

    def drain(self) -> None:
        self.sock.setblocking(False)
        try:
            while self.sock.recv(RECV_SIZE):
                pass
        except (BlockingIOError, OSError):
            return

    def episode(self, n: int) -> None:
        account = str(self.session.account).encode()
        symbol = self.spec.symbol.encode()
        big = f"S{n}B".encode()
        common: list[tuple[int, Value]] = [(1, account), (55, symbol), (40, b"2")]
        # the load's bids rest from 94050.00 down to 94045.01: just behind them, 8,000 BTC
        bid: list[tuple[int, Value]] = [(38, b"8000"), (44, b"94045.00"), (54, b"1"), (59, b"1")]
        self.send(b"D", [(11, big), *common, *bid])
        time.sleep(0.02)
        sell: list[tuple[int, Value]] = [(11, f"S{n}S".encode()), *common, (38, b"0.01")]
        self.send(b"D", [*sell, (44, b"94045.01"), (54, b"2"), (59, b"3")])
        time.sleep(0.05)
        cancel: list[tuple[int, Value]] = [(11, f"S{n}X".encode()), (41, big), (1, account)]
        self.send(b"F", [*cancel, (55, symbol), (54, b"1")])


def _latest(admin: str, token: str, account: int) -> int:
    """The ``toTime`` of the newest SPOOFING alert naming ``account`` (0: none; -1: the admin
    API did not answer within 2 s)."""
    url = f"{admin}/v1/surveillance/alerts?type=SPOOFING&account={account}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            alerts = json.loads(response.read())["alerts"]
    except (OSError, ValueError):
        return -1
    return max((int(a["toTime"]) for a in alerts), default=0)


def live_lag(rate: int = 10_000, seconds: float = 30.0, every_s: float = 0.5) -> dict[str, Any]:
    spec = read_target("venue", BENCH_CONFIG)
    with tempfile.TemporaryDirectory(prefix="bench-surv-live-") as tmp:
        directory = Path(tmp)
        port = free_port()
        token_file = directory / "admin.token"
        command = [sys.executable, "-m", "venue.cli", "run", "--config", str(BENCH_CONFIG)]
        command += ["--data-dir", str(directory / "data"), "--fix-port", str(port)]
        command += ["--admin-port", "0", "--admin-token-file", str(token_file)]
        server = Server(command, port, directory)
        lags: list[float] = []
        missed = 0
        loaded: dict[str, Any] = {}
        try:
            server.wait_listening()
            deadline = time.monotonic() + 30
            admin = None
            while admin is None and time.monotonic() < deadline:
                found = _ADMIN.search(server.log_path.read_bytes())
                admin = found.group(1).decode() if found else None
                time.sleep(0.05)
            assert admin is not None, server.log_tail()
            token = token_file.read_text().strip()
            spoofer = Spoofer(spec, port)
            context = multiprocessing.get_context("fork")
            results = context.Queue()
            load = context.Process(
                target=_load, args=(spec, server, rate, seconds, results), daemon=True
            )
            load.start()
            time.sleep(2.0)  # the load's book builds up
            seen = max(0, _latest(admin, token, spoofer.session.account))
            end = time.monotonic() + seconds - 4.0
            n = 0
            while time.monotonic() < end:
                n += 1
                spoofer.episode(n)
                wait_until = time.monotonic() + 10.0
                while time.monotonic() < wait_until:
                    latest = _latest(admin, token, spoofer.session.account)
                    if latest > seen:
                        lags.append(time.time() * 1000 - latest)
                        seen = latest
                        break
                    time.sleep(0.005)
                else:
                    missed += 1
                spoofer.drain()
                time.sleep(every_s)
            try:
                loaded = results.get(timeout=seconds + 30)
            except Exception:  # the generator failed: its figures are missing
                loaded = {}
            load.join(10)
            if load.is_alive():
                load.terminate()
        finally:
            server.stop()
    lags.sort()

    def pct(p: float) -> float:
        return round(lags[min(len(lags) - 1, int(p * len(lags)))], 1) if lags else float("nan")

    return {
        "rate": rate,
        "load": loaded,
        "episodes": len(lags) + missed,
        "alerted": len(lags),
        "lag_ms_p50": pct(0.5),
        "lag_ms_p99": pct(0.99),
        "lag_ms_max": round(lags[-1], 1) if lags else None,
    }


if __name__ == "__main__":
    print(json.dumps(live_lag()))
