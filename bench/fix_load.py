"""FIX load benchmark: NewOrderSingles at a fixed offered rate over several FIX sessions, the
order-to-ack latency from each order's intended send time, and the highest rate sustained.

    python -m bench.fix_load --target both             # the venue, then the QuickFIX baseline
    python -m bench.fix_load --target venue --quick    # a smoke run of a few seconds
    python -m bench.fix_load --target quickfix --rates 10000,20000,40000 --duration 5
    python -m bench.fix_load --target echo             # the conformance profile's echo
    python -m bench.fix_load --target null             # the generator's own ceiling

Targets, each started as its own process on a free port and stopped at the end:

- ``venue``: ``venue run --config bench/fix_load.toml`` in a temporary data folder: the venue's
  FIX acceptor with the order-entry application, matching only, the journal fsynced before
  every acknowledgement; sessions LOAD1..LOAD4 (SenderCompID VENUE), one account each.
- ``quickfix``: ``bench/quickfix_acceptor.py``, QuickFIX C++ 1.16 acking every order from a
  Python callback, with a FileStore that does not fsync (see that module).
- ``echo``: ``venue run --config config/conformance.toml``: the venue's session layer with the
  echo application (each NewOrderSingle comes back as a NewOrderSingle); sessions TW44 and TW
  (SenderCompID ISLD), so at most two connections.
- ``null``: a sink in this module (``--serve-null``) that answers each order with a canned
  report and validates nothing: what the generator itself can drive.

The generator is one process with one ``select`` loop over all connections. Before each step it
encodes every order of the step (MsgSeqNum, ClOrdID, SendingTime and TransactTime filled in;
SendingTime is the encoding time, within the acceptors' 120 s), logs every session on (35=A,
98=0, 108=30, 141=Y) and then releases order ``i`` at ``t0 + i / rate``: each loop turn writes
what has come due on each connection (orders go round-robin over the connections, so a burst is
whatever fell due during the turn) and waits for acks until the next order is due. The last
``--spin-us`` before it are polled rather than slept, since a timed wait overshoots by 40 to
100 us on this machine; the generator then keeps one core busy. The ack of an order is the first
message that carries its ClOrdID (11): the first ExecutionReport from the venue and QuickFIX,
the echoed order from the echo. Latency runs from the order's intended send time to the moment
the ack was read, so a stalled acceptor or a full socket is charged in full (no coordinated
omission); an order not acked by the end of the drain (``--drain``) is lost and counts as
infinitely late. Acks are found by a regular expression on the raw stream, not by parsing each
message, so the generator keeps up with the rates measured (the ``null`` target shows how far).

Limit orders on one instrument, alternating buy and sell on each session; buys below and sells
above the reference price, on 500 levels per side, so none trades and each gets exactly one
ExecutionReport (New); ``--crossing``: all at the reference price, every sell trades against a
resting buy (``bench/fix_load.toml`` disables self-trade prevention).

The rates are stepped up (``--rates``) until one is not sustained: fewer than 95 % of the offered
rate acked, an order lost, or p99 above ``--max-p99-ms``. Every step stops by itself: at most
``duration + drain`` seconds after its first order. Printed: per target and step the offered and
achieved rates, p50, p99, p99.9 and max latency, the CPU of the acceptor process and of the
generator and of everything else on the machine (percent of one core over the step: the
figures are only as good as the machine is quiet), the highest rate sustained per target and,
with ``--target both``, the ratio venue / QuickFIX. The last line is JSON. ``--profile FILE``
runs the acceptor under cProfile (useful for the venue; QuickFIX calls its Python application
from its own thread, which cProfile does not see).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from gateway.fix.codec import encode, frame
from gateway.fix.timestamps import format_utc_timestamp

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_CONFIG = REPO_ROOT / "bench" / "fix_load.toml"
CONFORMANCE_CONFIG = REPO_ROOT / "config" / "conformance.toml"

DEFAULT_RATES = (10_000, 25_000, 50_000, 100_000, 150_000, 200_000, 300_000)
QUICK_RATES = (5_000, 20_000)
SUSTAINED_FRACTION = 0.95
ID_BLOCK = 100_000_000  # ClOrdIDs of one step: a block of this many
REFINE_ROUNDING = 500  # orders/s
BUSY_WARNING = 20.0  # percent of one core in use by others before a target starts
HEARTBEAT_S = 30
PRICE_LEVELS = 500
ORDER_QTY = b"0.01"
RECV_SIZE = 1 << 16
START_TIMEOUT_S = 60.0
LOGON_TIMEOUT_S = 10.0
LOGOUT_TIMEOUT_S = 2.0

#: A NewOrderSingle's body: the constants go in per session (49, 56, 52, 1, 38, 55, 60), which
#: leaves the slots of each order: MsgSeqNum, ClOrdID, Price, Side.
_ORDER_TEMPLATE = (
    b"35=D\x0149=%b\x0156=%b\x0134=%%d\x0152=%b\x011=%b\x0111=%%d\x0138=%b\x0140=2"
    b"\x0144=%%b\x0154=%%b\x0155=%b\x0159=1\x0160=%b\x01"
)

#: A ClOrdID in any message: the digits after SOH 11=. What is searched ends with an SOH (the
#: rest waits for the next read), so every match is a complete value.
_CL_ORD_ID = re.compile(rb"\x0111=(\d+)")
#: What the acks were, counted on the raw stream.
_COUNTED: dict[str, bytes] = {
    "execution_reports": b"\x0135=8\x01",
    "exec_new": b"\x01150=0\x01",
    "exec_trade": b"\x01150=F\x01",
    "exec_rejected": b"\x01150=8\x01",
    "echoed_orders": b"\x0135=D\x01",
    "session_rejects": b"\x0135=3\x01",
    "business_rejects": b"\x0135=j\x01",
    "logouts": b"\x0135=5\x01",
}


# -- targets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionSpec:
    target_comp_id: str  # ours, as the client: the acceptor's TargetCompID
    account: int


@dataclass(frozen=True)
class TargetSpec:
    name: str
    sender_comp_id: str  # the acceptor's
    sessions: tuple[SessionSpec, ...]
    symbol: str
    tick_size: str
    reference_price: str


def read_target(name: str, path: Path) -> TargetSpec:
    """The acceptor's SenderCompID, its order-entry sessions and the first instrument, as the
    venue configuration at ``path`` has them."""
    with path.open("rb") as handle:
        doc = tomllib.load(handle)
    fix = doc["fix"]
    sessions = tuple(
        SessionSpec(s["target_comp_id"], int((s.get("accounts") or [1000 + n])[0]))
        for n, s in enumerate(fix["sessions"], start=1)
        if s.get("type", "order_entry") == "order_entry"
    )
    instrument = doc["instruments"][0]
    return TargetSpec(
        name=name,
        sender_comp_id=fix["sender_comp_id"],
        sessions=sessions,
        symbol=instrument["symbol"],
        tick_size=instrument["tick_size"],
        reference_price=instrument["reference_price"],
    )


class Server:
    """An acceptor process on ``port``; its output goes to a log file in ``directory``."""

    def __init__(self, command: list[str], port: int, directory: Path) -> None:
        self.port = port
        self.log_path = directory / "server.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the acceptor exited at start:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    tail = self.log_tail()
                    raise RuntimeError(f"nothing listens on {self.port}:\n{tail}") from None
                time.sleep(0.05)

    def settle(self, timeout_s: float = 15.0) -> None:
        """Wait until the process is nearly idle (below 20 % of a core over 200 ms): the
        backlog of an overloaded step must not weigh on the next one."""
        deadline = time.monotonic() + timeout_s
        before = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = self.cpu_seconds()
            if now - before < 0.04:
                return
            before = now

    def cpu_seconds(self) -> float:
        """User and system CPU of the process, every thread included."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 20) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
        return self.process.returncode


