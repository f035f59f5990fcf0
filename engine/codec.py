"""Binary encoding of commands for the journal.

The journal stores every stamped command, and replay decodes them all on start, so the format is
compact and decoding is lean: one precompiled ``struct`` per command for the fixed fields (string
lengths included), then the strings as UTF-8. A payload starts with a one-byte type tag; the tag
registry lets other packages (clearing: deposits, withdrawals...) journal their own commands.

Tags are stable numbers that live in journals on disk: never reuse or renumber one. Tags 1-31 are
the engine's; other packages pick theirs from 32 up.

``encode`` checks every value (integer ranges, enum members, string sizes) and raises
``CodecError``, so nothing reaches the journal that ``decode`` would refuse.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import IntEnum
from typing import Any, TypeVar

from engine.commands import (
    AdjustBalance,
    CancelOrder,
    CancelReplace,
    ChainDeposit,
    ConfigureAccount,
    ConfigureFees,
    ConfigureOtrLimit,
    ConfirmWithdrawal,
    Deposit,
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
from engine.errors import CodecError as CodecError  # re-exported: part of this module's API
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

T = TypeVar("T")
EncodeFn = Callable[[Any], bytes]
DecodeFn = Callable[[bytes, int], Any]

#: Longest string field, in UTF-8 bytes (lengths are stored as unsigned 16-bit).
MAX_STRING_BYTES = 0xFFFF


# -- registry ----------------------------------------------------------------------------------


def _unknown_tag(buf: bytes, off: int) -> Any:
    raise CodecError(f"unknown command tag {buf[off - 1]} (payload of {len(buf)} bytes)")


_ENCODERS: dict[type, tuple[bytes, EncodeFn]] = {}
# Indexed by tag; unregistered tags hold ``_unknown_tag`` so decode needs no test for None.
_DECODERS: list[DecodeFn] = [_unknown_tag] * 256
_CLASSES: list[type | None] = [None] * 256


def register(
    tag: int,
    cls: type[T],
    encode_fn: Callable[[T], bytes],
    decode_fn: Callable[[bytes, int], T],
) -> None:
    """Add a command class (with ``seq``, ``ts`` and ``origin``, as ``Stamped`` says).
    ``encode_fn(obj)`` returns the body (without the tag or the origin);
    ``decode_fn(payload, offset)`` decodes the body starting at ``offset`` and must consume it all.

    Both may raise ``struct.error`` or ``UnicodeError``: the codec turns them into ``CodecError``.
    """
    if not 0 < tag < 256:
        raise ValueError(f"codec tag must be in 1..255, got {tag}")
    if _CLASSES[tag] is not None:
        raise ValueError(f"codec tag {tag} is already registered to {_CLASSES[tag]!r}")
    if cls in _ENCODERS:
        raise ValueError(f"{cls.__name__} is already registered with tag {_ENCODERS[cls][0][0]}")
    _ENCODERS[cls] = (bytes((tag,)), encode_fn)
    _DECODERS[tag] = decode_fn
    _CLASSES[tag] = cls


def unregister(tag: int) -> None:
    """Remove a tag (tests use it to keep the process-wide registry clean)."""
    cls = _CLASSES[tag]
    if cls is None:
        raise ValueError(f"codec tag {tag} is not registered")
    del _ENCODERS[cls]
    _DECODERS[tag] = _unknown_tag
    _CLASSES[tag] = None


def tag_of(cls: type) -> int:
    """The tag a class is registered with."""
    try:
        return _ENCODERS[cls][0][0]
    except KeyError:
        raise CodecError(f"{cls.__name__} is not a registered command class") from None


#: First byte of a payload whose command carries its origin: the origin, then the command's own
#: tag and body. Records journaled before origins existed start with the command's tag.
ORIGIN_TAG = 255
_ORIGIN_HEAD = struct.Struct("<BHHH")  # door, then the UTF-8 lengths of the three strings


def encode(cmd: Any) -> bytes:
    """Encode a registered command (its origin if it has one, then tag byte and body)."""
    try:
        tag, fn = _ENCODERS[type(cmd)]
    except KeyError:
        raise CodecError(f"no codec registered for {type(cmd).__name__}") from None
    try:
        body = tag + fn(cmd)
        origin: Origin | None = cmd.origin
        if origin is None:
            return body
        return _encode_origin(origin) + body
    except struct.error as exc:
        raise CodecError(f"cannot encode {type(cmd).__name__}: {exc} ({cmd!r})") from None
    except UnicodeError as exc:
        raise CodecError(f"cannot encode {type(cmd).__name__}: {exc}") from None


#: Encoded origins by the identity of their object: a door that sends many commands under one
#: origin (a FIX session's orders) encodes it once. Bounded; cleared when full.
_ORIGIN_BYTES: dict[int, tuple[Origin, bytes]] = {}
_ORIGIN_CACHE_SIZE = 4096


def _encode_origin(origin: Origin) -> bytes:
    cached = _ORIGIN_BYTES.get(id(origin))
    if cached is not None and cached[0] is origin:
        return cached[1]
    encoded = _encode_origin_fields(origin)
    if len(_ORIGIN_BYTES) >= _ORIGIN_CACHE_SIZE:
        _ORIGIN_BYTES.clear()
    _ORIGIN_BYTES[id(origin)] = (origin, encoded)
    return encoded


def _encode_origin_fields(origin: Origin) -> bytes:
    door = _enum(_DOORS, origin.door, "origin door")
    principal = _utf8(origin.principal, "origin principal")
    request_id = _utf8(origin.request_id, "origin request id")
    remote = _utf8(origin.remote, "origin remote")
    head = _ORIGIN_HEAD.pack(door, len(principal), len(request_id), len(remote))
    return b"\xff" + head + principal + request_id + remote


def _decode_origin(buf: bytes) -> tuple[Origin, int]:
    """The origin at the start of ``buf`` and the offset of the command's tag after it."""
    door, n1, n2, n3 = _ORIGIN_HEAD.unpack_from(buf, 1)
    start = 1 + _ORIGIN_HEAD.size
    end = start + n1 + n2 + n3
    if end >= len(buf):
        raise CodecError("origin without a command after it")
    principal = buf[start : start + n1].decode()
    request_id = buf[start + n1 : start + n1 + n2].decode()
    remote = buf[start + n1 + n2 : end].decode()
    return Origin(_member(_DOORS, door, "origin door"), principal, request_id, remote), end


