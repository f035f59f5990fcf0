"""The ``venue`` command line: ``venue run`` serves the venue, ``venue verify`` checks a data dir,
``venue reconcile`` checks the ledger against the journal; ``venue statement`` and ``venue
ledger-check`` read the ledger (``venue.ledger_cli``).

Every expected failure (bad configuration, unusable data dir, port in use, corrupt journal) is
one line on stderr and a non-zero exit code, never a traceback: operators read these at 3 am.

Exit codes: 0 success; 1 the venue could not start or stopped on a failure (``verify``: a torn
tail would be cut; ``reconcile``: the ledger cannot be read, or is behind the journal); 2 the
journal or a snapshot is corrupt, or the recovered state breaks the core's invariants
(``reconcile``: the ledger does not match); 3 bad configuration
or arguments; 130 interrupted during start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from engine.journal import JournalError
from engine.recovery import RecoveryError, recover
from venue.config import DEFAULT_CONFIG_PATH, AdminConfig, ConfigError, VenueConfig, load_config

if TYPE_CHECKING:
    from venue.fix import FixGateway
    from venue.runtime import Venue
    from venue.settlement import Settlement

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_TAIL = 1
EXIT_CORRUPT = 2
EXIT_CONFIG = 3
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """An expected failure: printed as one line, exit with ``code``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``venue`` console script."""
    sys.exit(run_cli(argv))


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command and return the exit code."""
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="venue: %(levelname)s: %(message)s")
    try:
        ledger_command = getattr(args, "ledger_command", None)
        if ledger_command is not None:
            if getattr(args, "ledger", None) is None:
                args.config = args.config or DEFAULT_CONFIG_PATH
                args.data_dir = None
                config = _config(args)
                if config.ledger is None:
                    raise CliError(f"{config.source} configures no ledger ([[assets]])", 3)
                args.ledger = config.ledger.url
            code: int = ledger_command(args)
            return code
        if args.command == "fix-password":
            return fix_password()
        config = _config(args)
        if args.command == "verify":
            return verify(config)
        if args.command == "reconcile":
            return reconcile_command(config)
        return _serve(config, demo=args.demo)
    except CliError as exc:
        _error(str(exc))
        return exc.code
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="venue", description="The trading venue.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="recover the state and serve the venue")
    verify_cmd = commands.add_parser(
        "verify", help="check the journal and snapshots without changing any file"
    )
    reconcile_cmd = commands.add_parser(
        "reconcile",
        help="compare the ledger with the balances the journal gives at the ledger's seq",
    )
    for sub in (run, verify_cmd, reconcile_cmd):
        sub.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help="TOML file")
        sub.add_argument("--data-dir", type=Path, help="overrides [venue] data_dir")
    commands.add_parser(
        "fix-password",
        help="read a FIX session's password (stdin, or a prompt) and print its password_hash",
    )
    from venue.ledger_cli import add_commands

    add_commands(commands)
    run.add_argument("--admin-port", type=int, help="overrides [admin] port (0: a free port)")
    run.add_argument("--fix-port", type=int, help="overrides [fix] port (0: a free port)")
    run.add_argument("--demo", action="store_true", help="drive a short scripted flow")
    return parser


def fix_password() -> int:
    """Print ``password_hash`` for ``[[fix.sessions]]``; the password itself is never shown."""
    import getpass

    from venue.fix import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("FIX session password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        raise CliError("the password must have at least 8 characters", EXIT_CONFIG)
    print(hash_password(password))
    return EXIT_OK


def _config(args: argparse.Namespace) -> VenueConfig:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_CONFIG) from None
    if args.data_dir is not None:
        data_dir = args.data_dir.expanduser().absolute()
        ledger = config.ledger
        if ledger is not None and ledger.url == f"sqlite:///{config.data_dir / 'ledger.sqlite'}":
            # the default ledger lives in the data dir: it moves with it
            ledger = dataclasses.replace(ledger, url=f"sqlite:///{data_dir / 'ledger.sqlite'}")
        config = dataclasses.replace(config, data_dir=data_dir, ledger=ledger)
    port = getattr(args, "admin_port", None)
    if port is not None:
        if not 0 <= port <= 65535:
            raise CliError(f"--admin-port {port}: must be between 0 and 65535", EXIT_CONFIG)
        config = dataclasses.replace(config, admin=AdminConfig(config.admin.host, port))
    fix_port = getattr(args, "fix_port", None)
    if fix_port is not None:
        if config.fix is None:
            raise CliError(f"--fix-port: {config.source} configures no [fix] acceptor", EXIT_CONFIG)
        if not 0 <= fix_port <= 65535:
            raise CliError(f"--fix-port {fix_port}: must be between 0 and 65535", EXIT_CONFIG)
        config = dataclasses.replace(config, fix=dataclasses.replace(config.fix, port=fix_port))
    return config


