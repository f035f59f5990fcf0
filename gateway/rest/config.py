"""The gateway's ``[rest]`` section: where the Binance-dialect door listens and its limits.

Optional: without ``[rest]`` the venue serves no REST or WebSocket door. Every limit defaults to
Binance's published value (``exchangeInfo``'s ``rateLimits`` and the WebSocket limits of
binance-spot-api-docs), so a client tuned for Binance stays inside them here; config/README.md
explains each key. Kept apart from the handlers so that reading the file needs no web server.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.configfile import Table

__all__ = ["RestConfig", "read_rest"]


@dataclass(frozen=True, slots=True)
class RestConfig:
    """``[rest]``: REST at ``/api/v3``, streams at ``/ws`` and ``/stream``, the WebSocket API at
    ``/ws-api/v3``, all on one port."""

    host: str = "127.0.0.1"
    port: int = 8082  # 0: any free port
    #: request weight per IP per minute (REQUEST_WEIGHT)
    request_weight_per_minute: int = 6000
    #: raw requests per IP per 5 minutes (RAW_REQUESTS)
    raw_requests_per_5m: int = 300000
    #: new orders per account per 10 seconds and per UTC day (ORDERS)
    orders_per_10s: int = 50
    orders_per_day: int = 160000
    #: WebSocket: incoming messages per second per connection, streams per connection,
    #: connection attempts per IP per 5 minutes, the lifetime of a connection
    ws_messages_per_s: int = 5
    ws_streams_per_connection: int = 1024
    ws_connections_per_5m: int = 300
    ws_lifetime_s: int = 86400
    #: a stream consumer this many bytes behind is disconnected, never buffered without bound
    ws_max_pending_bytes: int = 4 * 1024 * 1024
    #: open and recently done orders kept per venue for order queries, trades kept per symbol
    keep_done_orders: int = 200000
    keep_trades: int = 100000
    #: open orders an account may have on one symbol through this door (MAX_NUM_ORDERS), and
    #: the parts an iceberg may be shown in (ICEBERG_PARTS)
    max_num_orders: int = 200
    iceberg_parts: int = 100
    #: the journal's last commands replayed at start to rebuild the accounts' orders and fills
    replay_commands: int = 1000000


def read_rest(root: Table) -> RestConfig | None:
    """``[rest]``, optional; absent keys take Binance's values."""
    if "rest" not in root:
        return None
    table = root.table("rest")
    d = RestConfig()
    positive = 1
    config = RestConfig(
        host=table.optional_string("host") or d.host,
        port=table.optional_integer("port", d.port, 0, 65535),
        request_weight_per_minute=table.optional_integer(
            "request_weight_per_minute", d.request_weight_per_minute, positive, 10**9
        ),
        raw_requests_per_5m=table.optional_integer(
            "raw_requests_per_5m", d.raw_requests_per_5m, positive, 10**9
        ),
        orders_per_10s=table.optional_integer("orders_per_10s", d.orders_per_10s, positive, 10**9),
        orders_per_day=table.optional_integer("orders_per_day", d.orders_per_day, positive, 10**12),
        ws_messages_per_s=table.optional_integer(
            "ws_messages_per_s", d.ws_messages_per_s, positive, 10**6
        ),
        ws_streams_per_connection=table.optional_integer(
            "ws_streams_per_connection", d.ws_streams_per_connection, positive, 10**6
        ),
        ws_connections_per_5m=table.optional_integer(
            "ws_connections_per_5m", d.ws_connections_per_5m, positive, 10**9
        ),
        ws_lifetime_s=table.optional_integer("ws_lifetime_s", d.ws_lifetime_s, 1, 7 * 86400),
        ws_max_pending_bytes=table.optional_integer(
            "ws_max_pending_bytes", d.ws_max_pending_bytes, 4096, 2**31
        ),
        keep_done_orders=table.optional_integer("keep_done_orders", d.keep_done_orders, 0, 10**8),
        keep_trades=table.optional_integer("keep_trades", d.keep_trades, 1, 10**8),
        max_num_orders=table.optional_integer("max_num_orders", d.max_num_orders, 1, 10**9),
        iceberg_parts=table.optional_integer("iceberg_parts", d.iceberg_parts, 1, 10**6),
        replay_commands=table.optional_integer("replay_commands", d.replay_commands, 0, 10**10),
    )
    table.finish()
    return config
