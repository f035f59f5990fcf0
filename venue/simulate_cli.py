"""``venue simulate``: the simulator of ``venue.simulate`` against a running venue.

    venue simulate --token-file admin.token [--config C] [--seconds 30] [--rate 50] [--seed 1]
        [--traders 4] [--passive 1] [--symbol BTC-USDT] [--abuse spoofing,layering,wash,...]
        [--admin-url URL] [--rest-url URL] [--fix-port N]

The doors' addresses default to the configuration's (``[admin]``, ``[rest]``, ``[fix]``); the
token is a service token with the ``operator`` and ``treasury`` roles at least (``venue run
--admin-token-file``, or ``venue token create``). Exit 0 when it ran, 1 when the venue could
not be reached or refused the set-up, 3 for bad arguments; never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from venue.config import DEFAULT_CONFIG_PATH, VenueConfig
from venue.exits import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, CliError

__all__ = ["add_commands", "run"]


def add_commands(subparsers: Any) -> None:
    sim = subparsers.add_parser(
        "simulate", help="drive realistic (and optionally abusive) flow through the doors"
    )
    sim.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH, help="TOML file")
    sim.add_argument("--data-dir", type=Path, help="overrides [venue] data_dir")
    sim.add_argument("--token-file", type=Path, required=True, help="a service token's file")
    sim.add_argument("--seconds", default="30", help="how long (30)")
    sim.add_argument("--rate", type=float, default=50.0, help="traders' orders a second (50)")
    sim.add_argument("--seed", type=int, default=1, help="the seed of every decision (1)")
    sim.add_argument("--traders", type=int, default=4, help="REST traders (4)")
    sim.add_argument("--passive", type=int, default=1, help="passive REST traders (1)")
    sim.add_argument("--symbol", default="BTC-USDT", help="the instrument (BTC-USDT)")
    sim.add_argument("--abuse", default="", help="abusive agents, comma-separated")
    sim.add_argument("--admin-url", help="the admin API (default: [admin])")
    sim.add_argument("--rest-url", help="the REST door (default: [rest])")
    sim.add_argument("--fix-port", type=int, help="the FIX acceptor's port (default: [fix])")


def run(args: argparse.Namespace, config: VenueConfig) -> int:
    from venue.simulate import Simulation, SimulationSettings, decimal_seconds, parse_abuses

    try:
        settings = SimulationSettings(
            symbol=args.symbol,
            seconds=decimal_seconds(args.seconds),
            rate=_bounded("rate", args.rate, 0, 10_000),
            seed=args.seed,
            traders=int(_bounded("traders", args.traders, 0, 100)),
            passive=int(_bounded("passive", args.passive, 0, 100)),
            abuses=parse_abuses(args.abuse),
        )
    except (ValueError, ArithmeticError) as exc:
        raise CliError(f"simulate: {exc}", EXIT_CONFIG) from None
    try:
        token = args.token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise CliError(f"simulate: cannot read the token: {why}", EXIT_CONFIG) from None
    admin_url = args.admin_url or f"http://{config.admin.host}:{config.admin.port}"
    rest = config.rest
    rest_url = args.rest_url or (f"http://{rest.host}:{rest.port}" if rest is not None else "")
    fix_port = (
        args.fix_port
        if args.fix_port is not None
        else (config.fix.port if config.fix is not None else None)
    )
    try:
        simulation = Simulation(
            config,
            settings,
            admin_url=admin_url,
            token=token,
            rest_url=rest_url,
            fix_port=fix_port,
        )
        asyncio.run(simulation.run())
    except ValueError as exc:
        raise CliError(f"simulate: {exc}", EXIT_CONFIG) from None
    except (OSError, RuntimeError, TimeoutError) as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise CliError(f"simulate: the venue cannot be driven: {why}", EXIT_FAILED) from None
    return EXIT_OK


def _bounded(name: str, value: float, low: float, high: float) -> float:
    if not low <= value <= high:
        raise ValueError(f"--{name} must be from {low:g} to {high:g}")
    return value