def busy_cpu_seconds() -> float:
    """CPU time the whole machine spent busy (every core), from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    spec: TargetSpec,
    directory: Path,
    threaded_quickfix: bool,
    profile: Path | None,
    audit: bool = True,
) -> Server:
    """The target's acceptor, listening; under cProfile (stats to ``profile``) when given;
    ``audit=False``: the venue without its audit chain (to measure what the chain costs)."""
    port = free_port()
    python = [sys.executable]
    if profile is not None:
        python += ["-m", "cProfile", "-o", str(profile)]
    if spec.name in ("venue", "echo"):
        config = BENCH_CONFIG if spec.name == "venue" else CONFORMANCE_CONFIG
        if not audit:
            plain = directory / "no-audit.toml"
            plain.write_text(config.read_text() + "\n[audit]\nenabled = false\n")
            config = plain
        data = directory / "data"
        command = [*python, "-m", "venue.cli", "run", "--config", str(config)]
        command += ["--data-dir", str(data), "--fix-port", str(port), "--admin-port", "0"]
    elif spec.name == "quickfix":
        sessions = ",".join(s.target_comp_id for s in spec.sessions)
        command = [*python, "-m", "bench.quickfix_acceptor", "--port", str(port)]
        command += ["--dir", str(directory / "quickfix"), "--sender", spec.sender_comp_id]
        command += ["--sessions", sessions]
        if threaded_quickfix:
            command.append("--threaded")
    else:
        command = [*python, "-m", "bench.fix_load", "--serve-null", str(port)]
    server = Server(command, port, directory)
    try:
        server.wait_listening()
    except BaseException:
        server.stop()
        raise
    return server


# -- the orders -------------------------------------------------------------------------------


@dataclass
class Stream:
    """One session's orders of a step, encoded back to back, and where each one ends."""

    session: SessionSpec
    data: bytes
    ends: array[int]  # ends[k]: bytes up to and including the k-th order (ends[0] = 0)
    logout: bytes