def _error(message: str) -> None:
    print(f"venue: error: {' '.join(message.split())}", file=sys.stderr, flush=True)


# -- venue verify -------------------------------------------------------------------------------
def verify(config: VenueConfig) -> int:
    """Recover in memory without repair, check the state's invariants and print the report;
    change no file."""
    from venue.runtime import make_core

    root = config.data_dir
    if not root.is_dir():
        raise CliError(f"data dir {root} does not exist", EXIT_FAILED)
    try:
        core, report = recover(root, lambda: make_core(config), repair=False)
    except RecoveryError as exc:
        raise CliError(f"verify failed: {exc}", EXIT_CORRUPT) from None
    for line in report.lines():
        print(line)
    findings = core.check_invariants()
    if findings:
        print(f"invariants: {len(findings)} broken")
        for finding in findings:
            print(f"  {finding}")
        print("result: the recovered state is inconsistent; the venue must not serve it")
        return EXIT_CORRUPT
    print("invariants: hold")
    if report.tail_cut is not None:
        print("result: a torn tail would be cut on the next start (never acknowledged records)")
        return EXIT_TAIL
    print("result: clean")
    return EXIT_OK


# -- venue reconcile ----------------------------------------------------------------------------
def reconcile_command(config: VenueConfig) -> int:
    """Rebuild the core from the journal up to the ledger's seq (read-only) and compare every
    balance, then check the ledger against itself. Changes nothing, corrects nothing."""
    from clearing.reconcile import LedgerError, ledger_engine, ledger_seq, read_snapshot, reconcile
    from clearing.risk import RiskEngine
    from engine.replay import Replayer, ReplayError
    from venue.runtime import make_core
    from venue.settlement import redact_url

    if config.ledger is None:
        raise CliError(f"{config.source}: no [[assets]]: this venue keeps no ledger", EXIT_CONFIG)
    if not config.data_dir.is_dir():
        raise CliError(f"data dir {config.data_dir} does not exist", EXIT_FAILED)
    try:
        engine = ledger_engine(config.ledger.url)
        with read_snapshot(engine) as conn:
            at_seq = ledger_seq(conn)
    except LedgerError as exc:
        raise CliError(str(exc), EXIT_FAILED) from None
    replayer = Replayer(config.data_dir, lambda: make_core(config))
    try:
        last = 0
        for seq, _, _ in replayer.events(max(at_seq - 1, 0), at_seq):
            last = seq
    except ReplayError as exc:
        raise CliError(f"cannot replay the journal: {exc}", EXIT_CORRUPT) from None
    if at_seq and last != at_seq:
        raise CliError(
            f"the ledger is at seq {at_seq} but the journal ends at seq {last}: "
            "it belongs to another venue or the journal lost records",
            EXIT_CORRUPT,
        )
    risk = replayer.core.risk
    assert isinstance(risk, RiskEngine)
    try:
        report = reconcile(engine, risk.ledger_view(), at_seq)
    except LedgerError as exc:
        raise CliError(str(exc), EXIT_FAILED) from None
    finally:
        engine.dispose()
    print(f"reconcile: ledger {redact_url(config.ledger.url)} at seq {at_seq}")
    for line in report.lines():
        print(f"  {line}")
    if report.mismatch:
        print(f"result: MISMATCH, {report.findings} finding(s); nothing was corrected")
        return EXIT_CORRUPT
    print("result: the ledger matches the journal")
    return EXIT_OK


# -- venue run ----------------------------------------------------------------------------------
def _serve(config: VenueConfig, *, demo: bool) -> int:
    import uvloop

    result: int = uvloop.run(_run(config, demo=demo))
    return result


