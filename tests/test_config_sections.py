"""Each package reads its own sections of the configuration file, with the engine's shared reader;
the composition root (venue/config.py) only dispatches top-level keys and names no key inside
a section. tests/test_config.py checks the whole file through ``load_config``."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import venue.config
from clearing.config import KycConfig, LedgerConfig, read_clearing, read_kyc
from engine.config import JournalConfig, VenueSettings, read_instruments, read_journal, read_venue
from engine.configfile import ConfigError, Table, absolute
from engine.types import KycTier, StpMode
from gateway.adminconfig import AdminConfig, read_admin
from gateway.fix.config import read_fix
from venue.config import DEFAULT_CONFIG_PATH, parse_config

REPO = Path(__file__).resolve().parent.parent
SHIPPED = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")

BTC_USDT = """
[[instruments]]
symbol = "BTC-USDT"
base = "BTC"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.00001"
min_qty = "0.00001"
max_qty = "9000"
min_notional = "5"
price_band_bps = 1000
reference_price = "95000.00"
"""


def root_of(text: str) -> Table:
    return Table(tomllib.loads(text), "", "t.toml")


def error_of(read: object, *args: object) -> ConfigError:
    assert callable(read)
    with pytest.raises(ConfigError) as caught:
        read(*args)
    return caught.value


# -- the shared reader ----------------------------------------------------------------------------
def test_the_reader_names_the_file_and_the_full_key() -> None:
    root = root_of("[a]\nb = [{c = 1}]\n")
    inner = root.table("a").tables("b")[0]
    error = error_of(inner.string, "c")
    assert (error.source, error.key) == ("t.toml", "a.b[0].c")
    assert str(error) == "t.toml: a.b[0].c: must be a string, got integer 1"


def test_the_reader_refuses_what_nobody_read_and_hints_at_misspellings() -> None:
    table = root_of("[s]\nfsnyc = true\n").table("s")
    assert "'fsnyc' a misspelling" in error_of(table.boolean, "fsync").problem
    root = root_of("[s]\nkept = 1\nextra = 2\n")
    section = root.table("s")
    section.integer("kept", minimum=0)
    error = error_of(section.finish)
    assert error.key == "s.extra" and error.problem == "unknown key (expected one of: kept)"
    error = error_of(root_of("x = 1\n").finish)
    assert error.problem == "unknown top-level key or section (expected one of: )"


def test_a_relative_path_resolves_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert absolute("data") == tmp_path / "data"
    assert absolute("/srv/venue") == Path("/srv/venue")


# -- engine: [venue], [journal], [[instruments]] --------------------------------------------------
def test_the_engine_reads_its_sections_alone() -> None:
    root = root_of(
        '[venue]\ndata_dir = "/srv/v"\ndefault_stp = "NONE"\nsession_end_utc = "21:00"\n'
        "snapshot_every = 10\n[journal]\nsegment_mb = 8\nfsync = false\n" + BTC_USDT
    )
    assert read_venue(root) == VenueSettings(Path("/srv/v"), StpMode.NONE, 21 * 3600, 10)
    assert read_journal(root) == JournalConfig(segment_mb=8, fsync=False)
    (spec,) = read_instruments(root)
    assert (spec.symbol, spec.min_qty, spec.max_qty) == ("BTC-USDT", 1, 900_000_000)
    root.finish()


def test_an_instrument_error_names_its_table() -> None:
    root = root_of(BTC_USDT + BTC_USDT.replace('"0.01"', '"0"'))
    error = error_of(read_instruments, root)
    assert (error.key, error.problem) == ("instruments[1].tick_size", "must be positive, got 0")


# -- clearing: [[assets]], [fees], [ledger] -------------------------------------------------------
ASSETS = '[[assets]]\ncode = "BTC"\ndecimals = 8\n[[assets]]\ncode = "USDT"\ndecimals = 8\n'


def test_clearing_reads_its_sections_alone() -> None:
    instruments = read_instruments(root_of(BTC_USDT))
    root = root_of(ASSETS)
    clearing = read_clearing(root, instruments, Path("/srv/v"))
    assert clearing.assets == {"BTC": 8, "USDT": 8}
    assert clearing.fees is None
    assert clearing.ledger == LedgerConfig("sqlite:////srv/v/ledger.sqlite", 5000, 60)
    root.finish()
    nothing = read_clearing(root_of(""), instruments, Path("/srv/v"))
    assert (nothing.assets, nothing.fees, nothing.ledger) == ({}, None, None)


def test_clearing_checks_against_the_instruments_it_is_given() -> None:
    instruments = read_instruments(root_of(BTC_USDT))
    error = error_of(read_clearing, root_of(ASSETS.replace("USDT", "USDC")), instruments, Path())
    assert error.key == "instruments[0]" and "USDT is not configured" in error.problem
    error = error_of(read_clearing, root_of("[ledger]\nbatch_max = 10\n"), instruments, Path())
    assert error.key == "ledger" and "needs [[assets]]" in error.problem


def test_clearing_reads_kyc_alone() -> None:
    root = root_of('[kyc]\ndefault_tier = "2"\nwebhook_secret_file = "kyc/secret"\n')
    kyc = read_kyc(root, Path("/srv/v"), {"USDT": 8})
    assert kyc == KycConfig(KycTier.TIER_2, Path("/srv/v/kyc/secret"))
    root.finish()
    assert read_kyc(root_of(""), Path("/srv/v"), {}) == KycConfig(KycTier.INSTITUTIONAL, None)
    error = error_of(read_kyc, root_of('[kyc]\ndefault_tier = "1"\n'), Path(), {})
    assert error.key == "kyc" and "needs [[assets]]" in error.problem
    error = error_of(read_kyc, root_of('[kyc]\ndefault_tier = "TIER_1"\n'), Path(), {"A": 1})
    assert error.key == "kyc.default_tier" and "INSTITUTIONAL" in error.problem


# -- gateway: [admin], [fix] ----------------------------------------------------------------------
def test_the_gateway_reads_admin_alone() -> None:
    assert read_admin(root_of('[admin]\nhost = "::1"\nport = 0\n')) == AdminConfig("::1", 0)
    error = error_of(read_admin, root_of('[admin]\nhost = "::1"\nport = -1\n'))
    assert error.key == "admin.port"


def test_the_gateway_reads_fix_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the dictionary is then found in the repository
    fix = (
        '[fix]\nhost = "127.0.0.1"\nport = 0\nsender_comp_id = "VENUE"\n'
        'dictionary = "fix_specs/FIX44-venue.xml"\napplication = "venue"\n'
        '[[fix.sessions]]\ntarget_comp_id = "MD"\ntype = "market_data"\n'
    )
    assert read_fix(root_of("")) is None
    config = read_fix(root_of(fix))
    assert config is not None
    assert config.dictionary == REPO / "fix_specs" / "FIX44-venue.xml"
    assert [(s.target_comp_id, s.kind, s.accounts) for s in config.sessions] == [
        ("MD", "market_data", ())
    ]
    error = error_of(read_fix, root_of(fix.replace("127.0.0.1", "0.0.0.0")))
    assert error.key == "fix.sessions[0]" and "only while" in error.problem


# -- the composition root only dispatches ---------------------------------------------------------
def keys_inside_sections(document: Mapping[str, object]) -> Iterator[str]:
    for value in document.values():
        tables = value if isinstance(value, list) else [value]
        for table in tables:
            if isinstance(table, dict):
                yield from table
                yield from keys_inside_sections(table)


def test_the_composition_root_names_no_key_inside_a_section() -> None:
    """A key added to or changed in a section is its package's business alone."""
    inside: set[str] = set()
    for name in ("venue.toml", "conformance.toml"):
        inside |= set(keys_inside_sections(tomllib.loads((REPO / "config" / name).read_text())))
    assert {"data_dir", "segment_mb", "port", "decimals", "url", "target_comp_id"} <= inside
    source = (REPO / "venue" / "config.py").read_text(encoding="utf-8")
    strings = {
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    assert strings & inside == set()


def test_a_section_a_package_adds_is_dispatched_without_its_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A package that grows its sections (here the gateway, with a new [console] section and a
    new key in [admin]) changes its own reader; the composition root refuses whatever no reader
    read, without a list of keys of its own."""
    extra = '\n[console]\nport = 8083\n[admin.tls]\ncert = "c.pem"\n'
    text = SHIPPED.replace("[admin]\n", "[admin]\nworkers = 4\n", 1) + extra
    assert "unknown key" in error_of(parse_config, text).problem  # admin.workers

    seen: dict[str, object] = {}

    def read_admin_grown(root: Table) -> AdminConfig:
        table = root.table("admin")
        seen["workers"] = table.integer("workers", minimum=1, maximum=64)
        seen["cert"] = table.table("tls").string("cert")
        seen["approvals"] = sorted(k for k, _ in table.table("approvals").items())
        admin = AdminConfig(table.string("host"), table.integer("port", minimum=0))
        table.finish()
        seen["console"] = root.table("console").integer("port", minimum=0)
        return admin

    monkeypatch.setattr(venue.config, "read_admin", read_admin_grown)
    config = parse_config(text)
    assert config.admin == AdminConfig("127.0.0.1", 8081)
    assert seen == {
        "workers": 4,
        "cert": "c.pem",
        "console": 8083,
        "approvals": ["adjustment_above", "required"],
    }
    error = error_of(parse_config, text + "\n[cases]\nwindow_s = 60\n")
    assert error.key == "cases" and "unknown top-level key" in error.problem
