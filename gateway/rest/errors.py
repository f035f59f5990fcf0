"""What the Binance-dialect door answers when it refuses: HTTP status and ``{"code", "msg"}``.

Every refusal of this door is an :class:`ApiError` with Binance's code and exact text (clients
match on the text, ccxt among them), raised anywhere in a handler and turned into the response
by the application's middleware. Refusals of the shared edge and of the core
(``gateway.edge.refusals``) become one through :func:`from_refusal`, so the door never chooses a
code of its own for a business rule. The texts are those of binance-spot-api-docs' errors.md.
"""

from __future__ import annotations

import json

from engine.types import RejectReason
from gateway.edge.refusals import Refusal, binance_error

__all__ = [
    "ApiError",
    "bad_param",
    "compact",
    "from_reason",
    "from_refusal",
    "mandatory",
    "not_required",
]


def compact(value: object) -> str:
    """JSON as Binance writes it, without spaces: every body of the door."""
    return _ENCODER.encode(value)


_ENCODER = json.JSONEncoder(separators=(",", ":"))


class ApiError(Exception):
    """A refusal: ``status`` (400 for bad requests, 401/403 for keys, 404, 429/418 for limits),
    Binance's ``code`` and ``msg``; ``headers`` to add (``Retry-After``)."""

    def __init__(
        self, code: int, msg: str, status: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def mandatory(name: str) -> ApiError:
    return ApiError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def bad_param(name: str) -> ApiError:
    return ApiError(-1130, f"Data sent for parameter '{name}' is not valid.")


def not_required(name: str) -> ApiError:
    return ApiError(-1106, f"Parameter '{name}' sent when not required.")


#: The door-neutral field names of ``gateway.edge`` -> the parameter a Binance client sent.
_PARAMS = {"clientOrderId": "newClientOrderId"}


def from_refusal(refusal: Refusal) -> ApiError:
    """The Binance answer to a refusal of the edge (nothing was posted)."""
    field = _PARAMS.get(refusal.field, refusal.field)
    answer = binance_error(refusal.reason, field, refusal.kind)
    return ApiError(answer.code, answer.msg, answer.status)


def from_reason(reason: RejectReason) -> ApiError:
    """The Binance answer to the core's refusal (an ``OrderRejected``, ``CancelRejected``...)."""
    answer = binance_error(reason)
    return ApiError(answer.code, answer.msg, answer.status)