async def _run(config: VenueConfig, *, demo: bool) -> int:
    from venue.admin import start_admin
    from venue.runtime import StartError, Venue

    stop = asyncio.Event()  # set by SIGINT/SIGTERM, even during recovery: then stop at once
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    venue = Venue(config)
    try:
        report = await venue.start()
    except RecoveryError as exc:
        raise CliError(f"the venue refuses to start: {exc}", EXIT_CORRUPT) from None
    except (StartError, JournalError) as exc:
        raise CliError(f"the venue cannot start: {exc}", EXIT_FAILED) from None
    except OSError as exc:
        raise CliError(f"the venue cannot start: {exc}", EXIT_FAILED) from None
    # Every door is wired (the ledger open, the FIX stores open, reports caught up, the
    # subscriptions made) before any socket listens: a Logon or a request that arrived earlier
    # would find the venue half built, and the reports of what it did could miss a subscriber.
    settlement = await _start_settlement(venue, config)
    try:
        gateway = _build_fix(config, venue)
    except CliError:
        await _stop_all(venue, settlement)
        raise
    try:
        runner, host, port = await start_admin(
            venue, config.admin.host, config.admin.port, settlement
        )
    except OSError as exc:
        await _stop_all(venue, settlement, gateway)
        where = f"{config.admin.host}:{config.admin.port}"
        why = exc.strerror or str(exc)
        raise CliError(f"the admin API cannot listen on {where}: {why}", EXIT_FAILED) from None
    url = f"http://{host}:{port}"
    if gateway is not None:
        try:
            await _listen_fix(gateway)
        except CliError:
            await runner.cleanup()
            await _stop_all(venue, settlement)
            raise
    fix_text = ""
    if gateway is not None:
        fix_text = f"; FIX on {gateway.acceptor.host}:{gateway.acceptor.port}"
    print(
        f"venue: running; admin API on {url}{fix_text}; data {config.data_dir}; "
        f"recovery: {report.summary()}"
    )

    demo_task = None
    if demo:
        fix_port = gateway.acceptor.port if gateway is not None else None
        demo_task = asyncio.create_task(run_demo(url, config, fix_port))
    stopped = asyncio.create_task(venue.wait_stopped())
    waiting = asyncio.create_task(stop.wait())
    await asyncio.wait({stopped, waiting}, return_when=asyncio.FIRST_COMPLETED)
    for task in (demo_task, stopped, waiting):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if gateway is not None:
        await gateway.acceptor.stop()
    await runner.cleanup()
    await venue.stop()
    if settlement is not None:
        await settlement.stop()
        print(f"venue: ledger at seq {settlement.ledger_seq}")
    if venue.failure is not None:
        raise CliError(f"the venue stopped after a failure: {venue.failure}", EXIT_FAILED)
    print(f"venue: stopped at seq {venue.core.last_seq}; snapshot at seq {venue.snapshot_seq}")
    return EXIT_OK


def _build_fix(config: VenueConfig, venue: Venue) -> FixGateway | None:
    """The FIX gateway, attached to the venue but not listening yet, when the configuration
    has ``[fix]``."""
    if config.fix is None:
        return None
    from gateway.fix.dictionary import DictionaryError
    from gateway.fix.store import StoreError
    from venue.fix import attach_gateway, build_gateway

    try:
        gateway = build_gateway(config.fix, venue)
    except DictionaryError as exc:
        raise CliError(f"the FIX dictionary cannot be used: {exc}", EXIT_CONFIG) from None
    except (StoreError, OSError) as exc:
        raise CliError(f"the FIX message store cannot be opened: {exc}", EXIT_FAILED) from None
    attach_gateway(gateway, venue)
    return gateway


async def _listen_fix(gateway: FixGateway) -> None:
    """Open the FIX acceptor's socket; a port that cannot be bound closes the gateway."""
    try:
        await gateway.acceptor.start()
    except OSError as exc:
        await gateway.acceptor.stop()
        why = exc.strerror or str(exc)
        where = f"{gateway.acceptor.host}:{gateway.acceptor.port}"
        raise CliError(f"FIX cannot listen on {where}: {why}", EXIT_FAILED) from None


async def _stop_all(
    venue: Venue, settlement: Settlement | None, gateway: FixGateway | None = None
) -> None:
    """Undo a start that cannot finish: close the FIX stores, stop the venue and settlement."""
    if gateway is not None:
        await gateway.acceptor.stop()
    await venue.stop()
    if settlement is not None:
        await settlement.stop()


async def _start_settlement(venue: Venue, config: VenueConfig) -> Settlement | None:
    """Settlement into the ledger, when the venue keeps one; a ledger that cannot be opened
    stops the venue with a clear error."""
    from venue.settlement import Settlement, redact_url

    if config.ledger is None:
        return None
    settlement = Settlement(venue, config.ledger, config.assets)
    try:
        await settlement.start()
    except Exception as exc:
        await venue.stop()
        where = redact_url(config.ledger.url)
        raise CliError(f"the ledger {where} cannot be opened: {exc}", EXIT_FAILED) from None
    print(f"venue: settling into the ledger {redact_url(config.ledger.url)}", flush=True)
    return settlement


