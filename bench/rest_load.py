"""REST load benchmark: signed ``POST /api/v3/order`` at fixed offered rates over several
HTTP/1.1 keep-alive connections, the order-to-response latency from each order's intended send
time, the highest rate sustained, and the FIX path measured the same way in the same run.

    python -m bench.rest_load                    # REST, then FIX, stepped rates
    python -m bench.rest_load --quick            # a smoke run of a few seconds
    python -m bench.rest_load --crossing         # every second order trades
    python -m bench.rest_load --rates 2000,5000 --duration 5 --paths rest
    python -m bench.rest_load --profile /tmp/rest.prof   # the venue under cProfile

The venue: ``venue run --config bench/rest_load.toml`` as its own process in a temporary data
folder, on free ports: matching with clearing (balances held and settled, the default SQLite
ledger), the journal fsynced before every acknowledgement, the REST door's limits raised (see
that file). Before the start, ``KeyStore(<data_dir>/rest).create_hmac`` makes one TRADE key for
each of ``--accounts`` accounts (1001, 1002, ...); once it listens, every account is funded
through the admin API (``POST /v1/deposits``). A fresh venue is started for each path (REST,
then FIX), so each starts from an empty book.

The REST generator is one process with one ``select`` loop over ``--connections`` keep-alive
connections (round-robin over the accounts), in the design of ``bench/fix_load.py``: before each
step it builds and signs every order of the step (``gateway.rest.signing.sign_hmac`` over the
exact query string; ``recvWindow=60000``, so a step may last up to a minute after signing) and
lays each connection's requests back to back; it then releases order ``i`` at ``t0 + i / rate``,
each loop turn writing what has come due (a connection keeps writing while its earlier requests
wait: pipelined, so an order is never held back by the answer to the one before it). The
response parser is minimal (status line, ``Content-Length``, body); HTTP/1.1 answers in order on
a connection, so the ``r``-th response on connection ``c`` is order ``c + r * connections``.
Latency runs from the intended send time to the moment the whole response was read, so a
stalled venue or a full socket is charged in full (no coordinated omission); an order without a
response by the end of the drain is lost and counts as infinitely late. aiohttp serves one
request of a connection at a time, so each connection carries at most one order per journal
commit: the rate a connection can carry is bounded by the commit time, hence 32 connections.

Orders: LIMIT GTC, newOrderRespType FULL by default (what a client gets without asking),
quantity 0.01, alternating buy and sell on each connection; buys below and sells above the
reference on 500 levels per side, so none trades; ``--crossing``: all at the reference price,
every sell trades against a resting buy (``default_stp`` is NONE in the config).

The FIX path: ``bench.fix_load.run_step`` (its generator and its ack matching; without its
spinning before each order by default, ``--spin-us 0``, since the REST generator does not spin
and a spinning generator takes a core the venue shares on this machine) against the FIX
acceptor of the same configuration (sessions LOAD1..LOAD4, accounts 2001..2004, funded the same
way), at the same rates and with the same stepping; the ratio printed is REST's highest rate
sustained over FIX's.

The rates are stepped up (``--rates``) until one is not sustained: fewer than 95 % of the offered
rate answered, an order lost or refused, or p99 above ``--max-p99-ms``; then ``--refine`` steps
halve the gap. Every step stops by itself: at most ``duration + drain`` seconds after its first
order. Printed per path and step: offered and achieved rates, p50, p99, p99.9 and max latency,
orders lost, the CPU of the venue, of the generator and of everything else on the machine
(percent of one core over the step). The last line is JSON. ``--profile FILE`` runs each venue
under cProfile (stats in ``FILE.rest`` and ``FILE.fix``) and prints the top costs.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import pstats
import re
import select
import signal
import socket
import sys
import tempfile
import time
import urllib.request
from array import array
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from bench import fix_load
from bench.fix_load import (
    REPO_ROOT,
    Server,
    StepResult,
    busy_cpu_seconds,
    free_port,
    machine_load,
    percentile,
    set_timer_slack,
)
from gateway.rest.keys import KeyStore
from gateway.rest.signing import sign_hmac

CONFIG = REPO_ROOT / "bench" / "rest_load.toml"
DEFAULT_RATES = (1_000, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000)
QUICK_RATES = (500, 2_000)
SUSTAINED_FRACTION = 0.95
REFINE_ROUNDING = 250  # orders/s
BUSY_WARNING = 20.0  # percent of one core in use by others before a path starts
PRICE_LEVELS = 500
ORDER_QTY = "0.01"
RECV_WINDOW_MS = 60_000
MAX_STEP_S = 55.0  # signing to the end of the drain: within the recvWindow
RECV_SIZE = 1 << 16
FIRST_REST_ACCOUNT = 1001
#: Funds per account: more than a whole run's resting orders hold.
FUNDING = (("USDT", "1000000000"), ("BTC", "100000"))

_REQUEST = (
    "POST /api/v3/order?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-MBX-APIKEY: {key}\r\n"
    "Content-Length: 0\r\n\r\n"
)
_STATUS_FIELD = re.compile(rb'"status": ?"([A-Z_]+)"')


# -- the venue --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    account: int
    api_key: str
    secret: str


class VenueProcess(Server):
    """``venue run`` with bench/rest_load.toml; ``port`` is the REST port."""

    def __init__(self, command: list[str], ports: dict[str, int], directory: Path) -> None:
        super().__init__(command, ports["rest"], directory)
        self.ports = ports

    def wait_all(self) -> None:
        for name in ("admin", "rest", "fix"):
            self.port = self.ports[name]
            self.wait_listening()
        self.port = self.ports["rest"]

    def on(self, name: str) -> Server:
        """This process seen as the acceptor on its ``name`` port (``bench.fix_load``'s steps
        connect to ``server.port``)."""
        view = copy.copy(self)
        view.port = self.ports[name]
        return view


def make_keys(data_dir: Path, accounts: int) -> list[Key]:
    """One HMAC TRADE key per account, in the store the venue opens at start."""
    store = KeyStore(data_dir / "rest")
    keys = []
    for n in range(accounts):
        account = FIRST_REST_ACCOUNT + n
        key, secret = store.create_hmac(account, {"TRADE", "USER_DATA"}, "bench", (), "bench")
        keys.append(Key(account, key.api_key, secret))
    return keys


def fund(admin_port: int, accounts: Sequence[int], token: str) -> None:
    for account in accounts:
        for asset, amount in FUNDING:
            body = json.dumps(
                {"account": account, "asset": asset, "amount": amount, "ref": f"bench-{account}"}
            ).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{admin_port}/v1/deposits",
                data=body,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                if answer.status != 200:
                    raise RuntimeError(f"deposit for {account}: HTTP {answer.status}")


def fix_accounts() -> list[int]:
    return [s.account for s in fix_load.read_target("venue", CONFIG).sessions]


def start_venue(
    directory: Path, n_accounts: int, profile: Path | None, extra_args: Sequence[str] = ()
) -> tuple[VenueProcess, list[Key]]:
    """A venue on free ports with ``n_accounts`` REST keys, every account funded."""
    data = directory / "data"
    data.mkdir(parents=True)
    keys = make_keys(data, n_accounts)
    ports = {name: free_port() for name in ("admin", "rest", "fix")}
    python = [sys.executable]
    if profile is not None:
        python += ["-m", "cProfile", "-o", str(profile)]
    command = [*python, "-m", "venue.cli", "run", "--config", str(CONFIG)]
    command += ["--data-dir", str(data), "--admin-port", str(ports["admin"])]
    command += ["--rest-port", str(ports["rest"]), "--fix-port", str(ports["fix"]), *extra_args]
    token_file = directory / "admin.token"
    command += ["--admin-token-file", str(token_file)]
    server = VenueProcess(command, ports, directory)
    try:
        server.wait_all()
        token = token_file.read_text().strip()
        fund(ports["admin"], [k.account for k in keys] + fix_accounts(), token)
    except BaseException:
        server.stop()
        raise
    return server, keys


# -- the orders -------------------------------------------------------------------------------


@dataclass
class Stream:
    """One connection's requests of a step, back to back, and where each one ends."""

    key: Key
    data: bytes
    ends: array[int]  # ends[k]: bytes up to and including the k-th request (ends[0] = 0)