def encode_step(
    spec: TargetSpec,
    connections: int,
    count: int,
    base_id: int,
    crossing: bool,
    cross_every: int = 0,
) -> list[Stream]:
    """Order ``i`` (ClOrdID ``base_id + i``) goes to connection ``i % connections`` as that
    session's message ``i // connections + 2`` (the Logon is 1). With ``cross_every`` N, every
    N-th order of a session is instead an IOC at the far end of the other side's levels, so
    that it takes the best resting order there (one trade when that side is not empty); the
    sides alternate (bench/ws_fanout.py: book changes with a share of trades)."""
    now = format_utc_timestamp(time.time_ns())
    tick = Decimal(spec.tick_size)
    reference = Decimal(spec.reference_price)
    # Buys 1 % below the reference and sells 1 % above, each over PRICE_LEVELS ticks.
    low = (reference * Decimal("0.99")).quantize(tick, ROUND_DOWN)
    high = (reference * Decimal("1.01")).quantize(tick, ROUND_DOWN)
    buys = [str(low - n * tick).encode() for n in range(PRICE_LEVELS)]
    sells = [str(high + n * tick).encode() for n in range(PRICE_LEVELS)]
    if crossing:
        buys = sells = [str(reference).encode()]
    streams = []
    for c in range(connections):
        session = spec.sessions[c]
        template = _ORDER_TEMPLATE % tuple(
            value.replace(b"%", b"%%")
            for value in (
                session.target_comp_id.encode(),
                spec.sender_comp_id.encode(),
                now,
                b"%d" % session.account,
                ORDER_QTY,
                spec.symbol.encode(),
                now,
            )
        )
        messages = []
        ends = array("q", [0])
        total = 0
        for k, i in enumerate(range(c, count, connections)):
            ioc = cross_every > 0 and k % cross_every == cross_every - 1
            if ioc:
                price, side = (buys[-1], b"2") if (k // cross_every) & 1 else (sells[-1], b"1")
            elif k & 1:
                price, side = sells[(k >> 1) % len(sells)], b"2"
            else:
                price, side = buys[(k >> 1) % len(buys)], b"1"
            body = template % (k + 2, base_id + i, price, side)
            if ioc:
                body = body.replace(b"\x0159=1\x01", b"\x0159=3\x01")
            raw = frame(body)
            messages.append(raw)
            total += len(raw)
            ends.append(total)
        logout = encode(
            [
                (35, b"5"),
                (49, session.target_comp_id),
                (56, spec.sender_comp_id),
                (34, len(messages) + 2),
                (52, format_utc_timestamp(time.time_ns())),
            ]
        )
        streams.append(Stream(session, b"".join(messages), ends, logout))
    return streams


def logon_message(spec: TargetSpec, session: SessionSpec) -> bytes:
    return encode(
        [
            (35, b"A"),
            (49, session.target_comp_id),
            (56, spec.sender_comp_id),
            (34, 1),
            (52, format_utc_timestamp(time.time_ns())),
            (98, 0),
            (108, HEARTBEAT_S),
            (141, b"Y"),
        ]
    )


def log_on(spec: TargetSpec, session: SessionSpec, port: int) -> tuple[socket.socket, bytes]:
    """A logged-on connection and what came after the acceptor's Logon."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=LOGON_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(logon_message(spec, session))
    received = b""
    while b"\x0135=A\x01" not in received:
        try:
            data = sock.recv(RECV_SIZE)
        except TimeoutError:
            data = b""
        if not data or b"\x0135=5\x01" in received + data:
            sock.close()
            shown = (received + data).replace(b"\x01", b"|").decode("latin-1")
            raise RuntimeError(f"{session.target_comp_id}: Logon refused: {shown or 'no answer'}")
        received += data
    # Past the Logon's CheckSum: the first SOH after "10=" that follows 35=A.
    at = received.index(b"\x0135=A\x01")
    end = received.index(b"\x01", received.index(b"\x0110=", at) + 1)
    sock.setblocking(False)
    return sock, received[end:]


def log_out(sock: socket.socket, logout: bytes) -> None:
    """Send the Logout and wait a little for the answer, so that the acceptor has released the
    session before the next step logs on again."""
    with contextlib.suppress(OSError):
        sock.settimeout(LOGOUT_TIMEOUT_S)
        sock.sendall(logout)
        deadline = time.monotonic() + LOGOUT_TIMEOUT_S
        seen = b""
        while time.monotonic() < deadline:
            data = sock.recv(RECV_SIZE)
            if not data:
                return
            seen = seen[-8:] + data
            if b"\x0135=5\x01" in seen:
                return


# -- one step ---------------------------------------------------------------------------------


@dataclass
class StepResult:
    offered: int
    duration_s: float
    orders: int
    acked: int
    achieved: int
    p50_us: float
    p99_us: float
    p999_us: float
    max_us: float
    server_cpu: float  # percent of one core over the step
    generator_cpu: float
    other_cpu: float  # the rest of the machine: other processes, the kernel's softirqs
    release_lag_max_us: float  # how late the generator released a burst, at worst
    unsent: int  # orders the generator could not write (the acceptor stopped reading)
    counts: dict[str, int] = field(default_factory=dict)
    sustained: bool = False

    def row(self) -> dict[str, Any]:
        """For JSON: a latency of an order never acked is null."""
        return {k: None if v == float("inf") else v for k, v in self.__dict__.items()}


def percentile(latencies: list[float], total: int, p: float) -> float:
    """The ``p`` quantile over ``total`` orders of which ``latencies`` (sorted) were acked; the
    rest count as infinitely late."""
    if total == 0:
        return 0.0
    index = min(total - 1, int(total * p))
    return latencies[index] if index < len(latencies) else float("inf")


def set_timer_slack() -> None:
    """1 ns timer slack (Linux): sub-millisecond waits wake on time, not 50 us late."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK


def run_step(
    spec: TargetSpec,
    server: Server,
    rate: int,
    duration: float,
    connections: int,
    drain: float,
    spin_s: float,
    crossing: bool,
    base_id: int,
    cross_every: int = 0,
) -> StepResult:
    count = max(1, int(rate * duration))
    streams = encode_step(spec, connections, count, base_id, crossing, cross_every)
    socks: list[socket.socket] = []
    tails: list[bytes] = []
    try:
        for stream in streams:
            sock, rest = log_on(spec, stream.session, server.port)
            socks.append(sock)
            tails.append(b"\x01" + rest)
        return _drive(streams, socks, tails, server, rate, count, drain, spin_s, base_id)
    finally:
        for sock in socks:
            sock.close()


def _drive(
    streams: list[Stream],
    socks: list[socket.socket],
    tails: list[bytes],
    server: Server,
    rate: int,
    count: int,
    drain: float,
    spin_s: float,
    base_id: int,
) -> StepResult:
    n_conn = len(streams)
    views = [memoryview(s.data) for s in streams]
    ends = [s.ends for s in streams]
    written = [0] * n_conn
    index_of = {sock.fileno(): c for c, sock in enumerate(socks)}
    acks = array("q", bytes(8 * count))
    acked = 0
    counts = dict.fromkeys(_COUNTED, 0)
    find_ids = _CL_ORD_ID.findall
    clock = time.perf_counter_ns
    ns_per_order = 1_000_000_000 / rate
    released = 0
    release_lag_max = 0
    spin_ns = int(spin_s * 1e9)

    gc.collect()
    gc.disable()
    cpu0 = time.process_time()
    server_cpu0 = server.cpu_seconds()
    busy0 = busy_cpu_seconds()
    t0 = clock() + 2_000_000  # the first order is due 2 ms from now
    deadline = t0 + int(count * ns_per_order) + int(drain * 1e9)
    try:
        while True:
            now = clock()
            if released < count and now >= t0:
                due = min(count, (now - t0) * rate // 1_000_000_000 + 1)
                if due > released:
                    lag = now - (t0 + int(released * ns_per_order))
                    release_lag_max = max(release_lag_max, lag)
                    released = due
            pending = []
            for c in range(n_conn):
                k_due = (released - c + n_conn - 1) // n_conn
                target = ends[c][k_due]
                if written[c] < target:
                    try:
                        sent = socks[c].send(views[c][written[c] : target])
                    except BlockingIOError:
                        sent = 0
                    written[c] += sent
                    if written[c] < target:
                        pending.append(socks[c])
            if acked >= count or now >= deadline:
                break
            if released < count:
                # Sleep until the spin window before the next order, then poll: a timed wait
                # here overshoots by 40 to 100 us.
                wait = t0 + int(released * ns_per_order) - clock() - spin_ns
                timeout = max(wait, 0) / 1e9
            else:
                timeout = min(0.01, (deadline - now) / 1e9)
            readable, _, _ = select.select(socks, pending, [], timeout)
            for sock in readable:
                try:
                    data = sock.recv(RECV_SIZE)
                except BlockingIOError:
                    continue
                received_at = clock()
                c = index_of[sock.fileno()]
                if not data:
                    raise RuntimeError(f"{streams[c].session.target_comp_id}: disconnected")
                buf = tails[c] + data
                # Up to and including the last SOH; that SOH also starts the rest, since every
                # pattern searched for starts and ends with one.
                cut = buf.rfind(b"\x01")
                whole, tails[c] = buf[: cut + 1], buf[cut:]
                for name, pattern in _COUNTED.items():
                    counts[name] += whole.count(pattern)
                for raw_id in find_ids(whole):
                    i = int(raw_id) - base_id
                    if 0 <= i < count and not acks[i]:
                        acks[i] = received_at
                        acked += 1
    finally:
        elapsed = (clock() - t0) / 1e9
        cpu = time.process_time() - cpu0
        server_cpu = server.cpu_seconds() - server_cpu0
        other_cpu = busy_cpu_seconds() - busy0 - server_cpu - cpu
        gc.enable()

    unsent = sum(len(e) - bisect_right(e, w) for e, w in zip(ends, written, strict=True))
    if acked == count:  # else the acceptor is behind: the connections are just closed
        for c in range(n_conn):
            log_out(socks[c], streams[c].logout)
    latencies = sorted((acks[i] - t0 - i * ns_per_order) / 1_000 for i in range(count) if acks[i])
    last_ack = max(acks) if acked else t0
    achieved = acked / max((last_ack - t0) / 1e9, 1e-9) if acked else 0.0
    return StepResult(
        offered=rate,
        duration_s=round(count / rate, 3),
        orders=count,
        acked=acked,
        achieved=round(achieved),
        p50_us=round(percentile(latencies, count, 0.50), 1),
        p99_us=round(percentile(latencies, count, 0.99), 1),
        p999_us=round(percentile(latencies, count, 0.999), 1),
        max_us=round(latencies[-1], 1) if acked == count else float("inf"),
        server_cpu=round(100 * server_cpu / elapsed, 1),
        generator_cpu=round(100 * cpu / elapsed, 1),
        other_cpu=round(max(0.0, 100 * other_cpu / elapsed), 1),
        release_lag_max_us=round(release_lag_max / 1_000, 1),
        unsent=unsent,
        counts=counts,
    )


# -- the steps of one target ------------------------------------------------------------------


@dataclass
class TargetResult:
    name: str
    connections: int
    steps: list[StepResult]
    max_sustained: int
    peak_achieved: int
    machine_load: float  # percent of one core busy before the start
    note: str = ""


def fmt_us(value: float) -> str:
    if value == float("inf"):
        return "lost"
    if value >= 100_000:
        return f"{value / 1_000:,.0f} ms"
    return f"{value:,.0f}"


HEADER = (
    f"{'target':<9}{'offered/s':>10}{'achieved/s':>11}{'p50 us':>10}{'p99 us':>10}"
    f"{'p99.9 us':>10}{'max us':>10}{'srv cpu':>8}{'gen cpu':>8}{'others':>7}  sustained"
)


def print_row(name: str, step: StepResult) -> None:
    print(
        f"{name:<9}{step.offered:>10,}{step.achieved:>11,}{fmt_us(step.p50_us):>10}"
        f"{fmt_us(step.p99_us):>10}{fmt_us(step.p999_us):>10}{fmt_us(step.max_us):>10}"
        f"{step.server_cpu:>7.0f}%{step.generator_cpu:>7.0f}%{step.other_cpu:>6.0f}%  "
        f"{'yes' if step.sustained else 'NO'}"
        + (f" ({step.orders - step.acked:,} not acked)" if step.acked < step.orders else ""),
        flush=True,
    )


def machine_load(sample_s: float = 0.5) -> float:
    """Percent of one core the machine spends busy over ``sample_s`` (before a target starts:
    other processes)."""
    busy0 = busy_cpu_seconds()
    time.sleep(sample_s)
    return 100 * (busy_cpu_seconds() - busy0) / sample_s


def run_target(name: str, args: argparse.Namespace) -> TargetResult:
    spec = read_target(name, CONFORMANCE_CONFIG if name == "echo" else BENCH_CONFIG)
    connections = min(args.connections, len(spec.sessions))
    load = machine_load()
    if load > BUSY_WARNING:
        print(
            f"{name}: warning: the machine is busy ({load:.0f}% of a core in use before the "
            "start): the figures will be low and noisy",
            flush=True,
        )
    with tempfile.TemporaryDirectory(prefix=f"bench-fix-{name}-", dir=args.dir) as tmp:
        profile = None
        if args.profile is not None:
            profile = args.profile.with_name(f"{args.profile.name}.{name}").resolve()
        server = start_server(spec, Path(tmp), args.quickfix_threaded, profile, not args.no_audit)
        steps: list[StepResult] = []
        note = ""
        ids = iter(range(1, 1_000_000))

        def step_at(rate: int, duration: float) -> StepResult:
            server.settle()
            step = run_step(
                spec,
                server,
                rate,
                duration,
                connections,
                args.drain,
                args.spin_us / 1e6,
                args.crossing,
                next(ids) * ID_BLOCK,  # ClOrdIDs never repeat within a run
            )
            step.sustained = (
                step.acked == step.orders
                and step.achieved >= SUSTAINED_FRACTION * rate
                and step.p99_us <= args.max_p99_ms * 1_000
            )
            return step

        try:
            if args.warmup > 0:
                step_at(args.rates[0], args.warmup)
            passed, failed = 0, 0
            for rate in args.rates:
                step = step_at(rate, args.duration)
                steps.append(step)
                print_row(name, step)
                if not step.sustained:
                    failed = rate
                    break
                passed = rate
            # Between the last rate sustained and the first one not: halve the gap.
            for _ in range(args.refine if failed else 0):
                rate = round((passed + failed) / 2 / REFINE_ROUNDING) * REFINE_ROUNDING
                if rate in (passed, failed) or rate <= 0:
                    break
                step = step_at(rate, args.duration)
                steps.append(step)
                print_row(name, step)
                passed, failed = (rate, failed) if step.sustained else (passed, rate)
        except RuntimeError as exc:
            note = str(exc)
            print(f"{name}: {note}", flush=True)
        finally:
            code = server.stop()
            if code not in (0, None, -signal.SIGTERM):
                print(f"{name}: the acceptor exited with {code}:\n{server.log_tail()}")
    counts: dict[str, int] = {}
    for step in steps:
        for key, value in step.counts.items():
            counts[key] = counts.get(key, 0) + value
    if counts.get("session_rejects") or counts.get("business_rejects"):
        note += (
            f" rejects: {counts['session_rejects']} session, {counts['business_rejects']} business"
        )
    if counts.get("exec_rejected"):
        note += f" {counts['exec_rejected']} orders rejected (ExecType 8)"
    if name == "venue" and counts.get("echoed_orders") and not counts.get("execution_reports"):
        note += " the venue echoed the orders instead of acknowledging them (application echo)"
    sustained = [s.offered for s in steps if s.sustained]
    return TargetResult(
        name=name,
        connections=connections,
        steps=steps,
        max_sustained=max(sustained, default=0),
        peak_achieved=max((s.achieved for s in steps), default=0),
        machine_load=round(load, 1),
        note=note.strip(),
    )


# -- the null acceptor ------------------------------------------------------------------------


_NULL_REPORT = (
    b"8=FIX.4.4\x019=230\x0135=8\x0149=VENUE\x0156=LOAD\x0134=1\x01"
    b"52=20240101-00:00:00.000000\x0137=O1\x0111=%b\x0117=E1\x01150=0\x0139=0\x0155=BTC-USDT\x01"
    b"54=1\x0138=0.01\x0144=94050.00\x01151=0.01\x0114=0\x016=0\x01"
    b"60=20240101-00:00:00.000000\x0110=000\x01"
)


def serve_null(port: int) -> None:
    """Answer each Logon, NewOrderSingle and Logout without validating anything."""
    listener = socket.create_server(("127.0.0.1", port))
    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    conns: dict[socket.socket, bytes] = {}
    find_ids = re.compile(rb"\x0111=(\d+)").findall
    while not stop:
        readable, _, _ = select.select([listener, *conns], [], [], 0.2)
        for sock in readable:
            if sock is listener:
                conn, _ = listener.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conns[conn] = b"\x01"
                continue
            try:
                data = sock.recv(RECV_SIZE)
            except OSError:  # reset by the generator
                data = b""
            if not data:
                del conns[sock]
                sock.close()
                continue
            buf = conns[sock] + data
            cut = buf.rfind(b"\x01")
            whole, conns[sock] = buf[: cut + 1], buf[cut:]
            out = [_NULL_REPORT % cl_ord_id for cl_ord_id in find_ids(whole)]
            if b"\x0135=A\x01" in whole:
                out.insert(0, b"8=FIX.4.4\x019=5\x0135=A\x0110=000\x01")
            if b"\x0135=5\x01" in whole:
                out.append(b"8=FIX.4.4\x019=5\x0135=5\x0110=000\x01")
            with contextlib.suppress(OSError):
                sock.sendall(b"".join(out))


# -- main -------------------------------------------------------------------------------------


def parse_rates(text: str) -> list[int]:
    rates = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not rates or min(rates) < 1:
        raise argparse.ArgumentTypeError("rates are positive integers, comma-separated")
    return rates


def targets_of(name: str) -> Iterator[str]:
    yield from ("venue", "quickfix") if name == "both" else (name,)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--target", choices=("venue", "quickfix", "both", "echo", "null"), default="both"
    )
    ap.add_argument("--rates", type=parse_rates, default=None, help="offered orders/s, stepped up")
    ap.add_argument("--duration", type=float, default=None, help="seconds per step (3)")
    ap.add_argument("--connections", type=int, default=4, help="FIX sessions used (4)")
    ap.add_argument("--drain", type=float, default=None, help="seconds to wait for late acks (3)")
    ap.add_argument("--warmup", type=float, default=None, help="seconds at the first rate (1)")
    ap.add_argument(
        "--refine",
        type=int,
        default=None,
        help="steps that halve the gap above the last rate sustained (2; --quick: 0)",
    )
    ap.add_argument("--max-p99-ms", type=float, default=50.0, help="a step's p99 bound (50)")
    ap.add_argument(
        "--spin-us", type=float, default=200.0, help="poll this long before an order is due (200)"
    )
    ap.add_argument("--crossing", action="store_true", help="orders trade against each other")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 short steps")
    ap.add_argument("--quickfix-threaded", action="store_true", help="ThreadedSocketAcceptor")
    ap.add_argument(
        "--no-audit", action="store_true", help="the venue without its audit chain ([audit])"
    )
    ap.add_argument("--dir", type=Path, default=None, help="where the acceptors keep their files")
    ap.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="run each acceptor under cProfile, its stats in FILE.<target>",
    )
    ap.add_argument("--serve-null", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_null is not None:
        serve_null(args.serve_null)
        return
    if args.rates is None:
        args.rates = list(QUICK_RATES if args.quick else DEFAULT_RATES)
    if args.duration is None:
        args.duration = 1.0 if args.quick else 3.0
    if args.drain is None:
        args.drain = 1.0 if args.quick else 3.0
    if args.refine is None:
        args.refine = 0 if args.quick else 2
    if args.warmup is None:
        args.warmup = 0.5 if args.quick else 1.0
    if args.connections < 1 or args.duration <= 0 or args.drain < 0:
        ap.error("--connections, --duration and --drain must be positive")
    set_timer_slack()

    print(
        f"FIX load: {args.duration:g} s per step, drain {args.drain:g} s, "
        f"{'crossing' if args.crossing else 'non-crossing'} limit orders, "
        f"rates {', '.join(f'{r:,}' for r in args.rates)} orders/s"
    )
    print(HEADER, flush=True)
    results = [run_target(name, args) for name in targets_of(args.target)]
    print()
    for result in results:
        print(
            f"{result.name}: {result.connections} connections; highest rate sustained "
            f"{result.max_sustained:,} orders/s; peak achieved {result.peak_achieved:,} acks/s"
            + (f"; {result.note}" if result.note else "")
        )
    by_name = {r.name: r for r in results}
    ratio = None
    if "venue" in by_name and "quickfix" in by_name and by_name["quickfix"].max_sustained:
        ratio = round(by_name["venue"].max_sustained / by_name["quickfix"].max_sustained, 2)
        print(f"venue / QuickFIX (highest rate sustained): {ratio}x")
    if "quickfix" in by_name:
        print(
            "QuickFIX's FileStore writes with fflush and never fsyncs (no setting for it in "
            "1.16): its acks are not durable. The venue fsyncs its journal before each ack."
        )
    print(
        json.dumps(
            {
                "duration_s": args.duration,
                "crossing": args.crossing,
                "targets": {
                    r.name: {
                        "connections": r.connections,
                        "max_sustained": r.max_sustained,
                        "peak_achieved": r.peak_achieved,
                        "machine_load_before": r.machine_load,
                        "note": r.note,
                        "steps": [s.row() for s in r.steps],
                    }
                    for r in results
                },
                "venue_over_quickfix": ratio,
            }
        )
    )


if __name__ == "__main__":
    main()