def decode(payload: bytes | bytearray | memoryview) -> Any:
    """Decode one payload back into its command object (with its origin, if journaled)."""
    if type(payload) is not bytes:
        payload = bytes(payload)
    try:
        tag = payload[0]
        if tag != ORIGIN_TAG:
            return _DECODERS[tag](payload, 1)
        origin, off = _decode_origin(payload)
        cmd = _DECODERS[payload[off]](payload, off + 1)
        cmd.origin = origin
        return cmd
    except IndexError:
        if not payload:
            raise CodecError("empty payload") from None
        raise
    except struct.error as exc:
        raise CodecError(f"truncated or malformed payload for tag {payload[0]}: {exc}") from None
    except UnicodeError as exc:
        raise CodecError(f"invalid UTF-8 in payload for tag {payload[0]}: {exc}") from None


# -- helpers for the built-in encoders -----------------------------------------------------------

_E = TypeVar("_E", bound=IntEnum)


def _members(enum: type[_E]) -> dict[int, _E]:
    return {int(m): m for m in enum}


_SIDE = _members(Side)
_ORD_TYPE = _members(OrdType)
_TIF = _members(TimeInForce)
_STP = _members(StpMode)
_STATE = _members(InstrumentState)
_SCOPE = _members(MassCancelScope)
_REASON = _members(CancelReason)
_DOORS = _members(Door)


def _enum(table: dict[int, _E], value: int, field: str) -> int:
    """The value of an enum field, refused unless it is a member (decode would fail later)."""
    try:
        return int(table[value])
    except (KeyError, TypeError):
        raise CodecError(f"{field}={value!r} is not a valid value") from None


def _member(table: dict[int, _E], value: int, field: str) -> _E:
    try:
        return table[value]
    except KeyError:
        raise CodecError(f"{field}={value} is not a valid value") from None


def _utf8(value: object, field: str) -> bytes:
    if type(value) is not str:
        raise CodecError(f"{field} must be a str, got {type(value).__name__}")
    raw = value.encode()
    if len(raw) > MAX_STRING_BYTES:
        raise CodecError(f"{field} is {len(raw)} bytes of UTF-8; the limit is {MAX_STRING_BYTES}")
    return raw


