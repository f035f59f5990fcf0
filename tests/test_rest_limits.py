"""Rate limits against a fake clock: the counts Binance publishes, hit exactly; the headers'
counts; windows turning; 429 then 418 with bans that grow; memory under a flood of addresses."""

from __future__ import annotations

import pytest

from gateway.rest.limits import (
    DAY_MS,
    MINUTE_MS,
    OK,
    LimitConfig,
    RateLimiter,
    Verdict,
    WsLimiter,
)

T0 = 1_700_000_040_000  # a minute boundary (and a 10-second one)
MINUTE0 = T0 - T0 % MINUTE_MS
WEIGHT_MSG = (
    "Too much request weight used; current limit is {} request weight per {}. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)


def test_binance_defaults_and_exchange_info_shape() -> None:
    limiter = RateLimiter()
    assert limiter.rate_limits_json() == [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000},
    ]
    cfg = LimitConfig()
    assert (cfg.ws_messages_per_second, cfg.ws_streams_per_connection) == (5, 1024)
    assert cfg.ws_connections_per_5m == 300
    assert (cfg.ban_first_ms, cfg.ban_max_ms) == (2 * MINUTE_MS, 3 * DAY_MS)


@pytest.mark.parametrize(
    "field", ["request_weight_per_minute", "orders_per_10s", "max_tracked_ips"]
)
def test_config_refuses_nonsense(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        LimitConfig(**{field: 0})


def test_a_negative_weight_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="weight"):
        RateLimiter().check_request("a", -1, T0)


def test_request_weight_limit_is_hit_exactly() -> None:
    limiter = RateLimiter()
    now = MINUTE0 + 1000
    for i in range(5999):
        assert limiter.check_request("1.2.3.4", 1, now) is OK, i
    assert limiter.check_request("1.2.3.4", 2, now) == Verdict(
        False, 429, -1003, WEIGHT_MSG.format(6000, "1 MINUTE"), 59
    )
    assert limiter.used_weight("1.2.3.4", now) == 5999
    assert limiter.check_request("1.2.3.4", 1, now) is OK  # the 6000th unit fits
    assert limiter.used_weight("1.2.3.4", now) == 6000
    refused = limiter.check_request("1.2.3.4", 1, now + 58_500)
    assert (refused.status, refused.retry_after_s) == (429, 1)  # 500 ms left: rounded up
    # Another IP has its own count; the minute turning clears this one.
    assert limiter.check_request("5.6.7.8", 1, now) is OK
    assert limiter.check_request("1.2.3.4", 1, MINUTE0 + MINUTE_MS) is OK
    assert limiter.used_weight("1.2.3.4", MINUTE0 + MINUTE_MS) == 1
    assert limiter.used_weight("9.9.9.9", now) == 0


def test_windows_are_clock_aligned_not_sliding() -> None:
    limiter = RateLimiter(LimitConfig(request_weight_per_minute=10))
    assert limiter.check_request("a", 10, MINUTE0 + MINUTE_MS - 1) is OK
    assert not limiter.check_request("a", 1, MINUTE0 + MINUTE_MS - 1).ok
    assert limiter.check_request("a", 10, MINUTE0 + MINUTE_MS) is OK  # 1 ms later, a new minute
    assert limiter.used_weight("a", MINUTE0 + 2 * MINUTE_MS) == 0


