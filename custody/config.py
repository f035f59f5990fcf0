"""Custody's ``[custody]`` section: the token, the chains' nodes and each asset's rules.

Optional: without ``[custody]`` the venue keeps no wallets (deposits and withdrawals are the
operators' admin commands only). Amounts are decimal strings in the asset's unit, turned into
the venue's minor units (``[[assets]]`` decimals) here, so nothing downstream sees a decimal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine.configfile import Table, absolute

__all__ = [
    "BITCOIN",
    "CHAINS",
    "ETHEREUM",
    "AssetRules",
    "ChainConfig",
    "CustodyConfig",
    "HsmConfig",
    "decimal_text",
    "from_chain_units",
    "network_of",
    "read_custody",
    "to_chain_units",
]

BITCOIN = "bitcoin"
ETHEREUM = "ethereum"
CHAINS = (BITCOIN, ETHEREUM)
#: SoftHSM2 as Debian installs it: the embedded default token's module.
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@dataclass(frozen=True, slots=True)
class HsmConfig:
    """The PKCS#11 module and tokens: ``hot`` signs deposits' sweeps and withdrawals, ``cold``
    (another token, or another slot of a real HSM) the cold wallet's share."""

    module: str = SOFTHSM_MODULE
    #: the SoftHSM2 tokens' folder when the venue makes them itself; None ("" or absent):
    #: ``<data_dir>/hsm`` of the data folder in use (``softhsm_folder``), so that it moves
    #: with the data folder (``--data-dir``)
    softhsm_dir: Path | None = None
    hot_token: str = "venue-hot"
    cold_token: str = "venue-cold"
    #: the user PIN's file ("": <softhsm folder>/user.pin, made with the first token:
    #: ``custody.softhsm.open_token``); the environment variable VENUE_HSM_PIN wins over the
    #: file when set
    pin_file: Path | None = None

    def softhsm_folder(self, data_dir: Path) -> Path:
        """The SoftHSM2 tokens' folder for a venue whose data folder is ``data_dir``."""
        return self.softhsm_dir if self.softhsm_dir is not None else data_dir / "hsm"


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """One chain's node. ``rpc_url`` "" runs the embedded test chain in its own process under
    ``<data_dir>/chains/<chain>`` (tests and the demo); a real node's URL in production."""

    name: str
    rpc_url: str = ""
    rpc_user: str = ""
    rpc_password_file: Path | None = None
    network: str = "regtest"  # Bitcoin: regtest, testnet or bitcoin
    #: Ethereum: the ERC-20 contracts by asset ("": the test chain's own deployment)
    tokens: Mapping[str, str] = field(default_factory=dict)
    poll_ms: int = 1000
    #: the embedded test chain mines a block this often (0: only when asked); real nodes: unused
    test_block_ms: int = 0


@dataclass(frozen=True, slots=True)
class AssetRules:
    """What custody does with one asset. Amounts in the venue's minor units."""

    asset: str
    chain: str
    chain_decimals: int  # the chain's unit: BTC 8, ETH 18, an ERC-20 its own (USDT 6)
    contract: bool  # an ERC-20 on its chain (shares the chain's deposit address)
    confirmations: int  # a deposit is credited at this many
    withdraw_fee: int  # the network fee deducted from a withdrawal, as Binance does
    withdraw_min: int
    #: a withdrawal of more than this waits for the approvers (m of n)
    approval_above: int
    #: per account and UTC day of sequencer time
    daily_limit: int
    #: the hot wallet's band, percent of the asset's holdings (2 to 10 by default)
    hot_min_pct: int = 2
    hot_max_pct: int = 10


@dataclass(frozen=True, slots=True)
class CustodyConfig:
    enabled: bool
    hsm: HsmConfig
    chains: Mapping[str, ChainConfig]
    assets: Mapping[str, AssetRules]
    #: approvals a held withdrawal or refill needs (never the requester's own)
    approvals_required: int = 1
    #: a new whitelist address may be used this long after it was added
    whitelist_cooldown_s: int = 86400
    #: funds deposited this recently may not be withdrawn
    deposit_hold_s: int = 0
    #: withdrawals are batched per asset over this window
    batch_window_ms: int = 2000