def _strings(buf: bytes, start: int, *lengths: int) -> list[str]:
    """Split the string area at ``start`` (which must run to the end of ``buf``)."""
    total = sum(lengths)
    if len(buf) - start != total:
        raise CodecError(f"payload has {len(buf) - start} bytes of strings, header says {total}")
    text = buf[start:].decode()
    out: list[str] = []
    if len(text) == total:  # all ASCII: character offsets are byte offsets
        pos = 0
        for n in lengths:
            out.append(text[pos : pos + n])
            pos += n
        return out
    pos = start
    for n in lengths:
        out.append(buf[pos : pos + n].decode())
        pos += n
    return out


def _check_end(buf: bytes, end: int) -> None:
    if len(buf) != end:
        raise CodecError(f"payload is {len(buf)} bytes, expected {end}")


# -- NewOrder (tag 1) -----------------------------------------------------------------------------
# seq ts account | side ord_type tif stp_mode (one byte each, read as one uint32) | flags
# | qty price | len(instrument, cloid, session)
_NEW = struct.Struct("<QQQIBqqHHH")
# present when flags & 1: stop_price quote_qty display_qty expire_time
_NEW_EXT = struct.Struct("<qqqq")
_new_unpack = _NEW.unpack_from
_new_ext_unpack = _NEW_EXT.unpack_from


def _enum_key(side: int, ord_type: int, tif: int, stp: int) -> int:
    return side | ord_type << 8 | tif << 16 | stp << 24


# Every valid (side, ord_type, tif, stp_mode) combination, keyed by its four bytes read as one
# little-endian uint32: one dict lookup instead of four on the replay path.
_NEW_ENUMS: dict[int, tuple[Side, OrdType, TimeInForce, StpMode]] = {
    _enum_key(a, b, c, d): (a, b, c, d)
    for a in Side
    for b in OrdType
    for c in TimeInForce
    for d in StpMode
}


def _enc_new_order(c: NewOrder) -> bytes:
    instrument = _utf8(c.instrument, "instrument")
    cloid = _utf8(c.client_order_id, "client_order_id")
    session = _utf8(c.session, "session")
    enums = _enum_key(
        _enum(_SIDE, c.side, "side"),
        _enum(_ORD_TYPE, c.ord_type, "ord_type"),
        _enum(_TIF, c.tif, "tif"),
        _enum(_STP, c.stp_mode, "stp_mode"),
    )
    ext = c.stop_price or c.quote_qty or c.display_qty or c.expire_time
    head = _NEW.pack(
        c.seq,
        c.ts,
        c.account,
        enums,
        1 if ext else 0,
        c.qty,
        c.price,
        len(instrument),
        len(cloid),
        len(session),
    )
    if ext:
        head += _NEW_EXT.pack(c.stop_price, c.quote_qty, c.display_qty, c.expire_time)
    return head + instrument + cloid + session


def _dec_new_order(buf: bytes, off: int) -> NewOrder:
    # The hot path of replay: kept inline, no helper calls for the common all-ASCII case.
    seq, ts, account, enums, flags, qty, price, li, lc, ls = _new_unpack(buf, off)
    pos = off + _NEW.size
    if flags == 0:
        stop_price = quote_qty = display_qty = expire_time = 0
    elif flags == 1:
        stop_price, quote_qty, display_qty, expire_time = _new_ext_unpack(buf, pos)
        pos += _NEW_EXT.size
    else:
        raise CodecError(f"NewOrder: unknown flags {flags:#x}")
    try:
        side, ord_type, tif, stp = _NEW_ENUMS[enums]
    except KeyError:
        raise CodecError(
            f"NewOrder: invalid side/ord_type/tif/stp_mode bytes {enums.to_bytes(4, 'little')!r}"
        ) from None
    e1 = li + lc
    total = e1 + ls
    text = buf[pos:].decode()
    if len(text) == total == len(buf) - pos:
        instrument = text[:li]
        cloid = text[li:e1]
        session = text[e1:]
    else:
        instrument, cloid, session = _strings(buf, pos, li, lc, ls)
    return NewOrder(
        account,
        instrument,
        cloid,
        side,
        ord_type,
        qty,
        price,
        tif,
        stop_price,
        quote_qty,
        display_qty,
        expire_time,
        stp,
        session,
        seq,
        ts,
    )


# -- CancelOrder (tag 2) --------------------------------------------------------------------------
_CANCEL = struct.Struct("<QQQQHH")  # seq ts account order_id | len(instrument, cloid)


