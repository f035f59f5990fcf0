"""Rate limits of the REST and WebSocket door, counted as Binance counts them.

Pure and clock-injected: every call takes ``now_ms``. Binance publishes its limits in
``exchangeInfo.rateLimits`` (rest-api.md "LIMITS", enums.md "Rate limiters"):

- ``REQUEST_WEIGHT`` 6000 per minute per IP; each endpoint has a weight; the used weight is
  sent back in ``X-MBX-USED-WEIGHT-1M``. Over the limit: HTTP 429, -1003, ``Retry-After``.
- ``RAW_REQUESTS`` per 5 minutes per IP, whatever the weight (300000 since 2026-04-02,
  CHANGELOG.md; 61000 before).
- ``ORDERS`` per account: 50 per 10 seconds and 160000 per day (the docs' exchangeInfo and
  ``GET /api/v3/rateLimit/order`` examples), sent back in ``X-MBX-ORDER-COUNT-10S`` and
  ``-1D``. Over the limit: HTTP 429, -1015.
- An IP that keeps sending after its 429s is banned: HTTP 418, -1003, ``Retry-After`` until
  the end of the ban. Bans "scale in duration for repeat offenders, from 2 minutes to 3
  days": here 2 minutes, doubled at each new ban, at most 3 days; an IP whose last ban ended
  more than ``ban_forget_ms`` ago starts again at 2 minutes.
- WebSocket (web-socket-streams.md "WebSocket Limits"): 5 incoming messages per second per
  connection (beyond: disconnect), 1024 streams per connection, 300 connection attempts per
  5 minutes per IP.

Counting is by fixed, clock-aligned windows (the minute, the 10 seconds, the UTC day, the
5 minutes since the epoch), which is what Binance's interval names and its
``intervalNum``/``intervalLetter`` headers describe: the count falls to zero when the
interval turns. Memory is bounded: at most ``max_tracked_ips`` IPs and ``max_tracked_accounts``
accounts are remembered, the least recently seen forgotten first (its windows are the
oldest); ``sweep`` drops entries whose windows have all ended. Bans are kept apart, so a flood
of new addresses cannot evict a banned IP before its ban is over.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "OK",
    "REFUSAL_KINDS",
    "LimitConfig",
    "RateLimiter",
    "Verdict",
    "WsConnectionLimits",
    "WsLimiter",
]

#: What ``RateLimiter.refused`` counts: the request weight or raw request count of an address
#: over its limit (429), an address banned (418), an account's orders over their limit.
REFUSAL_KINDS = ("REQUEST_WEIGHT", "RAW_REQUESTS", "IP_BANNED", "ORDERS")

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
DAY_MS = 24 * 60 * MINUTE_MS


@dataclass(frozen=True, slots=True)
class LimitConfig:
    """Binance's published numbers by default; an operator may change any of them."""

    request_weight_per_minute: int = 6000
    raw_requests_per_5m: int = 300_000
    orders_per_10s: int = 50
    orders_per_day: int = 160_000
    ws_messages_per_second: int = 5
    ws_streams_per_connection: int = 1024
    ws_connections_per_5m: int = 300
    #: The refused requests an IP may send in one window before it is banned (the first 429
    #: included): requests already in flight when the first 429 comes back are forgiven.
    bans_after_429s: int = 5
    ban_first_ms: int = 2 * MINUTE_MS
    ban_max_ms: int = 3 * DAY_MS
    ban_forget_ms: int = DAY_MS
    max_tracked_ips: int = 50_000
    max_tracked_accounts: int = 100_000
    max_bans: int = 100_000

    def __post_init__(self) -> None:
        for field in fields(self):
            name = field.name
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"limits: {name} must be an integer >= 1, not {value!r}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """``ok``, or the refusal to send: HTTP ``status``, Binance ``code`` and ``msg``, and the
    ``Retry-After`` seconds."""

    ok: bool
    status: int = 200
    code: int = 0
    msg: str = ""
    retry_after_s: int = 0

    def body(self) -> dict[str, int | str]:
        """The JSON error body: ``{"code": ..., "msg": ...}``."""
        return {"code": self.code, "msg": self.msg}


OK = Verdict(True)


def _ceil_s(ms: int) -> int:
    return max(1, -(-ms // SECOND_MS))


def _until_next(now_ms: int, interval_ms: int) -> int:
    return (now_ms // interval_ms + 1) * interval_ms - now_ms


class _Ip:
    __slots__ = ("raw", "raw_window", "strikes", "weight", "weight_window")

    def __init__(self) -> None:
        self.weight_window = -1
        self.weight = 0
        self.raw_window = -1
        self.raw = 0
        self.strikes = 0


class _Ban:
    __slots__ = ("level", "until_ms")

    def __init__(self, until_ms: int, level: int) -> None:
        self.until_ms = until_ms
        self.level = level


class _Account:
    __slots__ = ("day", "day_window", "ten", "ten_window")

    def __init__(self) -> None:
        self.ten_window = -1
        self.ten = 0
        self.day_window = -1
        self.day = 0


class RateLimiter:
    """The REST door's limits: request weight and raw requests per IP, orders per account."""

    def __init__(self, config: LimitConfig | None = None) -> None:
        self.config = config or LimitConfig()
        self._ips: OrderedDict[str, _Ip] = OrderedDict()
        self._bans: OrderedDict[str, _Ban] = OrderedDict()
        self._accounts: OrderedDict[int, _Account] = OrderedDict()
        #: requests and orders refused so far, by the limit that refused them (the metrics
        #: read it; counted on refusal only, never on the path of an accepted request)
        self.refused: dict[str, int] = dict.fromkeys(REFUSAL_KINDS, 0)

    # -- IPs ------------------------------------------------------------------------------

    def _ip(self, ip: str, now_ms: int) -> _Ip:
        entry = self._ips.get(ip)
        if entry is None:
            entry = self._ips[ip] = _Ip()
            while len(self._ips) > self.config.max_tracked_ips:
                self._ips.popitem(last=False)
        else:
            self._ips.move_to_end(ip)
        minute = now_ms // MINUTE_MS
        if entry.weight_window != minute:
            entry.weight_window, entry.weight, entry.strikes = minute, 0, 0
        five = now_ms // (5 * MINUTE_MS)
        if entry.raw_window != five:
            entry.raw_window, entry.raw = five, 0
        return entry

    def _banned(self, ip: str, now_ms: int) -> Verdict | None:
        ban = self._bans.get(ip)
        if ban is None or now_ms >= ban.until_ms:
            return None
        return Verdict(
            False,
            418,
            -1003,
            f"Way too much request weight used; IP banned until {ban.until_ms}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            _ceil_s(ban.until_ms - now_ms),
        )

    def _ban(self, ip: str, now_ms: int) -> Verdict:
        cfg = self.config
        ban = self._bans.pop(ip, None)
        level = 0
        if ban is not None and now_ms - ban.until_ms <= cfg.ban_forget_ms:
            level = ban.level + 1
        length = min(cfg.ban_first_ms << min(level, 40), cfg.ban_max_ms)
        self._bans[ip] = _Ban(now_ms + length, level)
        if len(self._bans) > cfg.max_bans:
            self._forget_bans(now_ms)
        verdict = self._banned(ip, now_ms)
        assert verdict is not None
        return verdict

    def _forget_bans(self, now_ms: int) -> None:
        """Drops bans over and forgotten, then (never in practice) the oldest."""
        forget = self.config.ban_forget_ms
        for ip in [ip for ip, b in self._bans.items() if now_ms - b.until_ms > forget]:
            del self._bans[ip]
        while len(self._bans) > self.config.max_bans:
            self._bans.popitem(last=False)

    def check_request(self, ip: str, weight: int, now_ms: int) -> Verdict:
        """Counts one request of ``weight`` from ``ip``, or refuses it (429, then 418).

        A refused request adds no weight; it counts as a strike, and the
        ``bans_after_429s``-th strike in a minute bans the IP.
        """
        if weight < 0:
            raise ValueError(f"request weight must be >= 0, not {weight}")
        banned = self._banned(ip, now_ms)
        if banned is not None:
            self.refused["IP_BANNED"] += 1
            return banned
        cfg = self.config
        entry = self._ip(ip, now_ms)
        if entry.weight + weight > cfg.request_weight_per_minute:
            limit, interval, retry_ms = cfg.request_weight_per_minute, "1 MINUTE", MINUTE_MS
            self.refused["REQUEST_WEIGHT"] += 1
        elif entry.raw + 1 > cfg.raw_requests_per_5m:
            limit, interval, retry_ms = cfg.raw_requests_per_5m, "5 MINUTE", 5 * MINUTE_MS
            self.refused["RAW_REQUESTS"] += 1
        else:
            entry.weight += weight
            entry.raw += 1
            return OK
        entry.strikes += 1
        if entry.strikes >= cfg.bans_after_429s:
            entry.strikes = 0
            return self._ban(ip, now_ms)
        return Verdict(
            False,
            429,
            -1003,
            f"Too much request weight used; current limit is {limit} request weight per "
            f"{interval}. Please use WebSocket Streams for live updates to avoid polling the API.",
            _ceil_s(_until_next(now_ms, retry_ms)),
        )

    def used_weight(self, ip: str, now_ms: int) -> int:
        """The weight ``ip`` used this minute: ``X-MBX-USED-WEIGHT-1M``."""
        entry = self._ips.get(ip)
        if entry is None or entry.weight_window != now_ms // MINUTE_MS:
            return 0
        return entry.weight

    def ban_until_ms(self, ip: str, now_ms: int) -> int:
        """When the ban of ``ip`` ends; 0 if it is not banned (the WebSocket API disconnects
        a banned IP)."""
        ban = self._bans.get(ip)
        return ban.until_ms if ban is not None and now_ms < ban.until_ms else 0

    # -- accounts -------------------------------------------------------------------------

    def _account(self, account: int, now_ms: int) -> _Account:
        entry = self._accounts.get(account)
        if entry is None:
            entry = self._accounts[account] = _Account()
            while len(self._accounts) > self.config.max_tracked_accounts:
                self._accounts.popitem(last=False)
        else:
            self._accounts.move_to_end(account)
        ten = now_ms // (10 * SECOND_MS)
        if entry.ten_window != ten:
            entry.ten_window, entry.ten = ten, 0
        day = now_ms // DAY_MS
        if entry.day_window != day:
            entry.day_window, entry.day = day, 0
        return entry

    def check_order(self, account: int, now_ms: int) -> Verdict:
        """Counts one new order of ``account``, or refuses it (429, -1015); a refused order
        is not counted."""
        cfg = self.config
        entry = self._account(account, now_ms)
        if entry.ten + 1 > cfg.orders_per_10s:
            limit, interval, retry_ms = cfg.orders_per_10s, "10 SECOND", 10 * SECOND_MS
        elif entry.day + 1 > cfg.orders_per_day:
            limit, interval, retry_ms = cfg.orders_per_day, "1 DAY", DAY_MS
        else:
            entry.ten += 1
            entry.day += 1
            return OK
        self.refused["ORDERS"] += 1
        return Verdict(
            False,
            429,
            -1015,
            f"Too many new orders; current limit is {limit} orders per {interval}.",
            _ceil_s(_until_next(now_ms, retry_ms)),
        )

    def order_counts(self, account: int, now_ms: int) -> tuple[int, int]:
        """``(X-MBX-ORDER-COUNT-10S, X-MBX-ORDER-COUNT-1D)`` of ``account``."""
        entry = self._accounts.get(account)
        if entry is None:
            return 0, 0
        ten = entry.ten if entry.ten_window == now_ms // (10 * SECOND_MS) else 0
        day = entry.day if entry.day_window == now_ms // DAY_MS else 0
        return ten, day

    def order_limits_json(self, account: int, now_ms: int) -> list[dict[str, Any]]:
        """``GET /api/v3/rateLimit/order``: the ORDERS limits with the account's counts."""
        ten, day = self.order_counts(account, now_ms)
        orders = [r for r in self.rate_limits_json() if r["rateLimitType"] == "ORDERS"]
        return [{**orders[0], "count": ten}, {**orders[1], "count": day}]

    # -- housekeeping ---------------------------------------------------------------------

    def sweep(self, now_ms: int) -> None:
        """Forgets IPs and accounts whose windows have all ended, and bans long over."""
        minute, five = now_ms // MINUTE_MS, now_ms // (5 * MINUTE_MS)
        for ip in [
            k for k, e in self._ips.items() if e.raw_window != five and e.weight_window != minute
        ]:
            del self._ips[ip]
        day = now_ms // DAY_MS
        for account in [k for k, e in self._accounts.items() if e.day_window != day]:
            del self._accounts[account]
        forget = self.config.ban_forget_ms
        for ip in [k for k, b in self._bans.items() if now_ms - b.until_ms > forget]:
            del self._bans[ip]

    def tracked(self) -> tuple[int, int, int]:
        """How many IPs, accounts and bans are remembered (memory is bounded by the config)."""
        return len(self._ips), len(self._accounts), len(self._bans)

    def rate_limits_json(self) -> list[dict[str, Any]]:
        """``exchangeInfo.rateLimits``, in Binance's shape and order."""
        cfg = self.config
        return [
            _limit("REQUEST_WEIGHT", "MINUTE", 1, cfg.request_weight_per_minute),
            _limit("ORDERS", "SECOND", 10, cfg.orders_per_10s),
            _limit("ORDERS", "DAY", 1, cfg.orders_per_day),
            _limit("RAW_REQUESTS", "MINUTE", 5, cfg.raw_requests_per_5m),
        ]


