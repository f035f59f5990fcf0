"""WebSocket fan-out benchmark: many market-stream consumers of one symbol while its book changes
at a fixed rate; the delivery lag from each message's event time, the messages delivered, the
venue's memory per connection and the consumers it dropped.

    python -m bench.ws_fanout                   # 1,000 x depth@100ms + 100 x trade, 10 s
    python -m bench.ws_fanout --quick           # 100 + 10 connections, 2 s
    python -m bench.ws_fanout --book-rate 2000 --trade-every 10 --duration 5
    python -m bench.ws_fanout --profile /tmp/ws.prof   # the venue under cProfile

The venue: ``venue run --config bench/rest_load.toml`` as its own process in a temporary data
folder (the configuration and the funding of bench/rest_load.py; its ``[rest]`` raises
``ws_connections_per_5m``, since every consumer connects from 127.0.0.1).

The consumers: one process, one ``epoll`` loop over ``--depth-conns`` raw WebSocket client
sockets on ``/ws/btcusdt@depth@100ms`` and ``--trade-conns`` on ``/ws/btcusdt@trade`` (no
compression offered, so none is used). A minimal frame reader: for each text frame the event
time ``E`` (ms) is read from the payload's first bytes by a regular expression, the lag is the
receipt time (wall clock, the venue's clock too) minus ``E``, so it is in whole milliseconds
and up to 1 ms long (``E`` is truncated). For a depth batch ``E`` is the moment the venue
emitted the batch, for a trade the time its command was sequenced (before the journal's fsync).
Each stream's ids are checked for gaps (depth ``U`` = previous ``u`` + 1, trade ``t`` = previous
+ 1). Pings are answered. A connection the venue closes (close frame or end of stream) is a
dropped consumer.

The book: FIX order entry (``bench.fix_load.run_step``, four sessions, the journal fsynced
before each ack) at ``--book-rate`` orders/s from a second process, forked before the consumers
connect: limit orders that rest (one book change each) and, every ``--trade-every``-th order of
a session, an IOC at the far end of the other side that takes the best resting order (one trade,
one book change). FIX is the venue's cheapest way in (bench/rest_load.py measures REST's
ceiling), which leaves it the most CPU for the fan-out. The orders' own acknowledgement latency
is printed too.

Bounded: the connections are opened within ``--connect-timeout``, the measurement lasts
``--duration`` plus ``--drain`` seconds, and the driver stops on its own after its orders. The
machine has 2 cores: the venue (one event loop, one core at most), the consumers and the driver
share them, and the consumers' own CPU is printed: when the consumers and the driver together
take most of a core, what the venue has left is less than a core, and the lag includes the time
a consumer waited for the CPU. The last line is JSON.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import multiprocessing
import os
import re
import select
import signal
import socket
import tempfile
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench import fix_load
from bench.fix_load import StepResult, busy_cpu_seconds, set_timer_slack
from bench.rest_load import CONFIG, VenueProcess, start_venue

RECV_SIZE = 1 << 18
SYMBOL = "btcusdt"
_E = re.compile(rb'"E":(\d+)')
_DEPTH_IDS = re.compile(rb'"U":(\d+),"u":(\d+)')
_TRADE_ID = re.compile(rb'"t":(\d+)')


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# -- the consumers ----------------------------------------------------------------------------


@dataclass
class Consumer:
    sock: socket.socket
    kind: str  # "depth" or "trade"
    buf: bytes = b""
    last_id: int = -1  # depth: the last u; trade: the last t
    closed: str = ""  # why the venue closed it


def handshake(port: int, stream: str, timeout: float) -> tuple[socket.socket, bytes]:
    """A connected WebSocket on ``/ws/<stream>`` and what followed the 101 answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/{stream} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    received = b""
    while b"\r\n\r\n" not in received:
        data = sock.recv(4096)
        if not data:
            sock.close()
            raise RuntimeError(f"/ws/{stream}: closed during the handshake: {received[:200]!r}")
        received += data
    head, _, rest = received.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        sock.close()
        raise RuntimeError(f"/ws/{stream}: refused: {received[:300]!r}")
    sock.setblocking(False)
    return sock, rest


