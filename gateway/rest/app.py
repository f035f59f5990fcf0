"""The Binance-dialect door's aiohttp application: REST at ``/api/v3``, and the WebSocket
paths the stream and API modules add, all on one port.

Every answer to a bad request is Binance's ``{"code", "msg"}`` with its HTTP status; a path or
method the door does not serve too. Every response carries ``X-MBX-USED-WEIGHT-1M`` for the
caller's address and, for a signed request, ``X-MBX-ORDER-COUNT-10S`` / ``-1D`` for its account,
as Binance sends them. An unexpected failure is logged and answered -1000 with a 500, never a
traceback.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

from aiohttp import web

from engine.instrument import InstrumentSpec
from gateway.admin.ports import Unavailable
from gateway.edge.requests import Edge
from gateway.rest import account, general, market, trading
from gateway.rest.activity import Activity
from gateway.rest.config import RestConfig
from gateway.rest.context import ACCOUNT, SERVED, WEIGHT_IP, Served, limit_config
from gateway.rest.dialect import Symbols
from gateway.rest.errors import ApiError, compact
from gateway.rest.history import MarketHistory
from gateway.rest.keys import KeyStore
from gateway.rest.limits import RateLimiter
from gateway.rest.ports import RestVenue
from gateway.rest.wallet import Wallet
from gateway.rest.wallet import routes as wallet_routes

__all__ = ["Extension", "make_app"]

log = logging.getLogger("gateway.rest")

#: What another module of the door adds to the application (WebSocket paths, the OpenAPI page).
Extension = Callable[[web.Application], None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(
    venue: RestVenue,
    config: RestConfig,
    instruments: Iterable[InstrumentSpec],
    assets: Mapping[str, int],
    *,
    activity: Activity,
    history: MarketHistory,
    keys: KeyStore,
    extensions: Iterable[Extension] = (),
    wallet: Wallet | None = None,
) -> web.Application:
    specs = list(instruments)
    app = web.Application(middlewares=[_answers], client_max_size=64 * 1024)
    app[SERVED] = Served(
        venue=venue,
        config=config,
        symbols=Symbols(specs),
        edge=Edge(specs, assets),
        assets=dict(assets),
        activity=activity,
        history=history,
        keys=keys,
        limiter=RateLimiter(limit_config(config)),
        wallet=wallet,
    )
    general.routes(app)
    market.routes(app)
    trading.routes(app)
    account.routes(app)
    if wallet is not None:
        wallet_routes(app)
    for extension in extensions:
        extension(app)
    return app


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


@web.middleware
async def _answers(request: web.Request, handler: Handler) -> web.StreamResponse:
    served = request.app[SERVED]
    started = time.perf_counter()
    try:
        response = await handler(request)
    except ApiError as error:
        response = web.json_response(
            error.body(), status=error.status, headers=error.headers, dumps=_dumps
        )
    except Unavailable:  # the venue stopped or is stopping: nothing was done
        response = web.json_response(
            {"code": -1016, "msg": "This service is no longer available."},
            status=503,
            dumps=compact,
        )
    except web.HTTPException as http:
        if http.status < 400:
            raise
        code, msg = _HTTP.get(http.status, (-1000, http.reason or "Error"))
        response = web.json_response({"code": code, "msg": msg}, status=http.status, dumps=compact)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        response = web.json_response(
            {"code": -1000, "msg": "An unknown error occurred while processing the request."},
            status=500,
            dumps=compact,
        )
    now = served.venue.now_ms()
    if not isinstance(response, web.WebSocketResponse):  # a connection is not a request
        served.latency.record(now, time.perf_counter() - started)
    if not response.prepared:
        ip = request.get(WEIGHT_IP)
        if ip is not None:
            response.headers["X-MBX-USED-WEIGHT-1M"] = str(served.limiter.used_weight(ip, now))
        account_id = request.get(ACCOUNT)
        if account_id is not None:
            ten, day = served.limiter.order_counts(account_id, now)
            response.headers["X-MBX-ORDER-COUNT-10S"] = str(ten)
            response.headers["X-MBX-ORDER-COUNT-1D"] = str(day)
    return response


_HTTP = {
    404: (-1000, "Not found: this path is not served."),
    405: (-1000, "Method not allowed on this path."),
    413: (-1101, "Too many parameters sent for this endpoint."),
}