def _limit(kind: str, interval: str, num: int, limit: int) -> dict[str, Any]:
    return {"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit}


# -- WebSocket ------------------------------------------------------------------------------


class WsConnectionLimits:
    """One connection's limits: incoming messages per second and streams subscribed."""

    __slots__ = ("_count", "_second", "max_streams", "messages_per_second")

    def __init__(self, messages_per_second: int, max_streams: int) -> None:
        self.messages_per_second = messages_per_second
        self.max_streams = max_streams
        self._second = -1
        self._count = 0

    def message(self, now_ms: int) -> bool:
        """Counts an incoming message (PING, PONG or JSON request); False: over the limit,
        disconnect (Binance does)."""
        second = now_ms // SECOND_MS
        if second != self._second:
            self._second, self._count = second, 0
        self._count += 1
        return self._count <= self.messages_per_second

    def can_subscribe(self, current: int, adding: int) -> bool:
        """Whether ``adding`` more streams fit beside the ``current`` ones."""
        return current + adding <= self.max_streams


class WsLimiter:
    """WebSocket connection attempts per IP (fixed 5-minute windows), bounded in memory."""

    def __init__(self, config: LimitConfig | None = None) -> None:
        self.config = config or LimitConfig()
        self._attempts: OrderedDict[str, tuple[int, int]] = OrderedDict()
        #: connection attempts refused so far
        self.refused = 0

    def connect(self, ip: str, now_ms: int) -> Verdict:
        """Counts a connection attempt from ``ip``; refused (429, -1034) beyond the limit."""
        cfg = self.config
        window = now_ms // (5 * MINUTE_MS)
        seen = self._attempts.pop(ip, None)
        count = seen[1] if seen is not None and seen[0] == window else 0
        count += 1
        self._attempts[ip] = (window, count)
        while len(self._attempts) > cfg.max_tracked_ips:
            self._attempts.popitem(last=False)
        if count <= cfg.ws_connections_per_5m:
            return OK
        self.refused += 1
        return Verdict(
            False,
            429,
            -1034,
            "Too many connection attempts from IP; current limit is "
            f"{cfg.ws_connections_per_5m} per '5 MINUTE'.",
            _ceil_s(_until_next(now_ms, 5 * MINUTE_MS)),
        )

    def connection(self) -> WsConnectionLimits:
        """The limits of a new connection (keep it with the connection; it dies with it)."""
        return WsConnectionLimits(
            self.config.ws_messages_per_second, self.config.ws_streams_per_connection
        )

    def tracked(self) -> int:
        return len(self._attempts)
