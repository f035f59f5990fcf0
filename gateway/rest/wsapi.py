"""The WebSocket API as Binance serves it (web-socket-api.md): ``/ws-api/v3``, one JSON request
per text frame, ``{"id", "method", "params"}``, answered ``{"id", "status", "result",
"rateLimits"}`` or ``{"id", "status", "error": {"code", "msg"}, "rateLimits"}``.

The methods are the REST door's actions (``gateway.rest.trading``, ``gateway.rest.account``)
called with a :class:`~gateway.rest.context.Caller` built from the request's parameters, each
value as a string the way Binance's API takes it (numbers as the client wrote them, booleans
``true``/``false``), so both doors answer the same thing from the same code:

- ``ping``, ``time``;
- ``session.logon`` (Ed25519 keys only), ``session.status``, ``session.logout``: after a logon,
  SIGNED requests need no ``apiKey`` and ``signature`` (their ``timestamp`` is still checked,
  and the key is checked again at each request: a revoked key ends the session, -2015);
- ``order.place``, ``order.test``, ``order.cancel``, ``order.cancelReplace``,
  ``order.amend.keepPriority``, ``order.status``, ``openOrders.status``,
  ``openOrders.cancelAll``, ``allOrders``, ``myTrades``, ``myPreventedMatches``,
  ``account.status``, ``account.commission``, ``account.rateLimits.orders``;
- ``userDataStream.subscribe`` (logged-on session), ``userDataStream.subscribe.signature``
  (any session: the signature over ``apiKey``, ``timestamp`` and ``recvWindow``, as ccxt and
  python-binance send it), ``userDataStream.unsubscribe``, ``session.subscriptions``; events
  then come as ``{"subscriptionId": N, "event": {...}}`` (``gateway.rest.userdata``).

Signatures (``gateway.rest.signing.authenticate_ws``): over every parameter but ``signature``,
sorted by name, ``name=value`` joined by ``&``. Limits: every request's weight is counted
against the address with the REST door's limiter (connecting costs 2), refused with 429 and
then 418, after which the connection is closed; ``ws_connections_per_5m`` attempts per
address; ``ws_lifetime_s``. Requests of one connection are answered in order. A connection's
answers and events wait in one bounded :class:`~gateway.rest.userdata.Outbox`.

Not served here: the market data methods (``depth``, ``trades``, ``klines``, ``ticker``...),
order lists and SOR, SBE.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from gateway.admin.ports import Unavailable
from gateway.rest import account, trading
from gateway.rest.context import SERVED, Caller, Served
from gateway.rest.dialect import Params
from gateway.rest.errors import ApiError, compact, mandatory
from gateway.rest.keys import ApiKey
from gateway.rest.limits import WsLimiter
from gateway.rest.signing import (
    Need,
    SigningError,
    authenticate_ws,
    check_key,
    check_timing,
    permitted,
)
from gateway.rest.trading import Action, Weight, weight_of
from gateway.rest.userdata import Outbox, UserData, add_user_data, user_data_of

__all__ = ["METHODS", "Session", "WsApi", "add_ws_api", "find_ws_api", "parse_request"]

log = logging.getLogger("gateway.rest.wsapi")

HEARTBEAT_S = 20.0
MAX_MESSAGE = 64 * 1024
#: Connecting costs this much request weight (web-socket-api.md, "IP limits").
CONNECT_WEIGHT = 2
#: Active subscriptions per session, and subscriptions over its lifetime (the docs' numbers).
MAX_ACTIVE_SUBSCRIPTIONS = 1000
MAX_SUBSCRIPTION_IDS = 65535
MAX_PARAMS = 200
_REJECTED_KEY = (-2015, "Invalid API-key, IP, or permissions for action.")
_NOT_AUTHORIZED = (-1002, "You are not authorized to execute this request.")


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


class _Number(str):
    """A JSON number with a fraction or exponent, kept as the client wrote it."""

    __slots__ = ()


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request: its id (echoed), method, parameters as strings, and whether the
    answer shows the rate limits (None: the connection's default)."""

    id: int | str | None
    method: str
    params: dict[str, str]
    return_rate_limits: bool | None


class RequestError(Exception):
    """A request that cannot be read: answered with ``id`` (None when it could not be read)."""

    def __init__(self, request_id: int | str | None, error: ApiError) -> None:
        super().__init__(error.msg)
        self.request_id = request_id
        self.error = error