def _enc_cancel(c: CancelOrder) -> bytes:
    instrument = _utf8(c.instrument, "instrument")
    cloid = _utf8(c.client_order_id, "client_order_id")
    return (
        _CANCEL.pack(c.seq, c.ts, c.account, c.order_id, len(instrument), len(cloid))
        + instrument
        + cloid
    )


def _dec_cancel(buf: bytes, off: int) -> CancelOrder:
    seq, ts, account, order_id, li, lc = _CANCEL.unpack_from(buf, off)
    instrument, cloid = _strings(buf, off + _CANCEL.size, li, lc)
    return CancelOrder(account, instrument, order_id, cloid, seq, ts)


# -- CancelReplace (tag 10) -----------------------------------------------------------------------
# seq ts allow_failure | len(cancel body); then the cancel's body and the new order's, each as
# its own command encodes it (the new order last: its strings run to the end).
_CANCEL_REPLACE = struct.Struct("<QQ?I")


def _enc_cancel_replace(c: CancelReplace) -> bytes:
    cancel = _enc_cancel(c.cancel)
    new = _enc_new_order(c.new)
    return _CANCEL_REPLACE.pack(c.seq, c.ts, c.allow_failure, len(cancel)) + cancel + new


def _dec_cancel_replace(buf: bytes, off: int) -> CancelReplace:
    seq, ts, allow_failure, n = _CANCEL_REPLACE.unpack_from(buf, off)
    pos = off + _CANCEL_REPLACE.size
    if pos + n > len(buf):
        raise CodecError(f"CancelReplace: cancel of {n} bytes past the payload's end")
    cancel = _dec_cancel(buf[pos : pos + n], 0)
    new = _dec_new_order(buf[pos + n :], 0)
    return CancelReplace(cancel, new, allow_failure, seq, ts)


# -- ReplaceOrder (tag 3) -------------------------------------------------------------------------
# seq ts account order_id qty price stop_price | len(instrument, orig_cloid, cloid)
_REPLACE = struct.Struct("<QQQQqqqHHH")


def _enc_replace(c: ReplaceOrder) -> bytes:
    instrument = _utf8(c.instrument, "instrument")
    orig = _utf8(c.orig_client_order_id, "orig_client_order_id")
    cloid = _utf8(c.client_order_id, "client_order_id")
    head = _REPLACE.pack(
        c.seq,
        c.ts,
        c.account,
        c.order_id,
        c.qty,
        c.price,
        c.stop_price,
        len(instrument),
        len(orig),
        len(cloid),
    )
    return head + instrument + orig + cloid


def _dec_replace(buf: bytes, off: int) -> ReplaceOrder:
    seq, ts, account, order_id, qty, price, stop, li, lo, lc = _REPLACE.unpack_from(buf, off)
    instrument, orig, cloid = _strings(buf, off + _REPLACE.size, li, lo, lc)
    return ReplaceOrder(account, instrument, order_id, orig, cloid, qty, price, stop, seq, ts)


# -- MassCancel (tag 4) ---------------------------------------------------------------------------
# seq ts scope account reason | len(instrument, session, request_id)
_MASS = struct.Struct("<QQBQBHHH")


def _enc_mass_cancel(c: MassCancel) -> bytes:
    instrument = _utf8(c.instrument, "instrument")
    session = _utf8(c.session, "session")
    request_id = _utf8(c.request_id, "request_id")
    head = _MASS.pack(
        c.seq,
        c.ts,
        _enum(_SCOPE, c.scope, "scope"),
        c.account,
        _enum(_REASON, c.reason, "reason"),
        len(instrument),
        len(session),
        len(request_id),
    )
    return head + instrument + session + request_id


def _dec_mass_cancel(buf: bytes, off: int) -> MassCancel:
    seq, ts, scope, account, reason, li, ls, lr = _MASS.unpack_from(buf, off)
    instrument, session, request_id = _strings(buf, off + _MASS.size, li, ls, lr)
    return MassCancel(
        _member(_SCOPE, scope, "scope"),
        account,
        instrument,
        session,
        _member(_REASON, reason, "reason"),
        request_id,
        seq,
        ts,
    )


# -- SetInstrumentState (tag 5) -------------------------------------------------------------------
_STATE_S = struct.Struct("<QQBH")  # seq ts state | len(instrument)


def _enc_state(c: SetInstrumentState) -> bytes:
    instrument = _utf8(c.instrument, "instrument")
    state = _enum(_STATE, c.state, "state")
    return _STATE_S.pack(c.seq, c.ts, state, len(instrument)) + instrument