def read_custody(root: Table, assets: Mapping[str, int], data_dir: Path) -> CustodyConfig | None:
    """``[custody]``, optional; ``assets`` are the venue's (asset -> decimals)."""
    if "custody" not in root:
        return None
    table = root.table("custody")
    enabled = table.optional_boolean("enabled", True)
    hsm = _read_hsm(table, data_dir)
    chains: dict[str, ChainConfig] = {}
    if "chains" in table:
        chains_table = table.table("chains")
        for name, _ in chains_table.items():
            if name not in CHAINS:
                chains_table.fail(name, f"unknown chain (expected one of: {', '.join(CHAINS)})")
            chains[name] = _read_chain(chains_table.table(name), name, data_dir)
        chains_table.finish()
    rules: dict[str, AssetRules] = {}
    if "assets" in table:
        assets_table = table.table("assets")
        for code, _ in assets_table.items():
            if code not in assets:
                assets_table.fail(code, "not one of the venue's [[assets]]")
            rule = _read_asset(assets_table.table(code), code, assets[code])
            if rule.chain not in chains:
                assets_table.fail(code, f"its chain {rule.chain!r} has no [custody.chains] entry")
            rules[code] = rule
        assets_table.finish()
    config = CustodyConfig(
        enabled=enabled,
        hsm=hsm,
        chains=chains,
        assets=rules,
        approvals_required=table.optional_integer("approvals_required", 1, 1, 16),
        whitelist_cooldown_s=table.optional_integer("whitelist_cooldown_s", 86400, 0, 365 * 86400),
        deposit_hold_s=table.optional_integer("deposit_hold_s", 0, 0, 365 * 86400),
        batch_window_ms=table.optional_integer("batch_window_ms", 2000, 0, 3_600_000),
    )
    table.finish()
    return config


def _read_hsm(table: Table, data_dir: Path) -> HsmConfig:
    if "hsm" not in table:
        return HsmConfig()
    t = table.table("hsm")
    module = t.optional_string("module") or SOFTHSM_MODULE
    softhsm_dir = t.optional_string("softhsm_dir")
    pin_file = t.optional_string("pin_file")
    hot = t.optional_string("hot_token") or "venue-hot"
    cold = t.optional_string("cold_token") or "venue-cold"
    if hot == cold:
        t.fail("cold_token", "must differ from hot_token: cold keys live in their own token")
    config = HsmConfig(
        module=module,
        softhsm_dir=_path(softhsm_dir, data_dir) if softhsm_dir else None,
        hot_token=hot,
        cold_token=cold,
        pin_file=_path(pin_file, data_dir) if pin_file else None,
    )
    t.finish()
    return config


def _read_chain(t: Table, name: str, data_dir: Path) -> ChainConfig:
    url = t.optional_string("rpc_url")
    if url and not url.startswith(("http://", "https://")):
        t.fail("rpc_url", "must be an http:// or https:// URL")
    password = t.optional_string("rpc_password_file")
    network = t.optional_string("network") or "regtest"
    if name == BITCOIN and network not in ("regtest", "testnet", "bitcoin"):
        t.fail("network", "must be regtest, testnet or bitcoin")
    tokens: dict[str, str] = {}
    if "tokens" in t:
        tt = t.table("tokens")
        for asset, value in tt.items():
            if not isinstance(value, str) or not _is_eth_address(value):
                tt.fail(asset, "must be the contract's 0x address (40 hex digits)")
            tokens[asset] = value
    config = ChainConfig(
        name=name,
        rpc_url=url,
        rpc_user=t.optional_string("rpc_user"),
        rpc_password_file=_path(password, data_dir) if password else None,
        network=network,
        tokens=tokens,
        poll_ms=t.optional_integer("poll_ms", 1000, 10, 600_000),
        test_block_ms=t.optional_integer("test_block_ms", 0, 0, 3_600_000),
    )
    t.finish()
    return config