def _param_text(name: str, value: object) -> str | None:
    """A parameter's value as Binance's API takes it; None for a JSON null (not sent)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    raise ApiError(-1130, f"Data sent for parameter '{name[:40]}' is not valid.")


def parse_request(text: str) -> Request:
    """Reads one request; :class:`RequestError` with Binance's answer when it cannot."""
    invalid = ApiError(-1135, "Invalid JSON Request")
    try:
        message = json.loads(text, parse_float=_Number, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise RequestError(None, invalid) from None
    if not isinstance(message, dict):
        raise RequestError(None, invalid)
    request_id = message.get("id")
    if request_id is not None and (
        isinstance(request_id, bool | _Number) or not isinstance(request_id, int | str)
    ):
        raise RequestError(None, ApiError(-1135, "JSON sent for parameter 'id' is not valid"))
    method = message.get("method")
    if not isinstance(method, str) or not method:
        raise RequestError(request_id, mandatory("method"))
    if method.startswith("v3/"):
        method = method[3:]
    raw = message.get("params", {})
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RequestError(
            request_id, ApiError(-1135, "JSON sent for parameter 'params' is not valid")
        )
    if len(raw) > MAX_PARAMS:
        raise RequestError(
            request_id, ApiError(-1101, "Too many parameters sent for this endpoint.")
        )
    params: dict[str, str] = {}
    return_rate_limits: bool | None = None
    try:
        for name, value in raw.items():
            if name == "returnRateLimits":
                if not isinstance(value, bool):
                    raise ApiError(
                        -1130, "Data sent for parameter 'returnRateLimits' is not valid."
                    )
                return_rate_limits = value  # and signed like any parameter
            text_value = _param_text(name, value)
            if text_value is not None:
                params[name] = text_value
    except ApiError as error:
        raise RequestError(request_id, error) from None
    return Request(request_id, method, params, return_rate_limits)


#: What a session method does: the answer's result (always 200) from the session and request.
SessionAction = Callable[["Session", Request], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Method:
    """A method: its weight; the permission it needs (``""``: none, ``USER_DATA``, ``TRADE``);
    whether it places orders (its answer shows the ORDERS limits); the REST door's action, or
    a session action."""

    weight: Weight
    need: str
    action: Action | None = None
    session: SessionAction | None = None
    orders: bool = False


def _test_weight(params: Mapping[str, str]) -> int:
    return 20 if params.get("computeCommissionRates") == "true" else 1


METHODS: dict[str, Method] = {
    "order.place": Method(1, "TRADE", trading.new_order, orders=True),
    "order.test": Method(_test_weight, "TRADE", trading.test_order),
    "order.cancel": Method(1, "TRADE", trading.cancel_order),
    "order.cancelReplace": Method(1, "TRADE", trading.cancel_replace, orders=True),
    "order.amend.keepPriority": Method(4, "TRADE", trading.amend_keep_priority),
    "openOrders.cancelAll": Method(1, "TRADE", trading.cancel_open_orders),
    "order.status": Method(4, "USER_DATA", account.get_order),
    "openOrders.status": Method(account.open_orders_weight, "USER_DATA", account.open_orders),
    "allOrders": Method(20, "USER_DATA", account.all_orders),
    "myTrades": Method(20, "USER_DATA", account.my_trades),
    "myPreventedMatches": Method(20, "USER_DATA", account.my_prevented_matches),
    "account.status": Method(20, "USER_DATA", account.account),
    "account.commission": Method(20, "USER_DATA", account.commission),
    "account.rateLimits.orders": Method(40, "USER_DATA", account.rate_limit_order),
}


class _Subscription:
    __slots__ = ("account", "logon", "unfollow")

    def __init__(self, account: int, logon: bool, unfollow: Callable[[], None]) -> None:
        self.account = account
        self.logon = logon
        self.unfollow = unfollow


class Session:
    """One connection: its logged-on key, its subscriptions, its outbox."""

    def __init__(
        self, api: WsApi, ip: str, outbox: Outbox, connected_ms: int, rate_limits: bool
    ) -> None:
        self.api = api
        self.ip = ip
        self.outbox = outbox
        self.connected_ms = connected_ms
        self.return_rate_limits = rate_limits
        self.key: ApiKey | None = None
        self.authorized_ms = 0
        self.subscriptions: dict[int, _Subscription] = {}
        self.next_subscription = 0

    # -- answering -------------------------------------------------------------------------------

    async def answer(self, text: str) -> str:
        """The answer to one text frame; never raises."""
        api = self.api
        served = api.served
        now = served.venue.now_ms()
        try:
            request = parse_request(text)
        except RequestError as exc:
            verdict = served.limiter.check_request(self.ip, 1, now)
            if not verdict.ok:
                return self._limited(exc.request_id, verdict, now, None)
            return self._error(exc.request_id, exc.error, None, None)
        rate_limits = request.return_rate_limits
        show = self.return_rate_limits if rate_limits is None else rate_limits
        method = METHODS.get(request.method)
        if method is None:
            verdict = served.limiter.check_request(self.ip, 1, now)
            if not verdict.ok:
                return self._limited(request.id, verdict, now, None)
            error = ApiError(-1020, "This operation is not supported.")
            return self._error(request.id, error, None, self._limits(show, None, now))
        verdict = served.limiter.check_request(
            self.ip, weight_of(method.weight, request.params), now
        )
        if not verdict.ok:
            return self._limited(request.id, verdict, now, None)
        account_id: int | None = None
        try:
            if method.action is not None:
                caller = self._caller(request, method.need, now)
                account_id = caller.key.account if caller.key is not None else None
                body, status = await method.action(served, caller)
                if status != 200:
                    return self._error_body(request.id, status, body, account_id, method, show)
                result = body
            else:
                assert method.session is not None
                result = await method.session(self, request)
        except ApiError as refused:
            orders_of = account_id if method.orders else None
            return self._error(request.id, refused, None, self._limits(show, orders_of, now))
        except SigningError as unsigned:
            signing = ApiError(unsigned.code, unsigned.msg, unsigned.status)
            return self._error(request.id, signing, None, self._limits(show, None, now))
        except Unavailable:
            stopped = ApiError(-1016, "This service is no longer available.", 503)
            return self._error(request.id, stopped, None, self._limits(show, None, now))
        except Exception:
            log.exception("WebSocket API method %s failed", request.method[:64])
            failed = ApiError(-1000, "An unknown error occurred while processing the request.", 500)
            return self._error(request.id, failed, None, self._limits(show, None, now))
        answer: dict[str, Any] = {"id": request.id, "status": 200, "result": result}
        orders_of = account_id if method.orders else None
        limits = self._limits(show, orders_of, served.venue.now_ms())
        if limits is not None:
            answer["rateLimits"] = limits
        return _dumps(answer)

    def _caller(self, request: Request, need: str, now: int) -> Caller:
        """The request's caller: anyone for a public method; for a SIGNED one the key of its
        own ``apiKey`` and ``signature``, else the session's (its timestamp still checked)."""
        params = request.params
        pairs = [(k, v) for k, v in params.items() if k not in ("signature", "apiKey")]
        if not need:
            return Caller(self.ip, Params(pairs))
        store = self.api.served.keys
        verdict_need: Need = "TRADE" if need == "TRADE" else "USER_DATA"
        if "signature" in params or (self.key is None and "apiKey" in params):
            authenticated = authenticate_ws(
                store, params, ip=self.ip, now_ms=now, need=verdict_need
            )
            return Caller(self.ip, Params(pairs), authenticated.key)
        if self.key is None:
            raise mandatory("apiKey")
        try:
            key = check_key(store, self.key.api_key, self.ip)
        except SigningError:
            self.logout()
            raise ApiError(*_REJECTED_KEY, 401) from None
        check_timing(params, now)
        if not permitted(key, verdict_need):
            raise ApiError(*_REJECTED_KEY, 401)
        return Caller(self.ip, Params(pairs), key)

    def _limits(self, show: bool, account_id: int | None, now: int) -> list[dict[str, Any]] | None:
        if not show:
            return None
        served = self.api.served
        config = served.config
        limits: list[dict[str, Any]] = []
        if account_id is not None:
            ten, day = served.limiter.order_counts(account_id, now)
            limits.append(_limit("ORDERS", "SECOND", 10, config.orders_per_10s, ten))
            limits.append(_limit("ORDERS", "DAY", 1, config.orders_per_day, day))
        used = served.limiter.used_weight(self.ip, now)
        limits.append(_limit("REQUEST_WEIGHT", "MINUTE", 1, config.request_weight_per_minute, used))
        return limits

    def _error(
        self,
        request_id: int | str | None,
        error: ApiError,
        data: object,
        limits: list[dict[str, Any]] | None,
    ) -> str:
        body: dict[str, Any] = {"code": error.code, "msg": error.msg}
        if data is not None:
            body["data"] = data
        answer: dict[str, Any] = {"id": request_id, "status": error.status, "error": body}
        if limits is not None:
            answer["rateLimits"] = limits
        return _dumps(answer)

    def _error_body(
        self,
        request_id: int | str | None,
        status: int,
        body: Any,
        account_id: int | None,
        method: Method,
        show: bool,
    ) -> str:
        """An action's own refusal (cancel-replace's -2021 / -2022 with their ``data``)."""
        error = ApiError(int(body.get("code", -1000)), str(body.get("msg", "")), status)
        now = self.api.served.venue.now_ms()
        limits = self._limits(show, account_id if method.orders else None, now)
        return self._error(request_id, error, body.get("data"), limits)

    def _limited(
        self,
        request_id: int | str | None,
        verdict: Any,
        now: int,
        limits: list[dict[str, Any]] | None,
    ) -> str:
        """429, or 418 and the connection closed (Binance disconnects a banned address)."""
        error = ApiError(verdict.code, verdict.msg, verdict.status)
        data = {"serverTime": now, "retryAfter": now + verdict.retry_after_s * 1000}
        if verdict.status == 418:
            self.outbox.shut(1008, b"banned", drop=False)
        return self._error(request_id, error, data, limits)

    # -- sessions and subscriptions --------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "apiKey": self.key.api_key if self.key is not None else None,
            "authorizedSince": self.authorized_ms if self.key is not None else None,
            "connectedSince": self.connected_ms,
            "returnRateLimits": self.return_rate_limits,
            "serverTime": self.api.served.venue.now_ms(),
            "userDataStream": bool(self.subscriptions),
        }

    def subscribe(self, account_id: int, *, logon: bool) -> int:
        if any(s.account == account_id for s in self.subscriptions.values()):
            raise ApiError(-2035, "User Data Stream subscription already active.")
        if len(self.subscriptions) >= MAX_ACTIVE_SUBSCRIPTIONS:
            raise ApiError(
                -1191,
                "Too many subscriptions. Connection may create up to "
                f"'{MAX_ACTIVE_SUBSCRIPTIONS}' subscriptions at a time.",
            )
        if self.next_subscription >= MAX_SUBSCRIPTION_IDS:
            raise ApiError(-2042, "Maximum subscription ID reached for this connection.")
        number = self.next_subscription
        self.next_subscription += 1
        outbox = self.outbox
        head = f'{{"subscriptionId":{number},"event":'

        def deliver(raw: str) -> None:
            outbox.put(head + raw + "}")

        unfollow = self.api.user_data.follow(account_id, deliver)
        self.subscriptions[number] = _Subscription(account_id, logon, unfollow)
        return number

    def unsubscribe(self, number: int, *, terminated: bool = True) -> None:
        subscription = self.subscriptions.pop(number, None)
        if subscription is None:
            return
        subscription.unfollow()
        if terminated:
            now = self.api.served.venue.now_ms()
            event = {"e": "eventStreamTerminated", "E": now}
            self.outbox.put(_dumps({"subscriptionId": number, "event": event}))

    def close(self) -> None:
        """The connection ended: stop following, nothing more to send."""
        for number in list(self.subscriptions):
            self.unsubscribe(number, terminated=False)

    def unsubscribe_all(self) -> None:
        for number in list(self.subscriptions):
            self.unsubscribe(number)

    def logout(self) -> None:
        self.key = None
        self.authorized_ms = 0
        for number, subscription in list(self.subscriptions.items()):
            if subscription.logon:
                self.unsubscribe(number)


def _limit(kind: str, interval: str, num: int, limit: int, count: int) -> dict[str, Any]:
    return {
        "rateLimitType": kind,
        "interval": interval,
        "intervalNum": num,
        "limit": limit,
        "count": count,
    }


async def _ping(session: Session, request: Request) -> Any:
    return {}


async def _time(session: Session, request: Request) -> Any:
    return {"serverTime": session.api.served.venue.now_ms()}


async def _logon(session: Session, request: Request) -> Any:
    served = session.api.served
    now = served.venue.now_ms()
    authenticated = authenticate_ws(
        served.keys, request.params, ip=session.ip, now_ms=now, need="USER_DATA"
    )
    key = authenticated.key
    if key.kind != "ED25519":
        raise ApiError(*_NOT_AUTHORIZED, 401)
    if session.key is not None and session.key.account != key.account:
        session.logout()
    session.key = key
    session.authorized_ms = now
    return session.status()


async def _status(session: Session, request: Request) -> Any:
    return session.status()


async def _logout(session: Session, request: Request) -> Any:
    session.logout()
    return session.status()


async def _subscribe(session: Session, request: Request) -> Any:
    key = session.key
    if key is None:
        raise ApiError(*_NOT_AUTHORIZED, 401)
    try:
        check_key(session.api.served.keys, key.api_key, session.ip)
    except SigningError:
        session.logout()
        raise ApiError(*_REJECTED_KEY, 401) from None
    return {"subscriptionId": session.subscribe(key.account, logon=True)}


async def _subscribe_signature(session: Session, request: Request) -> Any:
    served = session.api.served
    authenticated = authenticate_ws(
        served.keys, request.params, ip=session.ip, now_ms=served.venue.now_ms(), need="USER_DATA"
    )
    return {"subscriptionId": session.subscribe(authenticated.key.account, logon=False)}


async def _unsubscribe(session: Session, request: Request) -> Any:
    text = request.params.get("subscriptionId")
    if not session.subscriptions:
        raise ApiError(-2036, "User Data Stream subscription not active.")
    if text is None:
        session.unsubscribe_all()
        return {}
    if not text.isdigit() or int(text) not in session.subscriptions:
        raise ApiError(-2036, "User Data Stream subscription not active.")
    session.unsubscribe(int(text))
    return {}


async def _subscriptions(session: Session, request: Request) -> Any:
    return [{"subscriptionId": number} for number in sorted(session.subscriptions)]


METHODS.update(
    {
        "ping": Method(1, "", session=_ping),
        "time": Method(1, "", session=_time),
        "session.logon": Method(2, "", session=_logon),
        "session.status": Method(2, "", session=_status),
        "session.logout": Method(2, "", session=_logout),
        "userDataStream.subscribe": Method(2, "", session=_subscribe),
        "userDataStream.subscribe.signature": Method(2, "", session=_subscribe_signature),
        "userDataStream.unsubscribe": Method(2, "", session=_unsubscribe),
        "session.subscriptions": Method(2, "", session=_subscriptions),
    }
)


class WsApi:
    """The ``/ws-api/v3`` connections of one application."""

    def __init__(self, served: Served, user_data: UserData) -> None:
        self.served = served
        self.user_data = user_data
        self.connects = WsLimiter(served.limiter.config)
        self.sessions: set[Session] = set()

    async def serve(self, request: web.Request) -> web.StreamResponse:
        served = self.served
        ip = request.remote or ""
        now = served.venue.now_ms()
        config = served.config
        verdict = self.connects.connect(ip, now)
        if verdict.ok:
            verdict = served.limiter.check_request(ip, CONNECT_WEIGHT, now)
        if not verdict.ok:
            return web.json_response(
                verdict.body(),
                status=verdict.status,
                headers={"Retry-After": str(verdict.retry_after_s)},
                dumps=compact,
            )
        show = request.rel_url.query.get("returnRateLimits", "true").lower() != "false"
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_MESSAGE, compress=False)
        await ws.prepare(request)
        transport = request.transport
        outbox = Outbox(
            ws, config.ws_max_pending_bytes, transport.abort if transport is not None else None
        )
        session = Session(self, ip, outbox, now, show)
        self.sessions.add(session)
        loop = asyncio.get_running_loop()
        writer = loop.create_task(outbox.run())
        lifetime = loop.call_later(
            config.ws_lifetime_s, lambda: outbox.shut(1000, b"lifetime", drop=False)
        )
        try:
            async for msg in ws:
                if outbox.closed:
                    break
                if msg.type is WSMsgType.TEXT:
                    outbox.put(await session.answer(msg.data))
                elif msg.type is WSMsgType.BINARY:
                    outbox.shut(1003, b"text frames only", drop=False)
                    break
        finally:
            lifetime.cancel()
            session.close()
            self.sessions.discard(session)
            outbox.shut(1000, b"", drop=False)
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    async def stop(self) -> None:
        for session in list(self.sessions):
            session.outbox.shut(1001, b"server stopping", drop=False)


_WS_API = web.AppKey("ws_api", WsApi)


def find_ws_api(app: web.Application) -> WsApi | None:
    """The application's WebSocket API once it started (None before, or without it)."""
    return app.get(_WS_API)


def add_ws_api(app: web.Application) -> None:
    """Serve ``/ws-api/v3`` (and the accounts' user data it and ``/ws/<listenKey>`` send)."""
    add_user_data(app)

    async def on_startup(app: web.Application) -> None:
        app[_WS_API] = WsApi(app[SERVED], user_data_of(app))

    async def on_shutdown(app: web.Application) -> None:
        api = app.get(_WS_API)
        if api is not None:
            await api.stop()

    async def handler(request: web.Request) -> web.StreamResponse:
        return await request.app[_WS_API].serve(request)

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/ws-api/v3", handler)