def _dec_state(buf: bytes, off: int) -> SetInstrumentState:
    seq, ts, state, li = _STATE_S.unpack_from(buf, off)
    (instrument,) = _strings(buf, off + _STATE_S.size, li)
    return SetInstrumentState(instrument, _member(_STATE, state, "state"), seq, ts)


# -- SetKillSwitch (tag 6) ------------------------------------------------------------------------
_KILL = struct.Struct("<QQ??")  # seq ts active cancel_orders


def _enc_kill(c: SetKillSwitch) -> bytes:
    return _KILL.pack(c.seq, c.ts, c.active, c.cancel_orders)


def _dec_kill(buf: bytes, off: int) -> SetKillSwitch:
    _check_end(buf, off + _KILL.size)
    seq, ts, active, cancel_orders = _KILL.unpack_from(buf, off)
    return SetKillSwitch(active, cancel_orders, seq, ts)


# -- SetReferencePrice (tag 7) --------------------------------------------------------------------
_REF = struct.Struct("<QQqH")  # seq ts price | len(instrument)


def _enc_ref(c: SetReferencePrice) -> bytes:
    instrument = _utf8(c.instrument, "instrument")
    return _REF.pack(c.seq, c.ts, c.price, len(instrument)) + instrument


def _dec_ref(buf: bytes, off: int) -> SetReferencePrice:
    seq, ts, price, li = _REF.unpack_from(buf, off)
    (instrument,) = _strings(buf, off + _REF.size, li)
    return SetReferencePrice(instrument, price, seq, ts)


# -- ConfigureAccount (tag 8) ---------------------------------------------------------------------
_ACCOUNT = struct.Struct("<QQQQB")  # seq ts account owner stp_default


def _enc_account(c: ConfigureAccount) -> bytes:
    stp = _enum(_STP, c.stp_default, "stp_default")
    return _ACCOUNT.pack(c.seq, c.ts, c.account, c.owner, stp)


def _dec_account(buf: bytes, off: int) -> ConfigureAccount:
    _check_end(buf, off + _ACCOUNT.size)
    seq, ts, account, owner, stp = _ACCOUNT.unpack_from(buf, off)
    return ConfigureAccount(account, owner, _member(_STP, stp, "stp_default"), seq, ts)


# -- Tick (tag 9) ---------------------------------------------------------------------------------
_TICK = struct.Struct("<QQ")  # seq ts


def _enc_tick(c: Tick) -> bytes:
    return _TICK.pack(c.seq, c.ts)


def _dec_tick(buf: bytes, off: int) -> Tick:
    _check_end(buf, off + _TICK.size)
    seq, ts = _TICK.unpack_from(buf, off)
    return Tick(seq, ts)


register(1, NewOrder, _enc_new_order, _dec_new_order)
register(2, CancelOrder, _enc_cancel, _dec_cancel)
register(3, ReplaceOrder, _enc_replace, _dec_replace)
register(4, MassCancel, _enc_mass_cancel, _dec_mass_cancel)
register(5, SetInstrumentState, _enc_state, _dec_state)
register(6, SetKillSwitch, _enc_kill, _dec_kill)
register(7, SetReferencePrice, _enc_ref, _dec_ref)
register(8, ConfigureAccount, _enc_account, _dec_account)
register(9, Tick, _enc_tick, _dec_tick)
register(10, CancelReplace, _enc_cancel_replace, _dec_cancel_replace)


# -- money, accounts, fees and KYC (tags 32-40): strings with 32-bit lengths --------------------

_LEN = struct.Struct("<I")
_MAX_STR = 1 << 20  # the fee configuration is the longest string; a megabyte is plenty


def _strs(*values: str) -> bytes:
    out = bytearray()
    for value in values:
        if not isinstance(value, str):
            raise CodecError(f"expected a string, got {type(value).__name__}")
        raw = value.encode()
        if len(raw) > _MAX_STR:
            raise CodecError(f"string of {len(raw)} bytes is too long")
        out += _LEN.pack(len(raw))
        out += raw
    return bytes(out)


def _read_strs(buf: bytes, off: int, count: int) -> list[str]:
    values = []
    for _ in range(count):
        (n,) = _LEN.unpack_from(buf, off)
        off += 4
        if off + n > len(buf):
            raise CodecError("string runs past the end of the record")
        values.append(bytes(buf[off : off + n]).decode())
        off += n
    if off != len(buf):
        raise CodecError(f"{len(buf) - off} trailing bytes after the record")
    return values