def price_levels(crossing: bool) -> tuple[list[str], list[str], str]:
    """The buy and sell prices and the symbol, as bench.fix_load places them."""
    spec = fix_load.read_target("venue", CONFIG)
    tick = Decimal(spec.tick_size)
    reference = Decimal(spec.reference_price)
    low = (reference * Decimal("0.99")).quantize(tick, ROUND_DOWN)
    high = (reference * Decimal("1.01")).quantize(tick, ROUND_DOWN)
    buys = [str(low - n * tick) for n in range(PRICE_LEVELS)]
    sells = [str(high + n * tick) for n in range(PRICE_LEVELS)]
    if crossing:
        buys = sells = [str(reference)]
    return buys, sells, spec.symbol.replace("-", "")


def sign_step(
    keys: Sequence[Key],
    connections: int,
    count: int,
    base_id: int,
    crossing: bool,
    resp_type: str,
) -> list[Stream]:
    """Order ``i`` goes to connection ``i % connections``, whose account is
    ``keys[connection % len(keys)]``; each signed now."""
    buys, sells, symbol = price_levels(crossing)
    timestamp = time.time_ns() // 1_000_000
    streams = []
    for c in range(connections):
        key = keys[c % len(keys)]
        requests = []
        ends = array("q", [0])
        total = 0
        for k, i in enumerate(range(c, count, connections)):
            if k & 1:
                price, side = sells[(k >> 1) % len(sells)], "SELL"
            else:
                price, side = buys[(k >> 1) % len(buys)], "BUY"
            query = (
                f"symbol={symbol}&side={side}&type=LIMIT&timeInForce=GTC&quantity={ORDER_QTY}"
                f"&price={price}&newClientOrderId=b{base_id + i}&newOrderRespType={resp_type}"
                f"&recvWindow={RECV_WINDOW_MS}&timestamp={timestamp}"
            )
            query += "&signature=" + sign_hmac(key.secret, query)
            raw = _REQUEST.format(query=query, key=key.api_key).encode("ascii")
            requests.append(raw)
            total += len(raw)
            ends.append(total)
        streams.append(Stream(key, b"".join(requests), ends))
    return streams


