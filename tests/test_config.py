"""The configuration loader: the shipped file loads, and every kind of bad input is a ConfigError
whose message names the file and the key."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from engine.types import InstrumentState, StpMode
from venue.config import DEFAULT_CONFIG_PATH, ConfigError, VenueConfig, load_config, parse_config

SHIPPED = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "venue.toml"
    path.write_text(text, encoding="utf-8")
    return path


def edited(*replacements: tuple[str, str]) -> str:
    """The shipped config with each ``old`` replaced (once) by ``new``."""
    text = SHIPPED
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def without_line(start: str) -> str:
    """The shipped config without the first line that starts with ``start``."""
    lines = SHIPPED.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(start))
    return "".join(lines[:index] + lines[index + 1 :])


def error_for(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert str(path) in str(error)
    assert "\n" not in str(error)
    return error


# -- the shipped configuration ------------------------------------------------------------------
def test_shipped_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(DEFAULT_CONFIG_PATH)
    assert isinstance(config, VenueConfig)
    assert config.source == DEFAULT_CONFIG_PATH
    assert config.data_dir == tmp_path / "data"  # relative to the working directory
    assert config.default_stp is StpMode.EXPIRE_TAKER
    assert config.session_end_utc == 0
    assert config.snapshot_every == 100_000
    assert config.journal.segment_mb == 64
    assert config.journal.segment_bytes == 64 * 1024 * 1024
    assert config.journal.fsync is True
    assert config.admin.host == "127.0.0.1"
    assert config.admin.port == 8081
    assert config.symbols == ("BTC-USDT", "ETH-USDT", "ETH-BTC")


def test_shipped_instruments_are_in_integer_units() -> None:
    config = load_config(DEFAULT_CONFIG_PATH)
    btc = config.instrument("BTC-USDT")
    assert (btc.base, btc.quote) == ("BTC", "USDT")
    assert btc.tick_size == Decimal("0.01")
    assert btc.lot_size == Decimal("0.00001")
    assert btc.min_qty == 1
    assert btc.max_qty == 900_000_000
    assert btc.units_to_notional(btc.min_notional) == Decimal("5")
    assert btc.price_band_bps == 1000
    assert btc.reference_price > 0
    assert btc.initial_state is InstrumentState.OPEN
    for spec in config.instruments:
        assert isinstance(spec.min_qty, int)
        assert isinstance(spec.reference_price, int)
        assert spec.reference_price > 0
    with pytest.raises(KeyError):
        config.instrument("DOGE-USDT")


def test_absolute_data_dir_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    config = parse_config(edited(('data_dir = "data"', f'data_dir = "{target}"')))
    assert config.data_dir == target


def test_session_end_with_seconds_and_optional_state() -> None:
    config = parse_config(
        edited(
            ('session_end_utc = "00:00"', 'session_end_utc = "21:30:15"'),
            ('state = "OPEN"', 'state = "HALTED"'),
            ('state = "OPEN"\n', ""),
        )
    )
    assert config.session_end_utc == 21 * 3600 + 30 * 60 + 15
    assert config.instruments[0].initial_state is InstrumentState.HALTED
    assert config.instruments[1].initial_state is InstrumentState.OPEN  # the default


# -- files that cannot be read or parsed --------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not found") as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory"):
        load_config(tmp_path)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, SHIPPED)
    path.chmod(0)
    if os.geteuid() == 0:  # root reads any file: make the read fail as it would for anyone else

        def refuse(self: Path) -> bytes:
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "venue.toml"
    path.write_bytes(b'[venue]\ndata_dir = "\xff"\n')
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(path)


def test_toml_syntax_error(tmp_path: Path) -> None:
    error = error_for(tmp_path, edited(("[journal]", "[journal")))
    assert "not valid TOML" in error.problem
    assert "line" in error.problem


# -- missing and unknown keys -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('data_dir = "data"', "venue.data_dir"),
        ("snapshot_every = 100000", "venue.snapshot_every"),
        ("fsync = true", "journal.fsync"),
        ("port = 8081", "admin.port"),
        ('tick_size = "0.01"', "instruments[0].tick_size"),
        ('reference_price = "3200.00"', "instruments[1].reference_price"),
        ('symbol = "ETH-BTC"', "instruments[2].symbol"),
    ],
)
def test_missing_key(tmp_path: Path, line: str, key: str) -> None:
    error = error_for(tmp_path, without_line(line))
    assert error.key == key
    assert "missing" in error.problem
    assert key in str(error)


def test_missing_section(tmp_path: Path) -> None:
    text = edited(
        ("[admin]", "[other]"),
        ("[admin.approvals]", "[other.approvals]"),
        ('host = "127.0.0.1"', 'x = "1"'),
    )
    error = error_for(tmp_path, text.replace("port = 8081", "y = 1"))
    assert error.key == "admin"
    assert "missing" in error.problem


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    error = error_for(tmp_path, "journal = 1\n" + SHIPPED.replace("[journal]", "[old_journal]"))
    assert error.key == "journal"
    assert "table" in error.problem


def test_no_instruments(tmp_path: Path) -> None:
    without = SHIPPED.split("[[instruments]]")[0]
    error = error_for(tmp_path, without)
    assert error.key == "instruments"
    assert "missing" in error.problem
    error = error_for(tmp_path, "instruments = []\n" + without)
    assert error.key == "instruments"
    assert "at least one" in error.problem


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    error = error_for(tmp_path, edited(("fsync = true", "fsync = true\nfsnyc = false")))
    assert error.key == "journal.fsnyc"
    assert "unknown key" in error.problem
    assert "fsync" in error.problem  # lists the keys it knows


def test_misspelt_key_is_named(tmp_path: Path) -> None:
    error = error_for(tmp_path, edited(("fsync = true", "fsnyc = true")))
    assert error.key == "journal.fsync"
    assert "missing" in error.problem
    assert "'fsnyc'" in error.problem


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    error = error_for(tmp_path, SHIPPED + "\n[rebates]\nmaker_bps = 1\n")
    assert error.key == "rebates"
    assert "unknown" in error.problem


# -- wrong types --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        ("port = 8081", 'port = "8081"', "admin.port", "integer"),
        ("port = 8081", "port = true", "admin.port", "integer"),
        ("port = 8081", "port = 8081.0", "admin.port", "integer"),
        ("fsync = true", 'fsync = "yes"', "journal.fsync", "true or false"),
        ('data_dir = "data"', "data_dir = 3", "venue.data_dir", "string"),
        ('host = "127.0.0.1"', "host = []", "admin.host", "string"),
        ("price_band_bps = 1000", 'price_band_bps = "1000"', "instruments[0].price_band_bps", ""),
        ('tick_size = "0.01"', "tick_size = true", "instruments[0].tick_size", "decimal string"),
    ],
)
def test_wrong_type(tmp_path: Path, old: str, new: str, key: str, expected: str) -> None:
    error = error_for(tmp_path, edited((old, new)))
    assert error.key == key
    assert expected in error.problem


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('tick_size = "0.01"', "tick_size = 0.01", "instruments[0].tick_size"),
        ('min_notional = "5"', "min_notional = 5", "instruments[0].min_notional"),
        (
            'reference_price = "0.03368"',
            "reference_price = 0.03368",
            "instruments[2].reference_price",
        ),
    ],
)
def test_bare_number_where_a_decimal_string_is_required(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    error = error_for(tmp_path, edited((old, new)))
    assert error.key == key
    assert "decimal string in quotes" in error.problem


def test_not_a_decimal(tmp_path: Path) -> None:
    error = error_for(tmp_path, edited(('lot_size = "0.00001"', 'lot_size = "a lot"')))
    assert error.key == "instruments[0].lot_size"
    assert "not a decimal number" in error.problem
    error = error_for(tmp_path, edited(('max_qty = "9000"', 'max_qty = "Infinity"')))
    assert "not a finite number" in error.problem


# -- enumerations and times ---------------------------------------------------------------------
def test_unknown_stp_mode(tmp_path: Path) -> None:
    error = error_for(tmp_path, edited(('"EXPIRE_TAKER"', '"EXPIRE_SOMEONE"')))
    assert error.key == "venue.default_stp"
    assert "EXPIRE_SOMEONE" in error.problem
    assert "EXPIRE_MAKER" in error.problem  # lists the valid names


def test_default_is_not_a_venue_default(tmp_path: Path) -> None:
    error = error_for(tmp_path, edited(('"EXPIRE_TAKER"', '"DEFAULT"')))
    assert error.key == "venue.default_stp"


def test_unknown_instrument_state(tmp_path: Path) -> None:
    error = error_for(tmp_path, edited(('state = "OPEN"', 'state = "open"')))
    assert error.key == "instruments[0].state"
    assert "CANCEL_ONLY" in error.problem


@pytest.mark.parametrize("value", ['"24:00"', '"7:00"', '"12:60"', '"midnight"', "00:00:00"])
def test_bad_session_end(tmp_path: Path, value: str) -> None:
    error = error_for(tmp_path, edited(('session_end_utc = "00:00"', f"session_end_utc = {value}")))
    assert error.key == "venue.session_end_utc"


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("snapshot_every = 100000", "snapshot_every = 0", "venue.snapshot_every"),
        ("segment_mb = 64", "segment_mb = 0", "journal.segment_mb"),
        ("port = 8081", "port = 70000", "admin.port"),
        ("price_band_bps = 1000", "price_band_bps = 10000", "instruments[0].price_band_bps"),
        ("price_band_bps = 1000", "price_band_bps = 0", "instruments[0].price_band_bps"),
    ],
)
def test_integer_out_of_range(tmp_path: Path, old: str, new: str, key: str) -> None:
    error = error_for(tmp_path, edited((old, new)))
    assert error.key == key
    assert "between" in error.problem


# -- instruments --------------------------------------------------------------------------------
def test_duplicate_symbol(tmp_path: Path) -> None:
    error = error_for(tmp_path, edited(('symbol = "ETH-BTC"', 'symbol = "BTC-USDT"')))
    assert error.key == "instruments[2].symbol"
    assert "BTC-USDT" in error.problem
    assert "instruments[0]" in error.problem


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        ('tick_size = "0.01"', 'tick_size = "0"', "instruments[0].tick_size", "positive"),
        ('lot_size = "0.00001"', 'lot_size = "-1"', "instruments[0].lot_size", "positive"),
        (
            'min_qty = "0.00001"',
            'min_qty = "0.000015"',
            "instruments[0].min_qty",
            "multiple of the lot_size",
        ),
        ('min_qty = "0.00001"', 'min_qty = "0"', "instruments[0].min_qty", "positive"),
        ('max_qty = "9000"', 'max_qty = "0"', "instruments[0].max_qty", "below min_qty"),
        ('min_qty = "0.00001"', 'min_qty = "10000"', "instruments[0].max_qty", "below min_qty"),
        ('max_qty = "9000"', 'max_qty = "1e30"', "instruments[0].max_qty", "too large"),
        (
            'reference_price = "95000.00"',
            'reference_price = "95000.001"',
            "instruments[0].reference_price",
            "multiple of the tick_size",
        ),
        (
            'reference_price = "95000.00"',
            'reference_price = "0"',
            "instruments[0].reference_price",
            "positive",
        ),
        ('min_notional = "5"', 'min_notional = "-5"', "instruments[0].min_notional", "negative"),
        ('symbol = "BTC-USDT"', 'symbol = "btc usdt"', "instruments[0].symbol", "not a symbol"),
        ('base = "BTC"', 'base = "bitcoin"', "instruments[0].base", "asset code"),
        ('quote = "USDT"', 'quote = "BTC"', "instruments[0].quote", "both"),
    ],
)
def test_invalid_instrument(tmp_path: Path, old: str, new: str, key: str, problem: str) -> None:
    error = error_for(tmp_path, edited((old, new)))
    assert error.key == key
    assert problem in error.problem


def test_parse_config_names_its_source() -> None:
    with pytest.raises(ConfigError, match=r"^inline: venue\.snapshot_every: "):
        parse_config(edited(("snapshot_every = 100000", "snapshot_every = -1")), source="inline")


# -- clearing: assets, fees, ledger ---------------------------------------------------------
def test_shipped_clearing_sections() -> None:
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.assets == {"BTC": 8, "ETH": 8, "USDT": 8}
    assert config.fees is not None and config.fees.charge_in == "received"
    assert config.fees.schedules["market_maker"].tiers[0].maker_ppm == -100
    assert config.ledger is not None and config.ledger.url.endswith("/ledger.sqlite")


def test_shipped_custody_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(DEFAULT_CONFIG_PATH)
    custody = config.custody
    assert custody is not None and custody.enabled and custody.approvals_required == 1
    hsm = custody.hsm
    assert (hsm.module, hsm.hot_token, hsm.cold_token) == (
        "/usr/lib/softhsm/libsofthsm2.so",
        "venue-hot",
        "venue-cold",
    )
    assert hsm.softhsm_folder(config.data_dir) == tmp_path / "data" / "hsm"
    assert hsm.softhsm_folder(Path("/elsewhere")) == Path("/elsewhere/hsm")  # moves with it
    assert hsm.pin_file is None
    assert {n: (c.rpc_url, c.network) for n, c in custody.chains.items()} == {
        "bitcoin": ("", "regtest"),
        "ethereum": ("", "regtest"),
    }
    btc, eth, usdt = (custody.assets[a] for a in ("BTC", "ETH", "USDT"))
    # venue minor units: 8 decimals for each asset
    assert (btc.chain, btc.chain_decimals, btc.confirmations) == ("bitcoin", 8, 3)
    assert (btc.withdraw_fee, btc.withdraw_min, btc.approval_above) == (50_000, 100_000, 10**8)
    assert btc.daily_limit == 100 * 10**8 and not btc.contract
    assert (eth.chain, eth.chain_decimals, eth.confirmations) == ("ethereum", 18, 12)
    assert (eth.withdraw_fee, eth.withdraw_min, eth.daily_limit) == (500_000, 10**6, 1000 * 10**8)
    assert eth.approval_above == 20 * 10**8
    assert usdt.contract and (usdt.chain, usdt.chain_decimals) == ("ethereum", 6)
    assert (usdt.withdraw_fee, usdt.withdraw_min) == (10**8, 10 * 10**8)
    assert (usdt.approval_above, usdt.daily_limit) == (50_000 * 10**8, 10**6 * 10**8)

    relative = SHIPPED.replace('softhsm_dir = ""', 'softhsm_dir = "keys/hsm"', 1)
    moved = parse_config(relative).custody
    assert moved is not None and moved.hsm.softhsm_dir == tmp_path / "data" / "keys" / "hsm"
    start = SHIPPED.index("# Custody (custody/)")
    assert parse_config(SHIPPED[:start]).custody is None  # optional


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [
        ('code = "USDT"\ndecimals = 8', 'code = "USDT"\ndecimals = 6', "instruments[0]",
         "finer than USDT's 6 decimals"),
        ('code = "ETH"\ndecimals = 8', 'code = "XRP"\ndecimals = 8', "instruments[1]",
         "ETH is not configured"),
        ('code = "BTC"\ndecimals = 8', 'code = "BTC"\ndecimals = 19', "assets[0].decimals",
         "between 0 and 18"),
        ('maker = "0.0010", taker = "0.0010"', 'maker = "-0.0010", taker = "0.0010"',
         "fees.schedules.default.tiers[0].maker", "rebates = true"),
        ('maker = "0.0010", taker = "0.0010"', 'maker = "0.00101", taker = 0.001',
         "fees.schedules.default.tiers[0].taker", "decimal string"),
        ('charge_in = "received"', 'charge_in = "base"', "fees.charge_in", "one of"),
        ('BTC = "95000"', 'DOGE = "0.1"', "fees.reference_prices.DOGE", "not an asset"),
        ('url = ""', 'url = "mysql://x"', "ledger.url", "sqlite:///"),
        ("batch_max = 5000", "batch_max = 0", "ledger.batch_max", "between 1"),
    ],
)  # fmt: skip
def test_clearing_sections_are_checked(
    tmp_path: Path, old: str, new: str, key: str, expected: str
) -> None:
    assert old in SHIPPED
    error = error_for(tmp_path, SHIPPED.replace(old, new, 1))
    assert error.key == key
    assert expected in error.problem


def test_without_assets_there_is_no_clearing(tmp_path: Path) -> None:
    text = SHIPPED[: SHIPPED.index("# Assets:")]
    path = tmp_path / "venue.toml"
    path.write_text(text)
    config = load_config(path)
    assert not config.clearing and config.fees is None and config.ledger is None
    error = error_for(tmp_path, text + '\n[ledger]\nurl = ""\n')
    assert error.key == "ledger" and "[[assets]]" in error.problem


def test_relative_sqlite_ledger_url_is_made_absolute(tmp_path: Path) -> None:
    path = tmp_path / "venue.toml"
    # the ledger's url (a line of its own; the custody chains' rpc_url stay)
    path.write_text(SHIPPED.replace('\nurl = ""', '\nurl = "sqlite:///books/ledger.db"'))
    config = load_config(path)
    assert config.ledger is not None
    assert config.ledger.url == f"sqlite:///{Path.cwd() / 'books/ledger.db'}"


def test_fix_garbled_limit_is_configurable_and_bounded(tmp_path: Path) -> None:
    from venue.config import DEFAULT_CONFIG_PATH, ConfigError, parse_config

    text = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
    config = parse_config(text, "venue.toml")
    assert config.fix is not None and config.fix.max_garbled_per_minute == 20
    changed = text.replace("max_garbled_per_minute = 20", "max_garbled_per_minute = 0")
    off = parse_config(changed, "venue.toml")
    assert off.fix is not None and off.fix.max_garbled_per_minute == 0
    with pytest.raises(ConfigError, match="max_garbled_per_minute"):
        parse_config(text.replace("max_garbled_per_minute = 20", "max_garbled_per_minute = -1"))