# -- the demo -------------------------------------------------------------------------------------
DEMO_SYMBOL = "BTC-USDT"
DEMO_ACCOUNTS = {1001: "alice", 1002: "bob"}  # two owners: the default STP would stop one owner


async def run_demo(url: str, config: VenueConfig, fix_port: int | None = None) -> None:
    """A short scripted flow through the admin HTTP API, then over FIX when the venue listens
    for it, printed as it goes; errors are printed, never fatal (the venue keeps serving)."""
    try:
        async with aiohttp.ClientSession(url, timeout=aiohttp.ClientTimeout(total=10)) as http:
            demo = _Demo(http)
            await _demo_flow(demo, config)
        if fix_port is not None and config.fix is not None and config.fix.application == "venue":
            from venue.fix_demo import run_fix_demo

            await run_fix_demo(config.fix, fix_port, demo.run, DEMO_SYMBOL)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        _error(f"demo: {type(exc).__name__}: {exc}")
    else:
        print("demo: done; the venue keeps serving until Ctrl-C", flush=True)


class _Demo:
    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.run = 0
        self.orders: dict[int, str] = {}  # order id -> who

    async def call(
        self, method: str, path: str, body: dict[str, object]
    ) -> list[dict[str, object]]:
        async with self.http.request(method, path, json=body) as response:
            data = await response.json()
        if response.status != 200:
            raise RuntimeError(f"{method} {path} -> {response.status} {data}")
        events: list[dict[str, object]] = data["events"]
        for event in events:
            if event["type"] == "OrderAccepted":
                self.orders[int(str(event["orderId"]))] = DEMO_ACCOUNTS.get(
                    int(str(event["account"])), str(event["account"])
                )
            print(f"    <- {self.describe(event)}", flush=True)
        return events

    def clid(self, name: str) -> str:
        return f"demo{self.run}-{name}"

    async def order(
        self, account: int, side: str, kind: str, qty: str, price: str = "", name: str = ""
    ) -> int:
        body: dict[str, object] = {
            "account": account,
            "symbol": DEMO_SYMBOL,
            "side": side,
            "type": kind,
            "quantity": qty,
            "clientOrderId": self.clid(name),
        }
        at = ""
        if price:
            body["price"] = price
            at = f" @ {price}"
        who = DEMO_ACCOUNTS[account]
        print(f"  -> {who} {side} {kind} {qty} {DEMO_SYMBOL}{at} ({body['clientOrderId']})")
        events = await self.call("POST", "/v1/orders", body)
        for event in events:
            if event["type"] == "OrderAccepted":
                return int(str(event["orderId"]))
        return 0

    def describe(self, e: dict[str, object]) -> str:
        kind = e["type"]
        if kind == "OrderAccepted":
            at = (
                "" if e["ordType"] in ("MARKET", "STOP_LOSS", "TAKE_PROFIT") else f" @ {e['price']}"
            )
            return f"accepted #{e['orderId']} {e['side']} {e['ordType']} {e['qty']}{at} {e['tif']}"
        if kind == "Trade":
            maker = self.orders.get(int(str(e["makerOrderId"])), "?")
            taker = self.orders.get(int(str(e["takerOrderId"])), "?")
            return (
                f"TRADE #{e['tradeId']} {e['qty']} {DEMO_SYMBOL} @ {e['price']}"
                f" (maker #{e['makerOrderId']} {maker}, taker #{e['takerOrderId']} {taker},"
                f" taker {e['takerSide']}; taker leaves {e['takerLeaves']})"
            )
        if kind in ("OrderCancelled", "OrderExpired"):
            return f"{kind[5:].lower()} #{e['orderId']} {e['qty']} ({e['reason']})"
        if kind == "OrderReplaced":
            kept = "priority kept" if e["priorityKept"] else "priority lost"
            return f"replaced #{e['orderId']}: {e['qty']} @ {e['price']} ({kept})"
        if kind == "TradeSettled":
            buyer = DEMO_ACCOUNTS.get(int(str(e["buyer"])), str(e["buyer"]))
            seller = DEMO_ACCOUNTS.get(int(str(e["seller"])), str(e["seller"]))
            return (
                f"settled: {buyer} pays {e['quoteAmount']} {e['quoteAsset']} for "
                f"{e['baseAmount']} {e['baseAsset']} from {seller}; fees {buyer} "
                f"{e['buyerFee']} {e['buyerFeeAsset']}, {seller} {e['sellerFee']} "
                f"{e['sellerFeeAsset']}"
            )
        if kind == "Deposited":
            who = DEMO_ACCOUNTS.get(int(str(e["account"])), str(e["account"]))
            return f"deposit: {who} +{e['amount']} {e['asset']}"
        if kind == "MassCancelDone":
            return f"mass cancel of account {e['account']}: {e['cancelled']} order(s) cancelled"
        fields = ", ".join(f"{k}={v}" for k, v in e.items() if k != "type")
        return f"{kind} {fields}"

    async def balances(self) -> None:
        print("  balances (total / locked by open orders):")
        for account, who in DEMO_ACCOUNTS.items():
            async with self.http.get(f"/v1/accounts/{account}/balances") as response:
                data = await response.json()
            for row in data["balances"]:
                print(f"    {who:<6} {row['asset']:<5} {row['total']:>20} / {row['locked']}")

    async def reconcile(self) -> None:
        async with self.http.post("/v1/reconcile", json={}) as response:
            report = await response.json()
        if response.status != 200:
            print(f"  reconciliation: {response.status} {report.get('msg')}")
            return
        print(
            f"  reconciliation of the ledger with the core at seq {report['atSeq']}: "
            f"{report['status']} ({report['compared']} accounts compared)"
        )

    async def book(self) -> None:
        async with self.http.get(f"/v1/book/{DEMO_SYMBOL}", params={"depth": "5"}) as response:
            book = await response.json()
        print(f"  book {DEMO_SYMBOL} (last price {book['lastPrice']}):")
        for price, qty, count in reversed(book["asks"]):
            print(f"    ask {price:>12} {qty:>10}  ({count} order(s))")
        print("    " + "-" * 40)
        for price, qty, count in book["bids"]:
            print(f"    bid {price:>12} {qty:>10}  ({count} order(s))")