# -- one step ---------------------------------------------------------------------------------


@dataclass
class RestStep(StepResult):
    first_refusal: str = ""  # the first answer other than 200: status and body


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def run_step(
    server: Server,
    keys: Sequence[Key],
    rate: int,
    duration: float,
    connections: int,
    drain: float,
    crossing: bool,
    base_id: int,
    resp_type: str,
) -> StepResult:
    count = max(1, int(rate * duration))
    streams = sign_step(keys, connections, count, base_id, crossing, resp_type)
    socks: list[socket.socket] = []
    try:
        for _ in streams:
            socks.append(connect(server.port))
        return _drive(streams, socks, server, rate, count, drain)
    finally:
        for sock in socks:
            sock.close()


@dataclass
class _Responses:
    """What the parser found on the connections of a step."""

    acks: array[int]  # receipt time (perf_counter ns) of order i's response; 0: none yet
    answered: int = 0
    ok: int = 0
    refused: int = 0
    first_refusal: str = ""


def _parse(
    buf: bytes,
    c: int,
    n_conn: int,
    next_response: list[int],
    received_at: int,
    out: _Responses,
    statuses: dict[str, int],
) -> bytes:
    """Read the complete responses at the start of ``buf``; returns the incomplete rest."""
    pos = 0
    size = len(buf)
    while True:
        head_end = buf.find(b"\r\n\r\n", pos)
        if head_end < 0:
            return buf[pos:]
        at = buf.find(b"Content-Length: ", pos, head_end)
        if at < 0:
            raise RuntimeError(f"a response without Content-Length: {buf[pos:head_end]!r}")
        length = int(buf[at + 16 : buf.index(b"\r\n", at)])
        end = head_end + 4 + length
        if end > size:
            return buf[pos:]
        i = c + next_response[c] * n_conn
        next_response[c] += 1
        if i < len(out.acks):
            out.acks[i] = received_at
        out.answered += 1
        body = buf[head_end + 4 : end]
        if buf[pos + 9 : pos + 12] == b"200":
            out.ok += 1
            found = _STATUS_FIELD.search(body)
            name = found.group(1).decode() if found else "?"
            statuses[name] = statuses.get(name, 0) + 1
        else:
            out.refused += 1
            if not out.first_refusal:
                out.first_refusal = (buf[pos + 9 : pos + 12] + b" " + body[:200]).decode(
                    errors="replace"
                )
        pos = end


