"""Journal encoding of clearing's commands, registered with the engine's codec (tags 32-39).

Tags live in journals on disk: never reuse or renumber one. Importing ``clearing`` registers
them, so any process that reads a journal with clearing commands must import it first.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, TypeVar

from clearing.commands import (
    AccountState,
    AdjustBalance,
    ConfigureFees,
    ConfirmWithdrawal,
    Deposit,
    ReleaseWithdrawal,
    SetAccountState,
    SetFeeSchedule,
    Withdraw,
)
from engine import codec
from engine.errors import CodecError

T = TypeVar("T")
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

    codec.register(tag, cls, enc, dec)


def _state(value: int) -> AccountState:
    try:
        return AccountState(value)
    except ValueError:
        raise CodecError(f"unknown account state {value}") from None


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
