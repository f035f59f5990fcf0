"""The ``venue`` command line: ``venue run`` serves the venue, ``venue verify`` checks a data dir,
``venue reconcile`` checks the ledger against the journal; ``venue statement`` and ``venue
ledger-check`` read the ledger (``venue.ledger_cli``); ``venue api-key`` makes, lists and revokes
the REST door's API keys (``venue.keys_cli``); ``venue operator`` and ``venue token`` manage
staff operators and service tokens (``venue.staff_cli``); ``venue audit verify`` checks the
audit chain and ``venue audit rotate-key`` renews its signing key (``venue.audit_cli``); ``venue
surveil`` runs the market-abuse detectors over the journal (``venue.surveil_cli``).

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

from engine.recovery import RecoveryError, recover
from venue.config import DEFAULT_CONFIG_PATH, AdminConfig, ConfigError, VenueConfig, load_config
from venue.exits import (
    EXIT_CONFIG,
    EXIT_CORRUPT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TAIL,
    CliError,
)
from venue.parts import Parts


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``venue`` console script."""
    sys.exit(run_cli(argv))


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command and return the exit code."""
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if args.command in ("api-key", "operator", "token"):  # one line, as their other errors
            _error(f"venue {args.command}: unrecognized arguments: {' '.join(extra)}")
            return EXIT_CONFIG
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
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
        if args.command == "api-key":
            from venue import keys_cli

            return keys_cli.run(args, config)
        if args.command in ("operator", "token"):
            from venue import staff_cli

            return staff_cli.run(args, config)
        if args.command == "simulate":
            from venue import simulate_cli

            return simulate_cli.run(args, config)
        if args.command == "audit":
            from venue import audit_cli

            return audit_cli.run(args, config)
        if args.command == "surveil":
            from venue import surveil_cli

            return surveil_cli.run(args, config)
        if args.command == "verify":
            return verify(config)
        if args.command == "reconcile":
            return reconcile_command(config)
        return _serve(config, demo=args.demo, token_file=args.admin_token_file)
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
    from venue import audit_cli, keys_cli, simulate_cli, staff_cli, surveil_cli
    from venue.ledger_cli import add_commands

    add_commands(commands)
    keys_cli.add_commands(commands)
    staff_cli.add_commands(commands)
    audit_cli.add_commands(commands)
    simulate_cli.add_commands(commands)
    surveil_cli.add_commands(commands)
    run.add_argument("--admin-port", type=int, help="overrides [admin] port (0: a free port)")
    run.add_argument("--fix-port", type=int, help="overrides [fix] port (0: a free port)")
    run.add_argument(
        "--rest-port", type=int, help="overrides [rest] port: REST and WebSocket (0: a free port)"
    )
    run.add_argument("--demo", action="store_true", help="drive a short scripted flow")
    run.add_argument(
        "--admin-token-file",
        type=Path,
        help="write a service token with every role here at start-up (mode 0600)",
    )
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
    rest_port = getattr(args, "rest_port", None)
    if rest_port is not None:
        if config.rest is None:
            raise CliError(f"--rest-port: {config.source} configures no [rest] door", EXIT_CONFIG)
        if not 0 <= rest_port <= 65535:
            raise CliError(f"--rest-port {rest_port}: must be between 0 and 65535", EXIT_CONFIG)
        config = dataclasses.replace(config, rest=dataclasses.replace(config.rest, port=rest_port))
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
def _serve(config: VenueConfig, *, demo: bool, token_file: Path | None = None) -> int:
    import uvloop

    result: int = uvloop.run(_run(config, demo=demo, token_file=token_file))
    return result


async def _run(config: VenueConfig, *, demo: bool, token_file: Path | None = None) -> int:
    from venue.custody import CustodyPart, alerts_into
    from venue.demo import run_demo
    from venue.metrics import VenueMetrics
    from venue.parts import (
        AdminPart,
        AlertStorePart,
        AuditPart,
        FixGatewayPart,
        FixListenerPart,
        KeysPart,
        RestPart,
        SettlementPart,
        SurveillancePart,
        VenuePart,
    )

    stop = asyncio.Event()  # set by SIGINT/SIGTERM, even during recovery: then stop at once
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Every door is wired (the ledger open, the FIX stores open, reports caught up, the
    # subscriptions made) before any socket listens: a Logon or a request that arrived earlier
    # would find the venue half built, and the reports of what it did could miss a subscriber.
    parts = Parts()
    venue_part = VenuePart(config)
    await parts.start(venue_part)
    venue = venue_part.venue
    audit_part = AuditPart(venue, config)
    await parts.start(audit_part)
    alert_store = AlertStorePart(venue, config)  # surveillance's alerts and cases
    await parts.start(alert_store)
    # the detectors raise into the store: an alert of a behaviour seen again updates it
    surveillance = SurveillancePart(venue, config, sink=alert_store.store)
    await parts.start(surveillance)
    metrics = VenueMetrics(venue)  # /ready answers 503 until every part below has started
    settlement = SettlementPart(venue, config)
    await parts.start(settlement)
    metrics.watch_settlement(settlement.settlement)
    gateway = FixGatewayPart(venue, config)
    await parts.start(gateway)
    metrics.watch_fix(gateway.gateway)
    keys = KeysPart(config)  # one store, shared by the admin API and the REST door
    await parts.start(keys)
    # custody after the venue (it submits credits and payouts), before the doors (REST serves
    # its wallet); its alerts (reorganisations, the hot wallet's band) go to surveillance's store
    custody = CustodyPart(venue, config, alerts_into(alert_store.store))
    await parts.start(custody)
    admin = AdminPart(
        venue,
        config,
        settlement.settlement,
        keys.keys,
        metrics,
        audit_part.chain,
        token_file,
        gateway.gateway,
        alert_store.store,
        surveillance,
        custody,
    )
    await parts.start(admin)
    rest = RestPart(venue, config, keys.keys, audit_part.refusals(), custody.wallet)
    await parts.start(rest)
    metrics.watch_rest(rest.gateway)
    listener = FixListenerPart(gateway.gateway)
    await parts.start(listener)
    metrics.started()
    fix_text = f"; FIX on {listener.address}" if listener.address else ""
    if rest.gateway is not None:
        fix_text += f"; REST and WebSocket on {rest.gateway.url}"
    report = venue.report
    print(
        f"venue: running; admin API on {admin.url}{fix_text}; data {config.data_dir}; "
        f"recovery: {report.summary() if report is not None else ''}"
    )

    demo_task = None
    if demo:
        fix_port = gateway.gateway.acceptor.port if gateway.gateway is not None else None
        demo_task = asyncio.create_task(
            run_demo(admin.url, config, fix_port, rest.gateway, admin.token, admin.access)
        )
    stopped = asyncio.create_task(venue.wait_stopped())
    waiting = asyncio.create_task(stop.wait())
    await asyncio.wait({stopped, waiting}, return_when=asyncio.FIRST_COMPLETED)
    for task in (demo_task, stopped, waiting):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    await parts.stop()
    metrics.close()
    if settlement.settlement is not None:
        print(f"venue: ledger at seq {settlement.settlement.ledger_seq}")
    if venue.failure is not None:
        raise CliError(f"the venue stopped after a failure: {venue.failure}", EXIT_FAILED)
    print(f"venue: stopped at seq {venue.core.last_seq}; snapshot at seq {venue.snapshot_seq}")
    return EXIT_OK


if __name__ == "__main__":
    main()
