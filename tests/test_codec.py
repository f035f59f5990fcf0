"""The command codec: exact round trips, the tag registry, and refusal of what cannot be stored."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

import engine
from engine import codec
from engine.codec import CodecError, decode, encode, register, unregister
from engine.commands import (
    AdjustBalance,
    CancelOrder,
    CancelReplace,
    ChainDeposit,
    Command,
    ConfigureAccount,
    ConfigureFees,
    ConfigureOtrLimit,
    ConfirmWithdrawal,
    MassCancel,
    NewOrder,
    Origin,
    PayWithdrawal,
    RecordCustody,
    ReleaseWithdrawal,
    ReplaceOrder,
    ReverseDeposit,
    SetAccountState,
    SetFeeSchedule,
    SetInstrumentState,
    SetKillSwitch,
    SetKycTier,
    SetReferencePrice,
    Tick,
    Withdraw,
)
from engine.commands import Deposit as DepositCommand
from engine.types import (
    AccountState,
    CancelReason,
    Door,
    InstrumentState,
    KycTier,
    MassCancelScope,
    OrdType,
    Side,
    StpMode,
    TimeInForce,
)

U64 = 2**64 - 1
I64 = 2**63 - 1

SAMPLES: list[Command] = [
    NewOrder(7, "BTC-USDT", "c1", Side.BUY, OrdType.LIMIT, 100, 65_000, seq=1, ts=10),
    NewOrder(
        U64,
        "ETH-USDT",
        "ordre-été-🚀",
        Side.SELL,
        OrdType.STOP_LOSS_LIMIT,
        qty=I64,
        price=-(2**63),
        tif=TimeInForce.GTD,
        stop_price=123,
        quote_qty=456,
        display_qty=7,
        expire_time=1_700_000_000_000_000_000,
        stp_mode=StpMode.EXPIRE_BOTH,
        session="FIX.4.4:MM1->VENUE",
        seq=U64,
        ts=U64,
    ),
    NewOrder(1, "BTC-USDT", "", Side.BUY, OrdType.MARKET, quote_qty=10**12, seq=3, ts=4),
    CancelOrder(5, "BTC-USDT", order_id=99, seq=5, ts=6),
    CancelOrder(5, "ΔΣ-USDT", client_order_id="标识", seq=7, ts=8),
    ReplaceOrder(5, "BTC-USDT", 0, "orig-ü", "new-ü", 300, 65_001, stop_price=2, seq=9, ts=9),
    CancelReplace(
        CancelOrder(5, "BTC-USDT", client_order_id="old-ü", seq=9, ts=9),
        NewOrder(5, "BTC-USDT", "new-ü", Side.SELL, OrdType.LIMIT, 3, 65_002, seq=9, ts=9),
        allow_failure=True,
        seq=9,
        ts=9,
    ),
    MassCancel(MassCancelScope.ALL, reason=CancelReason.KILL_SWITCH, seq=10, ts=11),
    MassCancel(
        MassCancelScope.ACCOUNT_INSTRUMENT, 5, "BTC-USDT", "sess", CancelReason.MASS_CANCEL, "r1"
    ),
    SetInstrumentState("BTC-USDT", InstrumentState.HALTED, seq=12, ts=13),
    SetKillSwitch(True, False, seq=14, ts=15),
    SetKillSwitch(False, True),
    SetReferencePrice("BTC-USDT", -5, seq=16, ts=17),
    ConfigureAccount(5, 2, StpMode.DECREMENT, seq=18, ts=19),
    Tick(seq=20, ts=21),
    DepositCommand(3, "BTC", 150_000_000, "tx-1", seq=22, ts=23),
    Withdraw(3, "USDT", 10**12, 77, "w-ü", seq=24, ts=25),
    ConfirmWithdrawal(77, "0xabc", seq=26, ts=27),
    ReleaseWithdrawal(78, "refused", seq=28, ts=29),
    AdjustBalance(3, "ETH", -5, "correction", seq=30, ts=31),
    SetAccountState(3, AccountState.FROZEN, seq=32, ts=33),
    SetFeeSchedule(3, "market_maker", seq=34, ts=35),
    ConfigureFees('{"schedules": {}}', seq=36, ts=37),
    SetKycTier(3, KycTier.TIER_2, "review-1", seq=38, ts=39),
    SetKycTier(0, KycTier.INSTITUTIONAL, seq=40, ts=41),
    ConfigureOtrLimit(500, 1000, seq=42, ts=43),
    ConfigureOtrLimit(0, 0, seq=44, ts=45),
    ChainDeposit(3, "ETH", 10**8, "ETH:0xabc:0", seq=46, ts=47),
    ReverseDeposit("ETH:0xabc:0", "reorganisation of 13 blocks", seq=48, ts=49),
    PayWithdrawal(77, 50_000, "0xdef", seq=50, ts=51),
    RecordCustody("USDT", "hot_wallet", "custody_chain", 5, "ETH", 7, "USDT:0xab", seq=52, ts=53),
]

#: The same commands journaled with their origin (the door, who, their request id, from where).
WITH_ORIGIN: list[Command] = [
    NewOrder(
        7,
        "BTC-USDT",
        "c1",
        Side.BUY,
        OrdType.LIMIT,
        100,
        65_000,
        seq=1,
        ts=10,
        origin=Origin(Door.FIX, "FIX.4.4:VENUE->CLIENT1", "c1", "127.0.0.1:50123"),
    ),
    CancelOrder(5, "BTC-USDT", order_id=99, origin=Origin(Door.REST, "key-ü", "", "[::1]:1")),
    Tick(seq=20, ts=21, origin=Origin(Door.SYSTEM, "timer")),
    DepositCommand(3, "BTC", 1, "tx", origin=Origin(Door.CUSTODY, "btc", "txid:0", "")),
    SetAccountState(3, AccountState.ACTIVE, origin=Origin(Door.ADMIN, "", "r" * 64, "h:1")),
]


@pytest.mark.parametrize("cmd", SAMPLES, ids=lambda c: type(c).__name__)
def test_round_trip_is_exact(cmd: Command) -> None:
    payload = encode(cmd)
    back = decode(payload)
    assert back == cmd
    assert type(back) is type(cmd)
    for f in fields(cmd):  # enums come back as their IntEnum, bools as bool
        assert type(getattr(back, f.name)) is type(getattr(cmd, f.name)), f.name
    assert decode(memoryview(payload)) == cmd
    assert decode(bytearray(payload)) == cmd


def test_every_command_class_is_covered() -> None:
    assert {type(c) for c in SAMPLES} == set(get_args(Command))


@pytest.mark.parametrize("cmd", WITH_ORIGIN, ids=lambda c: type(c).__name__)
def test_origin_round_trips_with_its_command(cmd: Command) -> None:
    payload = encode(cmd)
    assert payload[0] == codec.ORIGIN_TAG
    back = decode(payload)
    assert back == cmd and back.origin == cmd.origin
    assert type(back.origin.door) is Door
    bare = decode(payload[payload.index(encode(_without_origin(cmd))) :])
    assert bare.origin is None  # a record without an origin (an older journal) decodes as None


def _without_origin(cmd: Command) -> Command:
    copy = decode(encode(cmd))
    copy.origin = None
    return copy  # type: ignore[no-any-return]


@pytest.mark.parametrize("cmd", WITH_ORIGIN, ids=lambda c: type(c).__name__)
def test_truncated_or_extended_origin_raises(cmd: Command) -> None:
    payload = encode(cmd)
    for cut in range(len(payload)):
        with pytest.raises(CodecError):
            decode(payload[:cut])
    with pytest.raises(CodecError):
        decode(payload + b"x")


def test_invalid_origin_is_refused() -> None:
    try:
        bad = Tick(origin=Origin(99, "x"))  # type: ignore[arg-type]
    except TypeError:
        assert engine.NATIVE  # compiled classes refuse it when built
    else:
        with pytest.raises(CodecError, match="origin door"):
            encode(bad)
    with pytest.raises(CodecError, match="cannot encode Tick"):
        encode(Tick(origin=Origin(Door.FIX, "x", "\ud800")))
    payload = bytearray(encode(Tick(origin=Origin(Door.FIX, "x"))))
    payload[1] = 200  # the door byte
    with pytest.raises(CodecError, match="origin door=200"):
        decode(payload)


def test_plain_limit_order_is_compact() -> None:
    order = NewOrder(12345, "BTC-USDT", "cl-000001", Side.BUY, OrdType.LIMIT, 100, 6_500_000)
    assert len(encode(order)) <= 72


@given(
    account=st.integers(0, U64),
    instrument=st.text(max_size=20),
    cloid=st.text(max_size=40),
    session=st.text(max_size=10),
    side=st.sampled_from(Side),
    ord_type=st.sampled_from(OrdType),
    tif=st.sampled_from(TimeInForce),
    stp=st.sampled_from(StpMode),
    ints=st.lists(st.integers(-(2**63), I64), min_size=6, max_size=6),
    seq=st.integers(0, U64),
    ts=st.integers(0, U64),
)
def test_new_order_round_trip_property(
    account: int,
    instrument: str,
    cloid: str,
    session: str,
    side: Side,
    ord_type: OrdType,
    tif: TimeInForce,
    stp: StpMode,
    ints: list[int],
    seq: int,
    ts: int,
) -> None:
    qty, price, stop, quote, display, expire = ints
    cmd = NewOrder(
        account, instrument, cloid, side, ord_type, qty, price, tif, stop, quote, display, expire
    )
    cmd.stp_mode, cmd.session, cmd.seq, cmd.ts = stp, session, seq, ts
    try:
        payload = encode(cmd)
    except CodecError:
        assert any("\ud800" <= ch <= "\udfff" for ch in instrument + cloid + session)
        return
    assert decode(payload) == cmd


@pytest.mark.parametrize(
    "make",
    [
        lambda: NewOrder(-1, "X", "c", Side.BUY, OrdType.LIMIT, 1, 1),
        lambda: NewOrder(2**64, "X", "c", Side.BUY, OrdType.LIMIT, 1, 1),
        lambda: NewOrder(1, "X", "c", Side.BUY, OrdType.LIMIT, 2**63, 1),
        lambda: NewOrder(1, "X", "c", Side.BUY, OrdType.LIMIT, 1, 1, seq=-1),
        lambda: NewOrder(1, "X", "c", Side.BUY, OrdType.LIMIT, 1, 1, expire_time=2**63),
        lambda: NewOrder(1, "X", "c", Side.BUY, OrdType.LIMIT, 1.5, 1),  # type: ignore[arg-type]
        lambda: NewOrder(1, "X", "c", 3, OrdType.LIMIT, 1, 1),  # type: ignore[arg-type]
        lambda: NewOrder(1, "X", "c", Side.BUY, OrdType.LIMIT, 1, 1, stp_mode=9),  # type: ignore[arg-type]
        lambda: NewOrder(1, "X" * 70_000, "c", Side.BUY, OrdType.LIMIT, 1, 1),
        lambda: NewOrder(1, "X", "\ud800", Side.BUY, OrdType.LIMIT, 1, 1),
        lambda: NewOrder(1, "X", None, Side.BUY, OrdType.LIMIT, 1, 1),  # type: ignore[arg-type]
        lambda: CancelOrder(1, "X", order_id=2**64),
        lambda: ReplaceOrder(1, "X", 1, "", "", -(2**63) - 1, 1),
        lambda: MassCancel(MassCancelScope.ALL, reason=99),  # type: ignore[arg-type]
        lambda: SetInstrumentState("X", 0),  # type: ignore[arg-type]
        lambda: SetReferencePrice("X", 2**63),
        lambda: ConfigureAccount(1, -2, StpMode.NONE),
        lambda: Tick(seq=2**64),
    ],
)
def test_out_of_range_or_invalid_raises_codec_error(make: Callable[[], Command]) -> None:
    try:
        cmd = make()
    except TypeError:
        # Compiled (mypyc) command classes refuse a wrong type when built, so such a command
        # never reaches the codec; the interpreted classes accept it and the codec refuses it.
        assert engine.NATIVE
        return
    with pytest.raises(CodecError):
        encode(cmd)


def test_unregistered_class_raises() -> None:
    @dataclass
    class Unknown:
        x: int

    with pytest.raises(CodecError, match="no codec registered for Unknown"):
        encode(Unknown(1))


@dataclass(slots=True)
class Deposit:
    account: int
    asset: str
    amount: int
    seq: int = 0
    ts: int = 0
    origin: Origin | None = None


_DEPOSIT = struct.Struct("<QQQqH")


def _enc_deposit(d: Deposit) -> bytes:
    raw = d.asset.encode()
    return _DEPOSIT.pack(d.seq, d.ts, d.account, d.amount, len(raw)) + raw


def _dec_deposit(buf: bytes, off: int) -> Deposit:
    seq, ts, account, amount, n = _DEPOSIT.unpack_from(buf, off)
    start = off + _DEPOSIT.size
    return Deposit(account, buf[start : start + n].decode(), amount, seq, ts)


@pytest.fixture
def deposit_tag() -> Iterator[int]:
    register(200, Deposit, _enc_deposit, _dec_deposit)
    yield 200
    unregister(200)


@pytest.mark.usefixtures("deposit_tag")
def test_registered_class_round_trips() -> None:
    dep = Deposit(4, "BTC", 150_000_000, seq=33, ts=44)
    payload = encode(dep)
    assert payload[0] == 200
    assert decode(payload) == dep
    assert codec.tag_of(Deposit) == 200
    with pytest.raises(CodecError, match="cannot encode Deposit"):
        encode(Deposit(-1, "BTC", 1))


@pytest.mark.usefixtures("deposit_tag")
def test_duplicate_tag_or_class_raises() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(200, Tick, _enc_deposit, _dec_deposit)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="already registered"):
        register(1, Deposit, _enc_deposit, _dec_deposit)
    with pytest.raises(ValueError, match="already registered"):
        register(201, Deposit, _enc_deposit, _dec_deposit)
    with pytest.raises(ValueError, match=r"1\.\.255"):
        register(256, Tick, _enc_deposit, _dec_deposit)  # type: ignore[arg-type]


def test_unknown_tag_raises() -> None:
    with pytest.raises(CodecError, match="unknown command tag 201"):
        decode(bytes([201]) + b"\x00" * 20)


def test_unregister_makes_the_tag_unknown_again() -> None:
    register(202, Deposit, _enc_deposit, _dec_deposit)
    payload = encode(Deposit(1, "ETH", 2))
    unregister(202)
    with pytest.raises(CodecError, match="unknown command tag 202"):
        decode(payload)
    with pytest.raises(CodecError, match="no codec registered"):
        encode(Deposit(1, "ETH", 2))


@pytest.mark.parametrize("cmd", SAMPLES, ids=lambda c: type(c).__name__)
def test_truncated_or_extended_payload_raises(cmd: Command) -> None:
    payload = encode(cmd)
    for cut in range(len(payload)):
        with pytest.raises(CodecError):
            decode(payload[:cut])
    with pytest.raises(CodecError):
        decode(payload + b"x")


def test_invalid_enum_byte_raises() -> None:
    payload = bytearray(encode(SetInstrumentState("X", InstrumentState.OPEN)))
    payload[17] = 0  # the state byte: tag, seq, ts, then state
    with pytest.raises(CodecError, match="state=0"):
        decode(payload)
    order = bytearray(encode(NewOrder(1, "X", "c", Side.BUY, OrdType.LIMIT, 1, 1)))
    order[25] = 9  # the side byte: tag, seq, ts, account, then side
    with pytest.raises(CodecError, match="side/ord_type"):
        decode(order)


def test_invalid_utf8_raises() -> None:
    payload = bytearray(encode(CancelOrder(1, "XY", client_order_id="ab")))
    payload[-1] = 0xFF
    with pytest.raises(CodecError):
        decode(payload)


def test_empty_payload_raises() -> None:
    with pytest.raises(CodecError, match="empty"):
        decode(b"")