def connect_all(port: int, depth: int, trade: int, timeout: float) -> tuple[list[Consumer], float]:
    """``depth`` + ``trade`` consumers, interleaved; the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    consumers: list[Consumer] = []
    kinds = ["depth"] * depth + ["trade"] * trade
    for kind in kinds:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(consumers)} connections within {timeout:g} s")
        sock, rest = handshake(
            port, f"{SYMBOL}@depth@100ms" if kind == "depth" else f"{SYMBOL}@trade", timeout
        )
        consumers.append(Consumer(sock, kind, rest))
    return consumers, time.monotonic() - started


@dataclass
class Received:
    """What the consumers got during the measurement."""

    lags_ms: dict[str, array[int]] = field(
        default_factory=lambda: {"depth": array("q"), "trade": array("q")}
    )
    bytes: int = 0
    gaps: dict[str, int] = field(default_factory=lambda: {"depth": 0, "trade": 0})
    closed: dict[str, int] = field(default_factory=dict)  # close code or "eof" -> consumers
    pings: int = 0


def _pong(payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[n % 4] for n, b in enumerate(payload))
    return bytes((0x8A, 0x80 | len(payload))) + mask + masked


def read_frames(consumer: Consumer, now_ms: int, got: Received) -> None:
    """Consume the complete frames in ``consumer.buf``."""
    buf = consumer.buf
    size = len(buf)
    pos = 0
    lags = got.lags_ms[consumer.kind]
    while size - pos >= 2:
        b0, b1 = buf[pos], buf[pos + 1]
        length = b1 & 0x7F
        head = 2
        if length == 126:
            if size - pos < 4:
                break
            length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
            head = 4
        elif length == 127:
            if size - pos < 10:
                break
            length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            head = 10
        start = pos + head
        end = start + length
        if end > size:
            break
        opcode = b0 & 0x0F
        if opcode == 1:
            first = buf[start : start + 96]
            found = _E.search(first)
            if found is not None:
                lags.append(now_ms - int(found.group(1)))
            if consumer.kind == "depth":
                ids = _DEPTH_IDS.search(first)
                if ids is not None:
                    if consumer.last_id >= 0 and int(ids.group(1)) != consumer.last_id + 1:
                        got.gaps["depth"] += 1
                    consumer.last_id = int(ids.group(2))
            else:
                tid = _TRADE_ID.search(first)
                if tid is not None:
                    t = int(tid.group(1))
                    if consumer.last_id >= 0 and t != consumer.last_id + 1:
                        got.gaps["trade"] += 1
                    consumer.last_id = t
        elif opcode == 9:
            consumer.sock.send(_pong(buf[start:end]))
            got.pings += 1
        elif opcode == 8:
            code = int.from_bytes(buf[start : start + 2], "big") if length >= 2 else 0
            consumer.closed = str(code)
        pos = end
    consumer.buf = buf[pos:]


def consume(
    consumers: list[Consumer], seconds: float, got: Received, reset_at: float | None = None
) -> None:
    """Read every consumer for ``seconds``; a consumer the venue closes leaves the loop."""
    poller = select.epoll()
    by_fd = {}
    for consumer in consumers:
        if not consumer.closed:
            poller.register(consumer.sock.fileno(), select.EPOLLIN)
            by_fd[consumer.sock.fileno()] = consumer
    deadline = time.monotonic() + seconds
    try:
        while by_fd:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd, _ in poller.poll(min(left, 0.05)):
                consumer = by_fd[fd]
                try:
                    data = consumer.sock.recv(RECV_SIZE)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if data:
                    got.bytes += len(data)
                    consumer.buf = consumer.buf + data if consumer.buf else data
                    read_frames(consumer, time.time_ns() // 1_000_000, got)
                if not data or consumer.closed:
                    reason = consumer.closed or "eof"
                    consumer.closed = reason
                    got.closed[reason] = got.closed.get(reason, 0) + 1
                    poller.unregister(fd)
                    del by_fd[fd]
    finally:
        poller.close()


# -- the book driver --------------------------------------------------------------------------


def drive_book(
    server: VenueProcess, rate: int, duration: float, trade_every: int, go: Connection
) -> None:
    """In a forked process: wait for the go, then FIX orders at ``rate``; the step's result
    goes back through ``go``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spec = fix_load.read_target("venue", CONFIG)
    try:
        if not go.poll(300):
            return
        go.recv()
        step = fix_load.run_step(
            spec,
            server.on("fix"),
            rate,
            duration,
            min(4, len(spec.sessions)),
            3.0,
            0.0,  # no spinning: the cores are shared with the venue and the consumers
            False,
            fix_load.ID_BLOCK,
            trade_every,
        )
        go.send(step)
    except Exception as exc:  # reported by the parent
        go.send(f"{type(exc).__name__}: {exc}")


