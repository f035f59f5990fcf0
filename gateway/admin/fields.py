"""Reading an admin request: its fields (JSON body over the query string and the path), each
checked for its form, and the errors answered as ``{"code", "msg"}`` with Binance's codes.

Values are converted to units and checked against the venue's rules by the shared edge
(``gateway.edge``); a refusal there is answered with the code the edge gives its reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import IntEnum
from typing import Any, NoReturn, TypeVar

from engine.instrument import InstrumentSpec
from gateway.edge.refusals import Refusal, binance_error
from gateway.edge.requests import CLIENT_ORDER_ID, Edge

# Error codes (Binance Spot numbering where one fits).
UNKNOWN = -1000
INTERNAL = -1001
FILTER_FAILURE = -1013
ILLEGAL_CHARS = -1100
MANDATORY = -1102
UNKNOWN_PARAM = -1103
NOT_REQUIRED = -1106
INVALID_TIF = -1115
INVALID_TYPE = -1116
INVALID_SIDE = -1117
BAD_SYMBOL = -1121
INVALID_PARAM = -1130
NOT_FOUND = -1

_MAX_INT = 2**63 - 1
_MAX_DEPTH = 5000
_DECIMAL = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")
_SIGNED_DECIMAL = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?")
_REF = re.compile(r"[ -~]{0,128}")  # printable ASCII
_SCHEDULE = re.compile(r"[A-Za-z0-9_-]{0,64}")
_CLIENT_ID = CLIENT_ORDER_ID  # a new id: the edge's rule
#: An id as the order was given it (orders entered over FIX before the edge's rule may differ).
_ANY_ID = re.compile(r"[!-~]{1,64}")
_SESSION = re.compile(r"[.A-Za-z0-9:/_-]{1,64}")
_NS_PER_MS = 1_000_000

_E = TypeVar("_E", bound=IntEnum)


class AdminError(Exception):
    """A request refused at the edge: answered with ``status`` and ``{"code", "msg"}``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


def _fail(code: int, msg: str) -> NoReturn:
    raise AdminError(code, msg)


