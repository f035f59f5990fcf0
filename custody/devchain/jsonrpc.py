"""JSON-RPC 1.0/2.0 over HTTP as bitcoind speaks it: basic auth, its HTTP statuses, batches,
amounts written as exact decimal numbers, parameters checked with its error codes and words."""

from __future__ import annotations

import base64
import hmac
import inspect
import json
import re
import secrets
from collections.abc import Callable
from decimal import Decimal

from aiohttp import web

from custody.devchain.btc_chain import (
    COIN,
    RPC_INVALID_PARAMETER,
    RPC_MISC_ERROR,
    RPC_TYPE_ERROR,
    RpcError,
)

MAX_BODY = 2 * 1024 * 1024
MAX_BATCH = 100
RPC_PARSE_ERROR = -32700
RPC_INVALID_REQUEST = -32600
RPC_METHOD_NOT_FOUND = -32601
_MARK = "btc-" + secrets.token_hex(6) + ":"


class Btc:
    """An amount in satoshis that the answer writes as BTC with 8 decimals (a JSON number)."""

    def __init__(self, sats: int) -> None:
        self.sats = sats


def _json_default(o: object) -> object:
    """Numbers JSON cannot hold exactly become marked strings that ``dumps`` unquotes."""
    if isinstance(o, Btc):
        sign = "-" if o.sats < 0 else ""
        return f"{_MARK}{sign}{abs(o.sats) // COIN}.{abs(o.sats) % COIN:08d}"
    if isinstance(o, Decimal) and o.is_finite():
        return f"{_MARK}{o}"
    raise TypeError(type(o).__name__)


def dumps(value: object) -> str:
    text = json.dumps(value, default=_json_default)
    return re.sub('"' + re.escape(_MARK) + r'([-+0-9.eE]+)"', r"\1", text)


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


# --- parameters ---------------------------------------------------------------------------------


def type_error(name: str, value: object, expected: str) -> RpcError:
    return RpcError(
        RPC_TYPE_ERROR,
        f"JSON value of type {type(value).__name__} for field "
        f"{name} is not of expected type {expected}",
    )


def as_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error(name, value, "number")
    return value


def as_str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise type_error(name, value, "string")
    return value


def as_hash(value: object, name: str) -> str:
    text = as_str(value, name)
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise RpcError(
            RPC_INVALID_PARAMETER, f"{name} must be of length 64 (not {len(text)}) hexadecimal"
        )
    return text.lower()


def as_verbosity(value: object, name: str) -> int:
    return int(value) if isinstance(value, bool) else as_int(value, name)


def as_amount(value: object, name: str) -> int:
    """BTC as a JSON number (parsed as Decimal) or a string, as bitcoind takes, to satoshis."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, Decimal, str))
        or (isinstance(value, str) and not re.fullmatch(r"[0-9]{1,8}(\.[0-9]{1,8})?", value))
    ):
        raise type_error(name, value, "number")
    btc = Decimal(value)
    if not btc.is_finite() or not 0 <= btc <= 21_000_000:
        raise RpcError(RPC_TYPE_ERROR, "Amount out of range")
    if btc != btc.quantize(Decimal("1E-8")):
        raise RpcError(RPC_TYPE_ERROR, "Invalid amount")
    return int(btc * COIN)


# --- JSON-RPC over HTTP -------------------------------------------------------------------------


def _reply(request: object, result: object, error: RpcError | None) -> dict[str, object]:
    rid = request.get("id") if isinstance(request, dict) else None
    err = None if error is None else {"code": error.code, "message": error.message}
    if isinstance(request, dict) and request.get("jsonrpc") == "2.0":
        body: dict[str, object] = {"jsonrpc": "2.0"}
        body.update({"error": err} if err else {"result": result})
        body["id"] = rid
        return body
    return {"result": result, "error": err, "id": rid}


def handle_call(methods: dict[str, Callable[..., object]], request: object) -> dict[str, object]:
    """One JSON-RPC call to its answer; every failure becomes a JSON-RPC error."""
    try:
        if not isinstance(request, dict):
            raise RpcError(RPC_INVALID_REQUEST, "Invalid Request object")
        method = request.get("method")
        if not isinstance(method, str):
            raise RpcError(RPC_INVALID_REQUEST, "Method must be a string")
        params = request.get("params")
        if params is None:
            params = []
        if not isinstance(params, (list, dict)):
            raise RpcError(RPC_INVALID_REQUEST, "Params must be an array or object")
        fn = methods.get(method)
        if fn is None:
            raise RpcError(RPC_METHOD_NOT_FOUND, "Method not found")
        args, kwargs = (params, {}) if isinstance(params, list) else ([], params)
        try:
            inspect.signature(fn).bind(*args, **kwargs)
        except TypeError as exc:
            raise RpcError(RPC_MISC_ERROR, f"{method}: wrong parameters ({exc})") from exc
        return _reply(request, fn(*args, **kwargs), None)
    except RpcError as exc:
        return _reply(request, None, exc)
    except Exception as exc:  # a bug must still answer as JSON-RPC
        return _reply(
            request, None, RpcError(RPC_MISC_ERROR, f"internal error: {type(exc).__name__}")
        )


def _status(body: dict[str, object], legacy: bool) -> int:
    """bitcoind's HTTP status: 1.0 errors are 500 (404 for an unknown method), 2.0 always 200."""
    err = body.get("error")
    if not legacy or not isinstance(err, dict):
        return 200
    return 404 if err.get("code") == RPC_METHOD_NOT_FOUND else 500


def make_app(
    methods: dict[str, Callable[..., object]], user: str, password: str
) -> web.Application:
    """POST / (and /wallet/<name>) behind HTTP basic auth, as bitcoind serves it."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    async def rpc(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="jsonrpc"'})
        raw = await request.read()
        try:
            payload = json.loads(raw, parse_float=Decimal, parse_constant=_no_constants)
        except (ValueError, RecursionError):
            body = _reply(None, None, RpcError(RPC_PARSE_ERROR, "Parse error"))
            return web.Response(status=500, text=dumps(body), content_type="application/json")
        if isinstance(payload, list):
            if not payload or len(payload) > MAX_BATCH:
                body = _reply(
                    None, None, RpcError(RPC_INVALID_REQUEST, f"Batch of 1..{MAX_BATCH} calls only")
                )
                return web.Response(status=500, text=dumps(body), content_type="application/json")
            replies = [handle_call(methods, call) for call in payload]
            return web.Response(text=dumps(replies), content_type="application/json")
        body = handle_call(methods, payload)
        legacy = not (isinstance(payload, dict) and payload.get("jsonrpc") == "2.0")
        return web.Response(
            status=_status(body, legacy), text=dumps(body), content_type="application/json"
        )

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/", rpc)
    app.router.add_post("/wallet/{name}", rpc)
    return app