def _read_asset(t: Table, code: str, decimals: int) -> AssetRules:
    chain = t.string("chain")
    if chain not in CHAINS:
        t.fail("chain", f"unknown chain {chain!r} (expected one of: {', '.join(CHAINS)})")
    chain_decimals = t.integer("chain_decimals", minimum=0, maximum=36)
    rules = AssetRules(
        asset=code,
        chain=chain,
        chain_decimals=chain_decimals,
        contract=t.optional_boolean("contract", False),
        confirmations=t.integer("confirmations", minimum=1, maximum=10_000),
        withdraw_fee=_amount(t, "withdraw_fee", decimals, zero=True),
        withdraw_min=_amount(t, "withdraw_min", decimals, zero=False),
        approval_above=_amount(t, "approval_above", decimals, zero=True),
        daily_limit=_amount(t, "daily_limit", decimals, zero=False),
        hot_min_pct=t.optional_integer("hot_min_pct", 2, 0, 100),
        hot_max_pct=t.optional_integer("hot_max_pct", 10, 1, 100),
    )
    if rules.hot_min_pct > rules.hot_max_pct:
        t.fail("hot_min_pct", "must not be above hot_max_pct")
    if rules.withdraw_min <= rules.withdraw_fee:
        t.fail("withdraw_min", "must be above withdraw_fee (nothing would be paid out)")
    t.finish()
    return rules


def _amount(t: Table, key: str, decimals: int, *, zero: bool) -> int:
    number = t.decimal(key)
    scaled = number.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        t.fail(key, f"{number} has more than the asset's {decimals} decimals")
    if number < 0 or (number == 0 and not zero):
        t.fail(key, "must be positive" if not zero else "must not be negative")
    return int(scaled)


def _path(value: str, data_dir: Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() else absolute(str(data_dir / path))


def _is_eth_address(value: str) -> bool:
    return (
        len(value) == 42
        and value[:2] in ("0x", "0X")
        and all(c in "0123456789abcdefABCDEF" for c in value[2:])
    )


def to_chain_units(amount: int, venue_decimals: int, chain_decimals: int) -> int | None:
    """A venue amount in the chain's smallest unit; None when the chain cannot carry it
    exactly (a chain with fewer decimals than the venue, such as USDT's 6 against 8)."""
    if chain_decimals >= venue_decimals:
        return amount * _pow10(chain_decimals - venue_decimals)
    whole, rest = divmod(amount, _pow10(venue_decimals - chain_decimals))
    return None if rest else whole


def from_chain_units(amount: int, venue_decimals: int, chain_decimals: int) -> tuple[int, int]:
    """A chain amount as (venue units rounded down, the remainder in chain units: the dust,
    always 0 when the venue has at least the chain's decimals)."""
    if chain_decimals <= venue_decimals:
        return amount * _pow10(venue_decimals - chain_decimals), 0
    return divmod(amount, _pow10(chain_decimals - venue_decimals))


def decimal_text(amount: int, decimals: int, *, trim: bool = False) -> str:
    """Minor units as the doors write them (``12345, 2 -> "123.45"``); ``trim``: without
    trailing zeros (``"0.5"``), as Binance's wallet history writes amounts."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), _pow10(decimals))
    if not decimals:
        return f"{sign}{whole}"
    text = f"{sign}{whole}.{frac:0{decimals}d}"
    return text.rstrip("0").rstrip(".") if trim else text


def native_asset(config: CustodyConfig, chain: str) -> str:
    """The asset a chain pays its fees in (its one configured asset that is no token)."""
    for rules in config.assets.values():
        if rules.chain == chain and not rules.contract:
            return rules.asset
    return "BTC" if chain == "bitcoin" else "ETH"


def network_of(chain: str) -> str:
    """A chain as Binance names its network (``bitcoin`` -> ``BTC``)."""
    return {"bitcoin": "BTC", "ethereum": "ETH"}.get(chain, chain.upper())


def _pow10(places: int) -> int:
    out: int = 10**places
    return out