def _drive(
    streams: list[Stream],
    socks: list[socket.socket],
    server: Server,
    rate: int,
    count: int,
    drain: float,
) -> StepResult:
    n_conn = len(streams)
    views = [memoryview(s.data) for s in streams]
    ends = [s.ends for s in streams]
    written = [0] * n_conn
    index_of = {sock.fileno(): c for c, sock in enumerate(socks)}
    tails = [b""] * n_conn
    next_response = [0] * n_conn
    out = _Responses(array("q", bytes(8 * count)))
    statuses: dict[str, int] = {}
    clock = time.perf_counter_ns
    ns_per_order = 1_000_000_000 / rate
    released = 0
    release_lag_max = 0
    dirty: set[int] = set()  # connections with something due and not yet written
    pending: list[socket.socket] = []

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
                    if due - released >= n_conn:
                        dirty.update(range(n_conn))
                    else:
                        dirty.update(i % n_conn for i in range(released, due))
                    released = due
            if dirty:
                pending = []
                for c in list(dirty):
                    target = ends[c][(released - c + n_conn - 1) // n_conn]
                    if written[c] < target:
                        try:
                            sent = socks[c].send(views[c][written[c] : target])
                        except BlockingIOError:
                            sent = 0
                        written[c] += sent
                    if written[c] < target:
                        pending.append(socks[c])
                    else:
                        dirty.discard(c)
            if out.answered >= count or now >= deadline:
                break
            if released < count:
                wait = t0 + int(released * ns_per_order) - clock()
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
                    raise RuntimeError(f"connection {c}: closed by the venue")
                tails[c] = _parse(
                    tails[c] + data, c, n_conn, next_response, received_at, out, statuses
                )
    finally:
        elapsed = (clock() - t0) / 1e9
        cpu = time.process_time() - cpu0
        server_cpu = server.cpu_seconds() - server_cpu0
        other_cpu = busy_cpu_seconds() - busy0 - server_cpu - cpu
        gc.enable()

    acks = out.acks
    unsent = sum(len(e) - bisect_right(e, w) for e, w in zip(ends, written, strict=True))
    latencies = sorted((acks[i] - t0 - i * ns_per_order) / 1_000 for i in range(count) if acks[i])
    answered = len(latencies)
    last = max(acks) if answered else t0
    achieved = out.ok / max((last - t0) / 1e9, 1e-9) if out.ok else 0.0
    counts = {"answered": answered, "refused": out.refused, **statuses}
    return RestStep(
        offered=rate,
        duration_s=round(count / rate, 3),
        orders=count,
        acked=out.ok,
        achieved=round(achieved),
        p50_us=round(percentile(latencies, count, 0.50), 1),
        p99_us=round(percentile(latencies, count, 0.99), 1),
        p999_us=round(percentile(latencies, count, 0.999), 1),
        max_us=round(latencies[-1], 1) if answered == count else float("inf"),
        server_cpu=round(100 * server_cpu / elapsed, 1),
        generator_cpu=round(100 * cpu / elapsed, 1),
        other_cpu=round(max(0.0, 100 * other_cpu / elapsed), 1),
        release_lag_max_us=round(release_lag_max / 1_000, 1),
        unsent=unsent,
        counts=counts,
        first_refusal=out.first_refusal,
    )


# -- the steps of one path --------------------------------------------------------------------


@dataclass
class PathResult:
    name: str
    connections: int
    steps: list[StepResult]
    max_sustained: int
    peak_achieved: int
    machine_load: float  # percent of one core busy before the start
    note: str = ""


def fmt_ms(us: float) -> str:
    if us == float("inf"):
        return "lost"
    ms = us / 1_000
    return f"{ms:,.2f}" if ms < 100 else f"{ms:,.0f}"


HEADER = (
    f"{'path':<6}{'offered/s':>10}{'achieved/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>9}"
    f"{'max ms':>9}{'lost':>7}{'refused':>8}{'venue cpu':>10}{'gen cpu':>8}{'others':>7}"
    "  sustained"
)


def print_row(name: str, step: StepResult) -> None:
    lost = step.orders - (step.counts.get("answered", step.acked))
    refused = step.counts.get("refused", 0)
    print(
        f"{name:<6}{step.offered:>10,}{step.achieved:>11,}{fmt_ms(step.p50_us):>9}"
        f"{fmt_ms(step.p99_us):>9}{fmt_ms(step.p999_us):>9}{fmt_ms(step.max_us):>9}"
        f"{lost:>7,}{refused:>8,}{step.server_cpu:>9.0f}%{step.generator_cpu:>7.0f}%"
        f"{step.other_cpu:>6.0f}%  {'yes' if step.sustained else 'NO'}",
        flush=True,
    )


def step_through(
    name: str,
    rates: Sequence[int],
    refine: int,
    step_at: Callable[[int], StepResult],
    steps: list[StepResult],
) -> None:
    """Rates up to the first not sustained, then ``refine`` steps halving the gap; each step
    is added to ``steps`` as it ends, so a failure later keeps the steps before it."""
    passed, failed = 0, 0
    for rate in rates:
        step = step_at(rate)
        steps.append(step)
        print_row(name, step)
        if not step.sustained:
            failed = rate
            break
        passed = rate
    for _ in range(refine if failed else 0):
        rate = round((passed + failed) / 2 / REFINE_ROUNDING) * REFINE_ROUNDING
        if rate in (passed, failed) or rate <= 0:
            break
        step = step_at(rate)
        steps.append(step)
        print_row(name, step)
        passed, failed = (rate, failed) if step.sustained else (passed, rate)


def run_path(name: str, args: argparse.Namespace) -> PathResult:
    load = machine_load()
    if load > BUSY_WARNING:
        print(
            f"{name}: warning: the machine is busy ({load:.0f}% of a core in use before the "
            "start): the figures will be low and noisy",
            flush=True,
        )
    fix_spec = fix_load.read_target("venue", CONFIG)
    connections = args.connections if name == "rest" else min(4, len(fix_spec.sessions))
    steps: list[StepResult] = []
    note = ""
    with tempfile.TemporaryDirectory(prefix=f"bench-rest-{name}-", dir=args.dir) as tmp:
        profile = None
        if args.profile is not None:
            profile = args.profile.with_name(f"{args.profile.name}.{name}").resolve()
        server, keys = start_venue(Path(tmp), args.accounts, profile)
        ids = iter(range(1, 1_000_000))

        def step_at(rate: int, duration: float) -> StepResult:
            server.settle()
            base_id = next(ids) * fix_load.ID_BLOCK
            if name == "rest":
                step = run_step(
                    server,
                    keys,
                    rate,
                    duration,
                    connections,
                    args.drain,
                    args.crossing,
                    base_id,
                    args.resp_type,
                )
            else:
                step = fix_load.run_step(
                    fix_spec,
                    server.on("fix"),
                    rate,
                    duration,
                    connections,
                    args.drain,
                    args.spin_us / 1e6,
                    args.crossing,
                    base_id,
                )
                step.counts["answered"] = step.acked
            step.sustained = (
                step.acked == step.orders
                and step.achieved >= SUSTAINED_FRACTION * rate
                and step.p99_us <= args.max_p99_ms * 1_000
            )
            return step

        try:
            if args.warmup > 0:
                step_at(args.rates[0], args.warmup)
            step_through(
                name, args.rates, args.refine, lambda rate: step_at(rate, args.duration), steps
            )
        except RuntimeError as exc:
            note = str(exc)
            print(f"{name}: {note}; the venue's log ends:\n{server.log_tail(10)}", flush=True)
        finally:
            code = server.stop()
            if code not in (0, None, -signal.SIGTERM):
                print(f"{name}: the venue exited with {code}:\n{server.log_tail()}")
    refused = sum(s.counts.get("refused", 0) for s in steps)
    if refused:
        first = next(s.first_refusal for s in steps if isinstance(s, RestStep) and s.first_refusal)
        note += f" {refused} orders refused, the first: {first}"
    rejected = sum(s.counts.get("exec_rejected", 0) for s in steps)
    if rejected:
        note += f" {rejected} orders rejected (ExecType 8)"
    sustained = [s.offered for s in steps if s.sustained]
    return PathResult(
        name=name,
        connections=connections,
        steps=steps,
        max_sustained=max(sustained, default=0),
        peak_achieved=max((s.achieved for s in steps), default=0),
        machine_load=round(load, 1),
        note=note.strip(),
    )


def print_profile(path: Path, top: int = 25) -> None:
    if not path.exists():
        print(f"{path}: no profile written")
        return
    print(f"\nThe venue's top costs ({path}), by own time:")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(top)
    print(f"By cumulative time ({path}):")
    stats.sort_stats("cumulative").print_stats(top)


# -- main -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--rates", type=fix_load.parse_rates, default=None, help="offered orders/s")
    ap.add_argument("--duration", type=float, default=None, help="seconds per step (3)")
    ap.add_argument("--connections", type=int, default=32, help="REST connections (32)")
    ap.add_argument("--accounts", type=int, default=8, help="REST accounts, one key each (8)")
    ap.add_argument("--drain", type=float, default=None, help="seconds to wait for late ones (3)")
    ap.add_argument("--warmup", type=float, default=None, help="seconds at the first rate (1)")
    ap.add_argument(
        "--refine", type=int, default=None, help="steps halving the gap (2; --quick: 0)"
    )
    ap.add_argument("--max-p99-ms", type=float, default=50.0, help="a step's p99 bound (50)")
    ap.add_argument(
        "--spin-us", type=float, default=0.0, help="FIX generator: poll before due (0, as REST)"
    )
    ap.add_argument("--resp-type", choices=("ACK", "RESULT", "FULL"), default="FULL", help="(FULL)")
    ap.add_argument("--crossing", action="store_true", help="orders trade against each other")
    ap.add_argument(
        "--paths", default="rest,fix", help="which paths, in order: rest, fix (rest,fix)"
    )
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 short steps")
    ap.add_argument("--dir", type=Path, default=None, help="where the venues keep their files")
    ap.add_argument(
        "--profile", type=Path, default=None, metavar="FILE", help="cProfile: FILE.rest, FILE.fix"
    )
    args = ap.parse_args(argv)
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not args.paths or not set(args.paths) <= {"rest", "fix"}:
        ap.error("--paths: rest, fix or both, comma-separated")
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
    if args.connections < 1 or args.accounts < 1 or args.duration <= 0 or args.drain < 0:
        ap.error("--connections, --accounts, --duration and --drain must be positive")
    if args.duration + args.drain > MAX_STEP_S:
        ap.error(f"--duration + --drain must stay within {MAX_STEP_S:g} s (the recvWindow)")
    set_timer_slack()

    load_avg = os.getloadavg()
    print(
        f"REST load: {args.duration:g} s per step, drain {args.drain:g} s, "
        f"{'crossing' if args.crossing else 'non-crossing'} limit orders "
        f"(newOrderRespType {args.resp_type}), {args.connections} connections over "
        f"{args.accounts} accounts, rates {', '.join(f'{r:,}' for r in args.rates)} orders/s; "
        f"load average {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f}"
    )
    print(HEADER, flush=True)
    results = [run_path(name, args) for name in args.paths]
    load_after = os.getloadavg()
    print()
    for result in results:
        print(
            f"{result.name}: {result.connections} connections; highest rate sustained "
            f"{result.max_sustained:,} orders/s; peak achieved {result.peak_achieved:,} /s"
            + (f"; {result.note}" if result.note else "")
        )
    by_name = {r.name: r for r in results}
    ratio = None
    if "rest" in by_name and "fix" in by_name and by_name["fix"].max_sustained:
        ratio = round(by_name["rest"].max_sustained / by_name["fix"].max_sustained, 2)
        print(f"REST / FIX (highest rate sustained): {ratio}x")
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if args.profile is not None:
        for result in results:
            print_profile(args.profile.with_name(f"{args.profile.name}.{result.name}").resolve())
    report: dict[str, Any] = {
        "duration_s": args.duration,
        "crossing": args.crossing,
        "resp_type": args.resp_type,
        "load_average_before": [round(v, 2) for v in load_avg],
        "load_average_after": [round(v, 2) for v in load_after],
        "paths": {
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
        "rest_over_fix": ratio,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
