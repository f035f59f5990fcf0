"""The alert list's query parameters, read and checked (``GET /v1/surveillance/alerts``).

``type``, ``symbol``, ``account``, ``from``, ``to`` (epoch ms; an alert matches when its window
overlaps ``[from, to]``), ``state``, ``limit`` (1 to 1000, default 100) and ``cursor`` (the
``next`` link's, opaque). Anything else, a value given twice or a malformed one is refused with
``QueryError`` naming the parameter: nothing is guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from surveillance.alerts import AlertType

__all__ = [
    "ALERT_STATES",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "AlertQuery",
    "QueryError",
    "parse_alert_query",
]

#: An alert's states: raised and not yet looked at, held by an open case, closed with its case.
OPEN, IN_CASE, CLOSED = "OPEN", "IN_CASE", "CLOSED"
ALERT_STATES = (OPEN, IN_CASE, CLOSED)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_MAX_INT64 = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9._/-]{0,31}")
_CURSOR = re.compile(r"([0-9]{1,19})\.([0-9]{1,19})")
_NAMES = ("type", "symbol", "account", "from", "to", "state", "limit", "cursor")


class QueryError(ValueError):
    """A parameter that cannot be used; ``str()`` is the message for the caller."""

    def __init__(self, name: str, msg: str) -> None:
        self.name = name
        super().__init__(msg)


@dataclass(frozen=True, slots=True)
class AlertQuery:
    type: str | None = None
    symbol: str | None = None
    account: int | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    state: str | None = None
    limit: int = DEFAULT_LIMIT
    #: (updated_ms, alert id) of the last alert of the previous page: this page starts after it
    cursor: tuple[int, int] | None = None

    def params(self, cursor: tuple[int, int] | None = None) -> str:
        """The query string of these filters (and ``cursor``), for a ``next`` link."""
        pairs: list[tuple[str, str]] = []
        for name, value in (
            ("type", self.type),
            ("symbol", self.symbol),
            ("account", self.account),
            ("from", self.from_ms),
            ("to", self.to_ms),
            ("state", self.state),
        ):
            if value is not None:
                pairs.append((name, str(value)))
        if self.limit != DEFAULT_LIMIT:
            pairs.append(("limit", str(self.limit)))
        if cursor is not None:
            pairs.append(("cursor", f"{cursor[0]}.{cursor[1]}"))
        return urlencode(pairs)


def _integer(name: str, text: str, minimum: int = 0, maximum: int = _MAX_INT64) -> int:
    if not _DIGITS.fullmatch(text):
        raise QueryError(name, f"Parameter '{name}' must be a whole number of {minimum} or more.")
    value = int(text)
    if not minimum <= value <= maximum:
        raise QueryError(name, f"Parameter '{name}' must be between {minimum} and {maximum}.")
    return value


def parse_alert_query(params: Mapping[str, str | Sequence[str]]) -> AlertQuery:
    """The query of ``params`` (name to value, or to the list of its values when a parameter
    may have been repeated); ``QueryError`` for the first problem, by the order of ``_NAMES``."""
    values: dict[str, str] = {}
    for name, raw in params.items():
        if name not in _NAMES:
            known = ", ".join(_NAMES)
            shown = " ".join(repr(name)[:40].split())
            raise QueryError(name, f"Parameter {shown} is not known; known are {known}.")
        if not isinstance(raw, str):
            if len(raw) != 1:
                raise QueryError(name, f"Parameter '{name}' is given more than once.")
            raw = raw[0]
        values[name] = raw
    kind = values.get("type")
    if kind is not None and kind not in AlertType.__members__.values():
        known = ", ".join(t.value for t in AlertType)
        raise QueryError("type", f"Parameter 'type' must be one of {known}.")
    symbol = values.get("symbol")
    if symbol is not None and not _SYMBOL.fullmatch(symbol):
        raise QueryError("symbol", "Parameter 'symbol' must be a symbol as BTC-USDT.")
    account_text = values.get("account")
    account = _integer("account", account_text) if account_text is not None else None
    from_text, to_text = values.get("from"), values.get("to")
    from_ms = _integer("from", from_text) if from_text is not None else None
    to_ms = _integer("to", to_text) if to_text is not None else None
    if from_ms is not None and to_ms is not None and from_ms > to_ms:
        raise QueryError("to", "Parameter 'to' must not be before 'from'.")
    state = values.get("state")
    if state is not None and state not in ALERT_STATES:
        raise QueryError("state", f"Parameter 'state' must be one of {', '.join(ALERT_STATES)}.")
    limit_text = values.get("limit")
    limit = _integer("limit", limit_text, 1, MAX_LIMIT) if limit_text is not None else None
    cursor_text = values.get("cursor")
    cursor = None
    if cursor_text is not None:
        match = _CURSOR.fullmatch(cursor_text)
        if match is None or max(int(match[1]), int(match[2])) > _MAX_INT64:
            raise QueryError("cursor", "Parameter 'cursor' is not one this API gave.")
        cursor = (int(match[1]), int(match[2]))
    return AlertQuery(
        type=kind,
        symbol=symbol,
        account=account,
        from_ms=from_ms,
        to_ms=to_ms,
        state=state,
        limit=limit if limit is not None else DEFAULT_LIMIT,
        cursor=cursor,
    )