async def _demo_flow(demo: _Demo, config: VenueConfig) -> None:
    async with demo.http.get("/v1/status") as response:
        status = await response.json()
    demo.run = int(status["lastSeq"])  # unique per run: client order ids never repeat
    alice, bob = DEMO_ACCOUNTS
    print(f"demo: run {demo.run}: orders on {DEMO_SYMBOL} through the admin API", flush=True)
    print("  clearing the demo accounts' open orders from earlier runs")
    for account in (alice, bob):
        await demo.call("POST", "/v1/mass-cancel", {"scope": "ACCOUNT", "account": account})
    if config.clearing:
        print("  funding the demo accounts (deposits, as custody would credit them):")
        for account, asset, amount in (
            (alice, "BTC", "2"),
            (alice, "USDT", "50000"),
            (bob, "USDT", "150000"),
        ):
            body = {"account": account, "asset": asset, "amount": amount, "ref": f"demo{demo.run}"}
            await demo.call("POST", "/v1/deposits", body)
    print("  resting orders:")
    await demo.order(alice, "SELL", "LIMIT", "0.50000", "95010.00", "a-ask1")
    ask2 = await demo.order(alice, "SELL", "LIMIT", "0.25000", "95020.00", "a-ask2")
    await demo.order(alice, "BUY", "LIMIT", "0.40000", "94990.00", "a-bid1")
    print("  a crossing order:")
    await demo.order(bob, "BUY", "LIMIT", "0.60000", "95015.00", "b-bid1")
    print("  a cancel:")
    print(f"  -> alice cancels {demo.clid('a-bid1')}")
    await demo.call(
        "DELETE",
        "/v1/orders",
        {"account": alice, "symbol": DEMO_SYMBOL, "clientOrderId": demo.clid("a-bid1")},
    )
    print("  a replace:")
    print(f"  -> alice replaces #{ask2}: 0.30000 @ 95018.00")
    body = {
        "account": alice,
        "symbol": DEMO_SYMBOL,
        "orderId": ask2,
        "newClientOrderId": demo.clid("a-ask2b"),
        "quantity": "0.30000",
        "price": "95018.00",
    }
    await demo.call("PUT", "/v1/orders", body)
    print("  a market order:")
    await demo.order(bob, "BUY", "MARKET", "0.10000", name="b-mkt1")
    await demo.book()
    if config.clearing:
        await demo.balances()
        await demo.reconcile()


if __name__ == "__main__":
    main()