def test_raw_requests_per_five_minutes() -> None:
    limiter = RateLimiter(LimitConfig(raw_requests_per_5m=10, bans_after_429s=100))
    start = 1_700_000_100_000  # aligned to 5 minutes
    assert start % (5 * MINUTE_MS) == 0
    for i in range(10):
        assert limiter.check_request("a", 0, start + i * MINUTE_MS // 3) is OK
    refused = limiter.check_request("a", 0, start + 4 * MINUTE_MS)
    assert (refused.status, refused.code, refused.retry_after_s) == (429, -1003, 60)
    assert refused.msg == WEIGHT_MSG.format(10, "5 MINUTE")
    assert limiter.check_request("a", 0, start + 5 * MINUTE_MS) is OK


def test_429_then_418_and_bans_that_grow() -> None:
    cfg = LimitConfig(request_weight_per_minute=3, bans_after_429s=3)
    limiter = RateLimiter(cfg)
    ip = "198.51.100.1"
    now = MINUTE0
    bans: list[int] = []
    for _ in range(14):
        while limiter.check_request(ip, 1, now).ok:
            pass
        # Over the limit: two 429s are tolerated, the third strike is a ban.
        assert limiter.check_request(ip, 1, now).status == 429
        banned = limiter.check_request(ip, 1, now)
        assert (banned.status, banned.code) == (418, -1003)
        until = now + banned.retry_after_s * 1000
        assert banned.msg == (
            f"Way too much request weight used; IP banned until {until}. "
            "Please use WebSocket Streams for live updates to avoid bans."
        )
        assert limiter.ban_until_ms(ip, now) == until
        bans.append(banned.retry_after_s)
        # Banned: every request is a 418 counting down, even in a new minute...
        later = limiter.check_request(ip, 1, until - 1)
        assert (later.status, later.retry_after_s) == (418, 1)
        # ...until the ban is over.
        now = until
        assert limiter.ban_until_ms(ip, now) == 0
        now += MINUTE_MS - now % MINUTE_MS  # a fresh minute
    assert bans[:6] == [120, 240, 480, 960, 1920, 3840]
    assert max(bans) == bans[-1] == 3 * 24 * 3600  # capped at 3 days
    assert bans == sorted(bans)


def test_a_ban_is_forgotten_after_a_quiet_day() -> None:
    cfg = LimitConfig(request_weight_per_minute=1, bans_after_429s=1)
    limiter = RateLimiter(cfg)
    assert limiter.check_request("x", 1, MINUTE0) is OK
    assert limiter.check_request("x", 1, MINUTE0).retry_after_s == 120
    assert limiter.check_request("x", 1, MINUTE0 + 120_000) is OK
    assert limiter.check_request("x", 1, MINUTE0 + 120_000).retry_after_s == 240
    quiet = MINUTE0 + 360_000 + DAY_MS + MINUTE_MS
    assert limiter.check_request("x", 1, quiet) is OK
    assert limiter.check_request("x", 1, quiet).retry_after_s == 120


def test_orders_per_account_and_their_headers() -> None:
    limiter = RateLimiter()
    ten0 = T0 - T0 % 10_000
    for i in range(50):
        assert limiter.check_order(7, ten0 + i) is OK
    assert limiter.order_counts(7, ten0 + 50) == (50, 50)
    refused = limiter.check_order(7, ten0 + 9_000)
    assert refused == Verdict(
        False, 429, -1015, "Too many new orders; current limit is 50 orders per 10 SECOND.", 1
    )
    assert limiter.order_counts(7, ten0 + 9_000) == (50, 50)  # a refused order is not counted
    assert limiter.check_order(8, ten0) is OK  # per account
    assert limiter.check_order(7, ten0 + 10_000) is OK
    assert limiter.order_counts(7, ten0 + 10_000) == (1, 51)
    assert limiter.order_limits_json(7, ten0 + 10_000) == [
        {
            "rateLimitType": "ORDERS",
            "interval": "SECOND",
            "intervalNum": 10,
            "limit": 50,
            "count": 1,
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "DAY",
            "intervalNum": 1,
            "limit": 160000,
            "count": 51,
        },
    ]
    assert limiter.order_counts(99, ten0) == (0, 0)


def test_orders_per_utc_day() -> None:
    limiter = RateLimiter(LimitConfig(orders_per_10s=1000, orders_per_day=5))
    day0 = (T0 // DAY_MS) * DAY_MS
    for i in range(5):
        assert limiter.check_order(1, day0 + i * 3600_000) is OK
    refused = limiter.check_order(1, DAY_MS + day0 - 1000)
    assert (refused.code, refused.retry_after_s) == (-1015, 1)
    assert refused.msg == "Too many new orders; current limit is 5 orders per 1 DAY."
    assert limiter.check_order(1, day0 + DAY_MS) is OK  # midnight UTC
    assert limiter.order_counts(1, day0 + DAY_MS) == (1, 1)


def test_memory_is_bounded_under_a_flood_of_addresses() -> None:
    limiter = RateLimiter(LimitConfig(max_tracked_ips=1000, max_tracked_accounts=500))
    for i in range(100_000):
        limiter.check_request(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1, T0 + i)
        limiter.check_order(i + 1, T0 + i)
    ips, accounts, bans = limiter.tracked()
    assert (ips, accounts, bans) == (1000, 500, 0)
    # The most recent are the ones kept.
    last = 99_999
    assert (
        limiter.used_weight(f"10.{last >> 16 & 255}.{last >> 8 & 255}.{last & 255}", T0 + last) == 1
    )
    assert limiter.used_weight("10.0.0.0", T0 + last) == 0
    limiter.sweep(T0 + DAY_MS)
    assert limiter.tracked() == (0, 0, 0)


def test_default_bound_holds_for_100k_addresses() -> None:
    limiter = RateLimiter()
    for i in range(100_000):
        limiter.check_request(f"2001:db8::{i:x}", 1, T0)
    assert limiter.tracked()[0] == LimitConfig().max_tracked_ips


def test_a_flood_does_not_evict_a_ban() -> None:
    cfg = LimitConfig(request_weight_per_minute=1, bans_after_429s=1, max_tracked_ips=10)
    limiter = RateLimiter(cfg)
    limiter.check_request("bad", 1, T0)
    assert limiter.check_request("bad", 1, T0).status == 418
    for i in range(1000):
        limiter.check_request(f"flood{i}", 1, T0)
    assert limiter.check_request("bad", 1, T0 + 1000).status == 418


def test_sweep_keeps_what_is_still_counting() -> None:
    limiter = RateLimiter()
    limiter.check_request("a", 5, MINUTE0)
    limiter.check_order(1, MINUTE0)
    limiter.sweep(MINUTE0 + 1000)
    assert limiter.used_weight("a", MINUTE0 + 1000) == 5
    assert limiter.order_counts(1, MINUTE0 + 1000) == (1, 1)


def test_websocket_messages_streams_and_connections() -> None:
    ws = WsLimiter()
    conn = ws.connection()
    second = (T0 // 1000) * 1000
    assert [conn.message(second + i) for i in range(6)] == [True] * 5 + [False]
    assert conn.message(second + 1000)  # the next second
    assert conn.can_subscribe(1000, 24) and not conn.can_subscribe(1000, 25)
    start = 1_700_000_100_000
    for i in range(300):
        assert ws.connect("1.1.1.1", start + i) is OK
    refused = ws.connect("1.1.1.1", start + 1000)
    assert (refused.status, refused.code, refused.retry_after_s) == (429, -1034, 299)
    assert refused.msg == (
        "Too many connection attempts from IP; current limit is 300 per '5 MINUTE'."
    )
    assert ws.connect("2.2.2.2", start) is OK
    assert ws.connect("1.1.1.1", start + 5 * MINUTE_MS) is OK
    small = WsLimiter(LimitConfig(max_tracked_ips=100))
    for i in range(10_000):
        small.connect(f"ip{i}", start)
    assert small.tracked() == 100