# -- one run ----------------------------------------------------------------------------------


def percentile_ms(values: array[int], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(len(ordered) * p))])


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-ws-", dir=args.dir) as tmp:
        profile = args.profile.resolve() if args.profile is not None else None
        server, _ = start_venue(Path(tmp), 1, profile)
        ctx = multiprocessing.get_context("fork")
        parent_end, child_end = ctx.Pipe()
        driver = ctx.Process(
            target=drive_book,
            args=(server, args.book_rate, args.duration, args.trade_every, child_end),
            daemon=True,
        )
        driver.start()
        consumers: list[Consumer] = []
        try:
            time.sleep(0.5)
            rss_before = rss_bytes(server.process.pid)
            consumers, connect_s = connect_all(
                server.port, args.depth_conns, args.trade_conns, args.connect_timeout
            )
            got = Received()
            consume(consumers, 1.0, got)  # settle: the first batches, the connections' buffers
            rss_after = rss_bytes(server.process.pid)
            got = Received()
            gc.collect()
            gc.disable()
            cpu0 = time.process_time()
            venue_cpu0 = server.cpu_seconds()
            busy0 = busy_cpu_seconds()
            t0 = time.monotonic()
            parent_end.send("go")
            consume(consumers, args.duration, got)
            measured_s = time.monotonic() - t0
            received_in_window = {k: len(v) for k, v in got.lags_ms.items()}
            bytes_in_window = got.bytes
            cpu = time.process_time() - cpu0
            venue_cpu = server.cpu_seconds() - venue_cpu0
            busy = busy_cpu_seconds() - busy0
            consume(consumers, args.drain, got)
            gc.enable()
            step: StepResult | str = "the driver sent nothing"
            if parent_end.poll(args.drain + 10):
                step = parent_end.recv()
        finally:
            for consumer in consumers:
                consumer.sock.close()
            driver.join(5)
            if driver.is_alive():
                driver.kill()
            code = server.stop()
            if code not in (0, None, -signal.SIGTERM):
                print(f"the venue exited with {code}:\n{server.log_tail()}")
    load_after = os.getloadavg()
    n_conn = args.depth_conns + args.trade_conns
    streams = {}
    for kind, conns in (("depth", args.depth_conns), ("trade", args.trade_conns)):
        lags = got.lags_ms[kind]
        streams[kind] = {
            "connections": conns,
            "messages": len(lags),
            "per_s": round(received_in_window[kind] / measured_s),
            "lag_p50_ms": percentile_ms(lags, 0.50),
            "lag_p99_ms": percentile_ms(lags, 0.99),
            "lag_max_ms": float(max(lags)) if lags else float("nan"),
            "gaps": got.gaps[kind],
            "dropped": sum(1 for c in consumers if c.kind == kind and c.closed),
        }
    gen_cpu = 100 * cpu / measured_s
    venue_pct = 100 * venue_cpu / measured_s
    book: dict[str, Any]
    if isinstance(step, StepResult):
        book = {
            "offered": step.offered,
            "orders": step.orders,
            "acked": step.acked,
            "achieved": step.achieved,
            "ack_p50_ms": round(step.p50_us / 1000, 2),
            "ack_p99_ms": None if step.p99_us == float("inf") else round(step.p99_us / 1000, 2),
            "trades": step.counts.get("exec_trade", 0) // 2,  # the taker's and the maker's
            "cpu": step.generator_cpu,
        }
    else:
        book = {"error": step}
    return {
        "depth_conns": args.depth_conns,
        "trade_conns": args.trade_conns,
        "duration_s": round(measured_s, 2),
        "connect_s": round(connect_s, 2),
        "streams": streams,
        "delivered_per_s": round(sum(received_in_window.values()) / measured_s),
        "mbytes_per_s": round(bytes_in_window / measured_s / 1e6, 1),
        "closed_by_venue": got.closed,
        "venue_rss_before_mb": round(rss_before / 1e6, 1),
        "venue_rss_after_mb": round(rss_after / 1e6, 1),
        "rss_per_connection_kb": round((rss_after - rss_before) / n_conn / 1024, 1),
        "venue_cpu": round(venue_pct, 1),
        "consumers_cpu": round(gen_cpu, 1),
        "others_cpu": round(max(0.0, 100 * busy / measured_s - venue_pct - gen_cpu), 1),
        "book_driver": book,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
    }


