"""Custody's parsers of outside input: the ``[custody]`` section (every problem names its key),
withdrawal amounts as the doors give them (a bounded, seeded fuzz), chain amounts to venue units
and back, and the recursion limit the Ethereum libraries raise put back."""

from __future__ import annotations

import random
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from custody.config import from_chain_units, read_custody, to_chain_units
from engine.configfile import ConfigError, Table
from venue.custody_ports import _units

REPO = Path(__file__).resolve().parent.parent
ASSETS = {"BTC": 8, "ETH": 8, "USDT": 8}


def section(text: str) -> Table:
    return Table(tomllib.loads(text), "", "venue.toml")


SHIPPED = (REPO / "config/venue.toml").read_text()


def test_the_shipped_section_reads_in_minor_units() -> None:
    config = read_custody(section(SHIPPED), ASSETS, Path("/data"))
    assert config is not None
    eth = config.assets["ETH"]
    assert (eth.confirmations, eth.withdraw_fee, eth.chain_decimals) == (12, 500_000, 18)
    assert config.assets["USDT"].contract and config.assets["BTC"].confirmations == 3


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (('chain = "ethereum"', 'chain = "dogecoin"', 1), "custody.assets.ETH.chain"),
        (('withdraw_fee = "0.005"', 'withdraw_fee = "0.000000001"', 1), "withdraw_fee"),
        (('withdraw_min = "0.01"', 'withdraw_min = "0.001"', 1), "withdraw_min"),
        (("confirmations = 12", "confirmations = 0", 1), "confirmations"),
        (('rpc_url = ""', 'rpc_url = "ftp://node"', 1), "rpc_url"),
        (('network = "regtest"', 'network = "mainnet"', 1), "network"),
        (('cold_token = "venue-cold"', 'cold_token = "venue-hot"', 1), "cold_token"),
        (("confirmations = 3", "confirmations = 3\nmisspelt = 1", 1), "misspelt"),
    ],
)
def test_a_bad_value_names_its_key(change: tuple[str, str, int], key: str) -> None:
    old, new, count = change
    assert old in SHIPPED
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        read_custody(section(SHIPPED.replace(old, new, count)), ASSETS, Path("/data"))


def test_chain_units_round_trip_and_dust() -> None:
    assert from_chain_units(10**18 + 123, 8, 18) == (10**8, 123)
    assert from_chain_units(2_500_123_456, 8, 6) == (250_012_345_600, 0)
    assert to_chain_units(10**8, 8, 18) == 10**18
    assert to_chain_units(250_012_345_600, 8, 6) == 2_500_123_456
    assert to_chain_units(1, 8, 6) is None  # 1e-8 USDT: USDT counts in 1e-6


def test_withdrawal_amounts_fuzz() -> None:
    """Whatever a client sends as ``amount``: a positive exact count of minor units, or None;
    never an exception, never a float's rounding."""
    rng = random.Random(1313)
    alphabet = "0123456789.-+eE xX_,٣\x00"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        found = _units(text, 8)
        assert found is None or (isinstance(found, int) and found > 0)
    assert _units("0.5", 8) == 50_000_000
    assert _units("1.000000001", 8) is None and _units("-1", 8) is None
    assert _units("1e3", 8) is None and _units("0", 8) is None and _units("", 8) is None
    assert _units("12345678.12345678", 8) == 1_234_567_812_345_678


def test_the_ethereum_libraries_do_not_leave_the_recursion_limit_raised() -> None:
    """In a process of its own, as the venue's: importing the Ethereum adapter (web3,
    eth-account, py_ecc, which sets 100,000) leaves Python's limit of 1000."""
    found = subprocess.run(
        [
            sys.executable, "-c",
            "import sys, custody.chains.ethereum, custody.eth_payer, venue.custody; "
            "print(sys.getrecursionlimit())",
        ],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=True,
    )  # fmt: skip
    assert found.stdout.strip() == "1000"