# -- reading a request's fields -----------------------------------------------------------------
class Fields:
    """The request's fields (JSON body merged over the query string); each getter marks its key
    used, and ``finish`` refuses the rest, so a misspelt field never goes unnoticed."""

    def __init__(
        self,
        data: Mapping[str, Any],
        config_specs: Mapping[str, InstrumentSpec],
        assets: Mapping[str, int] | None = None,
        edge: Edge | None = None,
    ) -> None:
        self._data = dict(data)
        self._used: set[str] = set()
        self._specs = config_specs
        self.assets: Mapping[str, int] = assets or {}
        self.edge = edge if edge is not None else Edge(config_specs.values(), self.assets)

    def has(self, key: str) -> bool:
        self._used.add(key)
        return self._data.get(key) not in (None, "")

    def _raw(self, key: str) -> Any:
        if not self.has(key):
            _fail(
                MANDATORY,
                f"Mandatory parameter '{key}' was not sent, was empty/null, or malformed.",
            )
        return self._data[key]

    def as_strings(self) -> dict[str, str]:
        """Every field as the string a query string would carry (booleans ``true``/``false``),
        to be read again later by the same getters (an approval keeps its request so)."""
        shown: dict[str, str] = {}
        for key, value in self._data.items():
            if isinstance(value, bool):
                shown[key] = "true" if value else "false"
            elif isinstance(value, list):
                shown[key] = ",".join(str(v) for v in value)
            elif value is not None:
                shown[key] = str(value)
        return shown

    def finish(self) -> None:
        unknown = sorted(k for k in self._data if k not in self._used)
        if unknown:
            _fail(UNKNOWN_PARAM, f"An unknown parameter was sent: '{unknown[0]}'.")

    def refuse(self, key: str, why: str) -> None:
        """Refuse ``key`` if it was sent (a field that makes no sense for this request)."""
        if self.has(key):
            _fail(NOT_REQUIRED, f"Parameter '{key}' sent when not required ({why}).")

    def integer(self, key: str, *, minimum: int = 0, default: int | None = None) -> int:
        if default is not None and not self.has(key):
            return default
        value = self._raw(key)
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(INVALID_PARAM, f"Parameter '{key}' must be an integer, got {_show(value)}.")
        if not minimum <= value <= _MAX_INT:
            _fail(INVALID_PARAM, f"Parameter '{key}' must be between {minimum} and {_MAX_INT}.")
        return value

    def account(self, key: str = "account") -> int:
        return self.integer(key, minimum=1)

    def boolean(self, key: str, default: bool | None = None) -> bool:
        if default is not None and not self.has(key):
            return default
        value = self._raw(key)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            _fail(INVALID_PARAM, f"Parameter '{key}' must be true or false, got {_show(value)}.")
        return value

    def text(self, key: str, pattern: re.Pattern[str], default: str | None = None) -> str:
        if default is not None and not self.has(key):
            return default
        value = self._raw(key)
        if not isinstance(value, str):
            _fail(INVALID_PARAM, f"Parameter '{key}' must be a string, got {_show(value)}.")
        if not pattern.fullmatch(value):
            _fail(ILLEGAL_CHARS, f"Illegal characters found in parameter '{key}': {value!r}.")
        return value

    def string(self, key: str, default: str | None = None) -> str:
        """Any string (the store it goes to checks its content)."""
        if default is not None and not self.has(key):
            return default
        value = self._raw(key)
        if not isinstance(value, str):
            _fail(INVALID_PARAM, f"Parameter '{key}' must be a string, got {_show(value)}.")
        return value

    def strings(self, key: str, default: list[str] | None = None) -> list[str]:
        """A list of strings: a JSON array, or comma-separated in the query string."""
        if default is not None and not self.has(key):
            return default
        value = self._raw(key)
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            _fail(
                INVALID_PARAM, f"Parameter '{key}' must be a list of strings, got {_show(value)}."
            )
        return list(value)

    def integers(self, key: str, default: list[int] | None = None) -> list[int]:
        """A list of non-negative integers: a JSON array, or comma-separated."""
        if default is not None and not self.has(key):
            return default
        value = self._raw(key)
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            _fail(INVALID_PARAM, f"Parameter '{key}' must be a list of integers.")
        out = []
        for item in value:
            if isinstance(item, str) and item.isascii() and item.isdigit() and len(item) < 19:
                item = int(item)
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= _MAX_INT:
                _fail(INVALID_PARAM, f"Parameter '{key}' must be a list of integers.")
            out.append(item)
        return out

    def symbol(self, key: str = "symbol") -> InstrumentSpec:
        value = self._raw(key)
        spec = self._specs.get(value) if isinstance(value, str) else None
        if spec is None:
            known = ", ".join(sorted(self._specs))
            _fail(BAD_SYMBOL, f"Invalid symbol {_show(value)} (this venue lists: {known}).")
        return spec

    def enum(self, key: str, kind: type[_E], code: int = INVALID_PARAM) -> _E:
        value = self._raw(key)
        if isinstance(value, str):
            for member in kind:
                if member.name == value:
                    return member
        names = ", ".join(m.name for m in kind)
        _fail(code, f"Invalid {key} {_show(value)} (expected one of: {names}).")

    def decimal(self, key: str, *, signed: bool = False) -> str:
        """A decimal as a string such as "0.01" (an exact JSON number is taken too), checked
        for its form here and converted to units by the edge."""
        value = self._raw(key)
        if isinstance(value, Decimal | int) and not isinstance(value, bool):
            value = format(Decimal(value), "f")
        pattern = _SIGNED_DECIMAL if signed else _DECIMAL
        if not isinstance(value, str) or not pattern.fullmatch(value):
            kind = (
                'decimal string such as "-1.5"'
                if signed
                else 'positive decimal string such as "0.01"'
            )
            _fail(INVALID_PARAM, f"Parameter '{key}' must be a {kind}, got {_show(value)}.")
        return value

    def optional_decimal(self, key: str) -> str | None:
        return self.decimal(key) if self.has(key) else None

    def amount(self, key: str, asset: str, signed: bool = False) -> int:
        """An amount of ``asset`` in its minor units, exactly (the edge's units codec)."""
        value = self.decimal(key, signed=signed)
        units = edge_call(self.edge.amount, asset, value, key, signed=signed)
        if units == 0:
            _fail(INVALID_PARAM, f"Parameter '{key}' must not be zero.")
        return units

    def asset(self, key: str = "asset") -> str:
        value = self._raw(key)
        if not isinstance(value, str) or value not in self.assets:
            known = ", ".join(sorted(self.assets))
            _fail(INVALID_PARAM, f"Invalid asset {_show(value)} (this venue lists: {known}).")
        return value

    def price(self, key: str, spec: InstrumentSpec) -> int:
        """A price in ticks (a reference price: not an order's, which the edge converts)."""
        return edge_call(self.edge.price, spec.symbol, self.decimal(key), key)


_T = TypeVar("_T")


def edge_call(fn: Callable[..., _T], *args: Any, **kw: Any) -> _T:
    """Call the shared edge; a refusal is answered with Binance's code and text for it."""
    try:
        return fn(*args, **kw)
    except Refusal as exc:
        error = binance_error(exc.reason, exc.field, exc.kind)
        raise AdminError(error.code, f"{error.msg} ({exc.text})", error.status) from None


def _show(value: object) -> str:
    shown = json.dumps(value, default=str)
    return shown if len(shown) <= 60 else shown[:57] + "..."