def fmt(value: float) -> str:
    return "-" if value != value else f"{value:,.0f}"


def report(result: dict[str, Any]) -> None:
    d = result["book_driver"]
    print(
        f"{'stream':<21}{'conns':>7}{'messages':>10}{'msgs/s':>9}{'lag p50 ms':>12}"
        f"{'lag p99 ms':>12}{'lag max ms':>12}{'gaps':>6}{'dropped':>9}"
    )
    for kind, s in result["streams"].items():
        name = f"{SYMBOL}@depth@100ms" if kind == "depth" else f"{SYMBOL}@trade"
        print(
            f"{name:<21}{s['connections']:>7,}{s['messages']:>10,}{s['per_s']:>9,}"
            f"{fmt(s['lag_p50_ms']):>12}{fmt(s['lag_p99_ms']):>12}{fmt(s['lag_max_ms']):>12}"
            f"{s['gaps']:>6,}{s['dropped']:>9,}"
        )
    print(
        f"delivered {result['delivered_per_s']:,} messages/s ({result['mbytes_per_s']} MB/s) over "
        f"{result['duration_s']} s; closed by the venue: {result['closed_by_venue'] or 'none'}"
    )
    print(
        f"venue RSS {result['venue_rss_before_mb']} MB before connecting, "
        f"{result['venue_rss_after_mb']} MB after: {result['rss_per_connection_kb']} KiB per "
        f"connection ({result['connect_s']} s to connect)"
    )
    if "error" in d:
        print(f"book driver: {d['error']}")
    else:
        print(
            f"book driver (FIX): offered {d['offered']:,} orders/s, achieved {d['achieved']:,}, "
            f"{d['acked']:,} of {d['orders']:,} acked, {d['trades']:,} trades; ack p50 "
            f"{d['ack_p50_ms']} ms, p99 {d['ack_p99_ms']} ms"
        )
    print(
        f"CPU (percent of one core): venue {result['venue_cpu']:.0f}%, consumers "
        f"{result['consumers_cpu']:.0f}%, book driver {d.get('cpu', 0):.0f}%, others "
        f"{result['others_cpu']:.0f}%; load average before "
        f"{' '.join(f'{v:.2f}' for v in result['load_average_before'])}, after "
        f"{' '.join(f'{v:.2f}' for v in result['load_average_after'])}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--depth-conns", type=int, default=None, help="depth@100ms consumers (1000)")
    ap.add_argument("--trade-conns", type=int, default=None, help="trade consumers (100)")
    ap.add_argument("--book-rate", type=int, default=None, help="book changes (orders)/s (5000)")
    ap.add_argument(
        "--trade-every", type=int, default=10, help="every N-th order trades (10: 500/s)"
    )
    ap.add_argument("--duration", type=float, default=None, help="seconds measured (10)")
    ap.add_argument("--drain", type=float, default=2.0, help="seconds read after (2)")
    ap.add_argument("--connect-timeout", type=float, default=60.0, help="(60)")
    ap.add_argument("--quick", action="store_true", help="100 + 10 consumers, 2 s, 1,000/s")
    ap.add_argument("--dir", type=Path, default=None, help="where the venue keeps its files")
    ap.add_argument("--profile", type=Path, default=None, metavar="FILE", help="cProfile stats")
    args = ap.parse_args(argv)
    if args.depth_conns is None:
        args.depth_conns = 100 if args.quick else 1000
    if args.trade_conns is None:
        args.trade_conns = 10 if args.quick else 100
    if args.book_rate is None:
        args.book_rate = 1000 if args.quick else 5000
    if args.duration is None:
        args.duration = 2.0 if args.quick else 10.0
    if min(args.depth_conns, args.trade_conns) < 0 or args.book_rate < 1:
        ap.error("counts must be positive")
    if args.duration <= 0 or args.duration > 60 or args.trade_every < 2:
        ap.error("--duration in (0, 60], --trade-every >= 2")
    set_timer_slack()
    print(
        f"WebSocket fan-out: {args.depth_conns:,} x {SYMBOL}@depth@100ms + "
        f"{args.trade_conns:,} x {SYMBOL}@trade; the book at {args.book_rate:,} orders/s over "
        f"FIX, every {args.trade_every}th trading ({args.book_rate // args.trade_every:,} "
        f"trades/s); {args.duration:g} s",
        flush=True,
    )
    result = run(args)
    report(result)
    if args.profile is not None:
        from bench.rest_load import print_profile

        print_profile(args.profile.resolve())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