def _simple(
    tag: int,
    cls: type[T],
    fmt: str,
    ints: tuple[str, ...],
    strs: tuple[str, ...],
    build: Callable[[tuple[Any, ...], list[str]], T],
) -> None:
    """Register ``cls`` as ``seq ts <ints...>`` packed with ``fmt`` followed by its strings."""
    fixed = struct.Struct("<QQ" + fmt)

    def enc(c: Any) -> bytes:
        try:
            head = fixed.pack(c.seq, c.ts, *(getattr(c, name) for name in ints))
        except struct.error as exc:
            raise CodecError(f"{cls.__name__}: {exc}") from None
        return head + _strs(*(getattr(c, name) for name in strs))

    def dec(buf: bytes, off: int) -> T:
        values = fixed.unpack_from(buf, off)
        return build(values, _read_strs(buf, off + fixed.size, len(strs)))

    register(tag, cls, enc, dec)


def _state(value: int) -> AccountState:
    try:
        return AccountState(value)
    except ValueError:
        raise CodecError(f"unknown account state {value}") from None


def _tier(value: int) -> KycTier:
    try:
        return KycTier(value)
    except ValueError:
        raise CodecError(f"unknown KYC tier {value}") from None


_simple(32, Deposit, "Qq", ("account", "amount"), ("asset", "ref"),
        lambda v, s: Deposit(v[2], s[0], v[3], s[1], v[0], v[1]))  # fmt: skip
_simple(33, Withdraw, "QqQ", ("account", "amount", "withdrawal_id"), ("asset", "ref"),
        lambda v, s: Withdraw(v[2], s[0], v[3], v[4], s[1], v[0], v[1]))  # fmt: skip
_simple(34, ConfirmWithdrawal, "Q", ("withdrawal_id",), ("ref",),
        lambda v, s: ConfirmWithdrawal(v[2], s[0], v[0], v[1]))  # fmt: skip
_simple(35, ReleaseWithdrawal, "Q", ("withdrawal_id",), ("ref",),
        lambda v, s: ReleaseWithdrawal(v[2], s[0], v[0], v[1]))  # fmt: skip
_simple(36, AdjustBalance, "Qq", ("account", "amount"), ("asset", "ref"),
        lambda v, s: AdjustBalance(v[2], s[0], v[3], s[1], v[0], v[1]))  # fmt: skip
_simple(37, SetAccountState, "QB", ("account", "state"), (),
        lambda v, s: SetAccountState(v[2], _state(v[3]), v[0], v[1]))  # fmt: skip
_simple(38, SetFeeSchedule, "Q", ("account",), ("schedule",),
        lambda v, s: SetFeeSchedule(v[2], s[0], v[0], v[1]))  # fmt: skip
_simple(39, ConfigureFees, "", (), ("spec",),
        lambda v, s: ConfigureFees(s[0], v[0], v[1]))  # fmt: skip
_simple(40, SetKycTier, "QB", ("account", "tier"), ("review_id",),
        lambda v, s: SetKycTier(v[2], _tier(v[3]), s[0], v[0], v[1]))  # fmt: skip
_simple(41, ConfigureOtrLimit, "QQ", ("max_number", "min_messages"), (),
        lambda v, s: ConfigureOtrLimit(v[2], v[3], v[0], v[1]))  # fmt: skip
_simple(42, ChainDeposit, "Qq", ("account", "amount"), ("asset", "ref"),
        lambda v, s: ChainDeposit(v[2], s[0], v[3], s[1], v[0], v[1]))  # fmt: skip
_simple(43, ReverseDeposit, "", (), ("ref", "reason"),
        lambda v, s: ReverseDeposit(s[0], s[1], v[0], v[1]))  # fmt: skip
_simple(44, PayWithdrawal, "Qq", ("withdrawal_id", "fee"), ("ref",),
        lambda v, s: PayWithdrawal(v[2], v[3], s[0], v[0], v[1]))  # fmt: skip
_simple(45, RecordCustody, "qq", ("amount", "fee"),
        ("asset", "source", "target", "fee_asset", "ref"),
        lambda v, s: RecordCustody(s[0], s[1], s[2], v[2], s[3], v[3], s[4], v[0],
                                   v[1]))  # fmt: skip
