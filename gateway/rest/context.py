"""What every handler of the Binance-dialect door shares: the venue, the instruments under
their Binance names, the edge, the read models, keys and limits; and the request's reading:
parameters, authentication and weight.

A handler asks :meth:`Served.request` for its parameters with the endpoint's weight (and, for a
signed endpoint, the permission it needs): the weight is counted against the client's address
first (429, then 418 and a ban, as Binance does), then the signature is checked, so a refused
request never reaches the venue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from engine.instrument import InstrumentSpec
from gateway.edge.requests import Edge
from gateway.rest.activity import Activity
from gateway.rest.config import RestConfig
from gateway.rest.dialect import Params, Symbols
from gateway.rest.errors import ApiError
from gateway.rest.history import MarketHistory
from gateway.rest.keys import ApiKey, KeyStore
from gateway.rest.latency import LatencyWindow
from gateway.rest.limits import LimitConfig, RateLimiter
from gateway.rest.ports import RestVenue
from gateway.rest.signing import SignedRequest, SigningError, authenticate_request

if TYPE_CHECKING:
    from gateway.rest.wallet import Wallet

__all__ = ["ACCOUNT", "SERVED", "WEIGHT_IP", "Caller", "Served"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: the address, and for a signed one the key and its account."""

    ip: str
    params: Params
    key: ApiKey | None = None

    @property
    def account(self) -> int:
        assert self.key is not None
        return self.key.account


@dataclass(slots=True)
class Served:
    venue: RestVenue
    config: RestConfig
    symbols: Symbols
    edge: Edge
    assets: Mapping[str, int]
    activity: Activity
    history: MarketHistory
    keys: KeyStore
    limiter: RateLimiter
    #: custody's wallet (``gateway.rest.wallet.Wallet``): None when the venue keeps no wallets
    wallet: Wallet | None = None
    #: listen key -> account, for the older user-data path
    listen_keys: dict[str, tuple[int, int]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: (account, order id or client order id) -> the client order id a cancel in flight gave
    #: itself (``newClientOrderId``): the user data stream's ``c`` of the CANCELED report
    cancel_ids: dict[tuple[int, int | str], str] = field(default_factory=dict)
    #: the latency of the requests the door answered, per minute (the status page)
    latency: LatencyWindow = field(default_factory=LatencyWindow)
    #: serves ``/ws/<listenKey>``: the account's user data (set by the user-data module)
    user_stream: Callable[[web.Request, str], Awaitable[web.StreamResponse]] | None = None

    @property
    def specs(self) -> dict[str, InstrumentSpec]:
        return self.symbols.by_name

    async def request(self, request: web.Request, weight: int, need: str = "") -> Caller:
        """The request's parameters after its weight is counted and, with ``need``
        (``USER_DATA`` or ``TRADE``), its signature checked; :class:`ApiError` otherwise."""
        ip = request.remote or ""
        now = self.venue.now_ms()
        verdict = self.limiter.check_request(ip, weight, now)
        request[WEIGHT_IP] = ip
        if not verdict.ok:
            raise ApiError(
                verdict.code,
                verdict.msg,
                verdict.status,
                {"Retry-After": str(verdict.retry_after_s)},
            )
        # the query exactly as received: the signature is over those bytes, and yarl's URL
        # normalises percent-escapes (``%3A`` becomes ``:``)
        query = request.raw_path.partition("?")[2]
        body = b""
        if request.can_read_body:
            body = await request.read()
        if body and request.content_type not in _FORMS:
            raise ApiError(-1130, "Invalid data sent for a parameter.")
        if not need:
            pairs = list(request.rel_url.query.items())
            if body:
                pairs.extend(_form(body))
            return Caller(ip, Params(pairs))
        signed = SignedRequest(
            request.method, query, body, request.headers.get("X-MBX-APIKEY"), ip, now
        )
        try:
            # the signature check parses the parameters once: the handler reads those
            accepted = authenticate_request(
                self.keys,
                signed,
                need if need in ("TRADE", "WITHDRAW") else "USER_DATA",  # type: ignore[arg-type]
            )
        except SigningError as exc:
            raise ApiError(exc.code, exc.msg, exc.status) from None
        key = accepted.key
        request[ACCOUNT] = key.account
        return Caller(ip, Params(accepted.params.items()), key)


#: The bodies a request may carry its parameters in (Binance: a form; an empty type is taken as
#: one too, as some clients send no Content-Type).
_FORMS = ("application/x-www-form-urlencoded", "", "application/octet-stream", "text/plain")


def _form(body: bytes) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(-1100, "Illegal characters found in a parameter.") from None
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=200)
    except ValueError:
        raise ApiError(-1101, "Too many parameters sent for this endpoint.") from None


def limit_config(config: RestConfig) -> LimitConfig:
    """The rate limits of ``[rest]``."""
    return LimitConfig(
        request_weight_per_minute=config.request_weight_per_minute,
        raw_requests_per_5m=config.raw_requests_per_5m,
        orders_per_10s=config.orders_per_10s,
        orders_per_day=config.orders_per_day,
        ws_messages_per_second=config.ws_messages_per_s,
        ws_streams_per_connection=config.ws_streams_per_connection,
        ws_connections_per_5m=config.ws_connections_per_5m,
    )


SERVED = web.AppKey("served", Served)
#: the address a request's weight was counted against, and its signed account, for the headers
WEIGHT_IP = web.RequestKey("weight_ip", str)
ACCOUNT = web.RequestKey("account", int)
