"""What the door can tell about itself at any moment, for the venue's metrics: its WebSocket
connections and subscriptions, and the requests its rate limits refused.

Read when the metrics are scraped, from the counts the door keeps anyway (its sets of
connections, its limiter's refusals): nothing is added to the path of a request or a message.
The HTTP connections are the server's (the composition root holds the runner).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from gateway.rest.context import SERVED
from gateway.rest.streams import find_hub
from gateway.rest.userdata import find_user_data
from gateway.rest.wsapi import find_ws_api

__all__ = ["DoorGauges", "gauges"]


@dataclass(frozen=True, slots=True)
class DoorGauges:
    """The door's figures now. ``websockets``: open connections per endpoint (``streams``: the
    market streams, ``api``: ``/ws-api/v3``, ``user_data``: ``/ws/<listenKey>``);
    ``subscriptions``: market stream subscriptions (a connection times a stream) and user data
    followers (a connection times an account); ``refused``: requests refused so far by each
    limit (``REQUEST_WEIGHT``, ``RAW_REQUESTS``, ``IP_BANNED``, ``ORDERS``, and
    ``WS_CONNECTIONS`` for WebSocket connection attempts)."""

    websockets: dict[str, int] = field(default_factory=dict)
    subscriptions: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)


def gauges(app: web.Application) -> DoorGauges:
    """The figures of the door served by ``app`` (zeros for the parts not started)."""
    refused = dict(app[SERVED].limiter.refused)
    hub = find_hub(app)
    api = find_ws_api(app)
    data = find_user_data(app)
    connects = 0
    market = 0
    if hub is not None:
        connects += hub.refused_connects
        market = sum(len(subscribers) for subscribers in hub.by_stream.values())
    if api is not None:
        connects += api.connects.refused
    refused["WS_CONNECTIONS"] = connects
    followers = sum(len(f) for f in data.followers.values()) if data is not None else 0
    return DoorGauges(
        websockets={
            "streams": len(hub.connections) if hub is not None else 0,
            "api": len(api.sessions) if api is not None else 0,
            "user_data": len(data.listeners) if data is not None else 0,
        },
        subscriptions={"market": market, "user_data": followers},
        refused=refused,
    )
