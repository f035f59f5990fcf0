"""Authentication of SIGNED requests as Binance does it: the API key header, the signature over
the parameters as sent, and the timestamp window. Pure functions over what the door received.

Binance's rules (rest-api.md, "SIGNED Endpoint security" and "Timing security"), applied here:

- The payload signed is the query string concatenated *without separator* to the form body,
  byte for byte as sent, minus the ``signature`` parameter (clients append it last; wherever it
  stands, its ``name=value`` segment and one ``&`` joining it are removed).
- HMAC keys: the signature is the hex HMAC-SHA256 of the payload under the secret; hex is
  compared without regard to case. Ed25519 keys: the base64 signature of the payload,
  percent-encoded on the wire (a bare ``+`` turned to a space by form decoding is put back).
- ``timestamp`` is required, in milliseconds or microseconds (a value of 15 digits or more
  is read as microseconds); ``recvWindow`` defaults to 5000 ms, may carry 3 decimals
  (microseconds) and cannot be greater than 60000. The request is refused when
  ``timestamp >= serverTime + 1 s`` or when ``serverTime - timestamp > recvWindow``.
  ``Authenticated.recheck`` repeats the second test just before the engine, as Binance does.
- A parameter sent in both the query and the body: the query's value is used (as Binance
  documents); a parameter twice in the same part, or ``signature`` twice anywhere, is refused.

Permissions: Binance's keys can always read ("By default, an API key cannot TRADE. You need to
enable trading"), so a ``USER_DATA`` endpoint accepts a key holding ``USER_DATA`` or ``TRADE``,
and a ``TRADE`` endpoint needs ``TRADE``. The IP allowlist, when a key has one, must hold the
client's address (an IPv4-mapped IPv6 address counts as its IPv4 address).

Refusals are ``SigningError`` with Binance's code, text and an HTTP status; unknown, revoked,
wrong-IP and under-permitted keys share one answer (-2015) so a caller learns nothing more.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import unquote_plus

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.rest.keys import ApiKey, KeyStore, KeyStoreError, is_key_format

__all__ = [
    "BAD_API_KEY_FORMAT",
    "DEFAULT_RECV_WINDOW_MS",
    "MAX_PARAMS",
    "MAX_RECV_WINDOW_MS",
    "Authenticated",
    "Need",
    "SignedRequest",
    "SigningError",
    "authenticate",
    "authenticate_request",
    "authenticate_ws",
    "check_key",
    "check_timing",
    "parse_params",
    "permitted",
    "sign_ed25519",
    "sign_hmac",
    "ws_payload",
]

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
#: More parameters than this in one request are refused (-1101) before any work.
MAX_PARAMS = 200
#: A timestamp this large or larger is in microseconds (ms now have 13 digits, us 16).
_MICROS_FROM = 10**14

Need = Literal["USER_DATA", "TRADE", "WITHDRAW"]

# Binance's texts, verbatim from errors.md.
BAD_API_KEY_FORMAT = (-2014, "API-key format invalid.")
REJECTED_KEY = (-2015, "Invalid API-key, IP, or permissions for action.")
BAD_SIGNATURE = (-1022, "Signature for this request is not valid.")
OUTSIDE_WINDOW = (-1021, "Timestamp for this request is outside of the recvWindow.")
AHEAD = (-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
DUPLICATE = (-1101, "Duplicate values for a parameter detected.")
TOO_MANY = (-1101, "Too many parameters sent for this endpoint.")
ILLEGAL = (-1100, "Illegal characters found in a parameter.")

_RECV_WINDOW = re.compile(r"([0-9]{1,20})(?:\.([0-9]+))?")
_TIMESTAMP = re.compile(r"[0-9]{1,20}")
_HEX = frozenset("0123456789abcdefABCDEF")


class SigningError(Exception):
    """A refused request: Binance's ``code`` and ``msg``, and the HTTP ``status`` to send."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, int | str]:
        """The JSON error body: ``{"code": ..., "msg": ...}``."""
        return {"code": self.code, "msg": self.msg}


def _refuse(pair: tuple[int, str], status: int = 400) -> SigningError:
    return SigningError(pair[0], pair[1], status)


def _mandatory(name: str) -> SigningError:
    return SigningError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What the door received, as received: no decoding, no reordering."""

    method: str
    query: str
    body: bytes
    api_key_header: str | None
    ip: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class Authenticated:
    """An accepted request: its key, its parameters (query over body, ``signature`` dropped)
    and its timing, for the second window check just before the engine."""

    key: ApiKey
    params: dict[str, str]
    timestamp_us: int
    recv_window_us: int

    def recheck(self, now_ms: int) -> None:
        """Binance's last check before the matching engine: still inside ``recvWindow``?"""
        if now_ms * 1000 - self.timestamp_us > self.recv_window_us:
            raise _refuse(OUTSIDE_WINDOW)


# -- parameters -----------------------------------------------------------------------------


def _split(part: str) -> tuple[list[tuple[str, str]], list[str], str]:
    """The pairs of one part (query or body), the raw signature values it holds, and the part
    with its signature segments removed (the signed text)."""
    if not part:
        return [], [], ""
    segments = part.split("&")
    if len(segments) > MAX_PARAMS:
        raise _refuse(TOO_MANY)
    pairs: list[tuple[str, str]] = []
    signatures: list[str] = []
    kept: list[str] = []
    seen: set[str] = set()
    for segment in segments:
        if not segment:
            kept.append(segment)
            continue
        raw_name, _, raw_value = segment.partition("=")
        if "%" in segment or "+" in segment:
            try:
                name = unquote_plus(raw_name, errors="strict")
                value = unquote_plus(raw_value, errors="strict")
            except UnicodeDecodeError:
                raise _refuse(ILLEGAL) from None
        else:  # nothing to decode, as in most segments: two calls fewer per parameter
            name, value = raw_name, raw_value
        if name in seen:
            raise _refuse(DUPLICATE)
        seen.add(name)
        if name == "signature":
            signatures.append(value)
            continue
        kept.append(segment)
        pairs.append((name, value))
    return pairs, signatures, "&".join(kept)


def _parts(query: str, body: bytes) -> tuple[dict[str, str], str | None, bytes]:
    """Parameters (query wins), the signature if sent, and the signed payload's bytes."""
    try:
        body_text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(ILLEGAL) from None
    query_pairs, query_sigs, query_signed = _split(query)
    body_pairs, body_sigs, body_signed = _split(body_text)
    signatures = query_sigs + body_sigs
    if len(signatures) > 1:
        raise _refuse(DUPLICATE)
    params = dict(body_pairs)
    params.update(query_pairs)
    try:
        payload = (query_signed + body_signed).encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(ILLEGAL) from None
    return params, (signatures[0] if signatures else None), payload


def parse_params(query: str, body: bytes = b"") -> dict[str, str]:
    """The request's parameters, form-decoded; a name in both parts takes the query's value.

    Raises ``SigningError`` (-1100 undecodable, -1101 duplicate or too many), nothing else.
    """
    params, signature, _ = _parts(query, body)
    if signature is not None:
        params["signature"] = signature
    return params


def _timestamp_us(params: dict[str, str]) -> int:
    text = params.get("timestamp", "")
    if not _TIMESTAMP.fullmatch(text):
        raise _mandatory("timestamp")
    value = int(text)
    return value if value >= _MICROS_FROM else value * 1000


def _recv_window_us(params: dict[str, str]) -> int:
    text = params.get("recvWindow")
    if text is None:
        return DEFAULT_RECV_WINDOW_MS * 1000
    match = _RECV_WINDOW.fullmatch(text)
    if match is None:
        raise SigningError(
            -1100,
            "Illegal characters found in parameter 'recvWindow'; "
            "legal range is '^[0-9]{1,20}(\\.[0-9]{1,3})?$'.",
        )
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > 3:
        raise SigningError(-1111, "Parameter 'recvWindow' has too much precision.")
    value = int(whole) * 1000 + int(fraction.ljust(3, "0"))
    if value > MAX_RECV_WINDOW_MS * 1000:
        raise SigningError(
            -1102,
            f"'recvWindow' contains unexpected value. Cannot be greater than {MAX_RECV_WINDOW_MS}.",
        )
    return value


# -- keys, addresses, signatures ------------------------------------------------------------


@lru_cache(maxsize=4096)
def _networks(
    allowlist: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in allowlist)


def _ip_allowed(key: ApiKey, ip: str) -> bool:
    if not key.ip_allowlist:
        return True
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(key.ip_allowlist))


def check_key(store: KeyStore, api_key_header: str | None, ip: str) -> ApiKey:
    """The live key named by ``X-MBX-APIKEY``, allowed from ``ip``: the whole check of an
    endpoint that needs an API key but no signature (Binance's ``USER_STREAM``)."""
    if api_key_header is None or not is_key_format(api_key_header.strip()):
        raise _refuse(BAD_API_KEY_FORMAT, 401)
    key = store.get(api_key_header.strip())
    if key is None or not key.live or not _ip_allowed(key, ip):
        raise _refuse(REJECTED_KEY, 401)
    return key


def _verify(store: KeyStore, key: ApiKey, signature: str, payload: bytes) -> bool:
    try:
        if key.kind == "HMAC":
            if len(signature) != 64 or not _HEX.issuperset(signature):
                return False
            expected = hmac.new(store.hmac_secret(key.api_key), payload, hashlib.sha256)
            return hmac.compare_digest(expected.hexdigest().encode(), signature.lower().encode())
        raw = base64.b64decode(signature.replace(" ", "+").encode("ascii"), validate=True)
        if len(raw) != 64:
            return False
        store.ed25519_key(key.api_key).verify(raw, payload)
        return True
    except (InvalidSignature, binascii.Error, UnicodeEncodeError, KeyStoreError):
        return False


def _permitted(key: ApiKey, need: Need) -> bool:
    if need == "TRADE":
        return "TRADE" in key.permissions
    if need == "USER_DATA":
        return bool(key.permissions & {"USER_DATA", "TRADE", "WITHDRAW"})
    if need == "WITHDRAW":
        return "WITHDRAW" in key.permissions
    raise ValueError(f"need must be USER_DATA, TRADE or WITHDRAW, not {need!r}")


# -- the check ------------------------------------------------------------------------------


def authenticate_request(store: KeyStore, request: SignedRequest, need: Need) -> Authenticated:
    """Checks a SIGNED request, cheapest refusals first: key header (-2014), key and IP
    (-2015), parameters (-1100/-1101/-1102/-1111), timing (-1021), signature (-1022), then
    the key's permission for ``need`` (-2015)."""
    key = check_key(store, request.api_key_header, request.ip)
    params, signature, payload = _parts(request.query, request.body)
    if not signature:
        raise _mandatory("signature")
    timestamp = _timestamp_us(params)
    window = _recv_window_us(params)
    now_us = request.now_ms * 1000
    if timestamp >= now_us + 1_000_000:
        raise _refuse(AHEAD)
    if now_us - timestamp > window:
        raise _refuse(OUTSIDE_WINDOW)
    if not _verify(store, key, signature, payload):
        raise _refuse(BAD_SIGNATURE)
    if not _permitted(key, need):
        raise _refuse(REJECTED_KEY, 401)
    return Authenticated(key, params, timestamp, window)


def authenticate(
    store: KeyStore,
    *,
    query: str,
    body: bytes,
    api_key_header: str | None,
    ip: str,
    now_ms: int,
    need: Need,
) -> ApiKey:
    """The key a SIGNED request was made with, or ``SigningError``; see ``authenticate_request``
    for the order of the checks and for the request's parameters."""
    request = SignedRequest("", query, body, api_key_header, ip, now_ms)
    return authenticate_request(store, request, need).key


# -- the WebSocket API ----------------------------------------------------------------------


def ws_payload(params: Mapping[str, str]) -> str:
    """What a WebSocket API request signs (web-socket-api.md, "SIGNED request security"): every
    parameter but ``signature``, sorted by name, ``name=value`` joined by ``&``, values as the
    client wrote them (no percent-encoding)."""
    return "&".join(f"{name}={params[name]}" for name in sorted(params) if name != "signature")


def check_timing(params: Mapping[str, str], now_ms: int) -> tuple[int, int]:
    """``timestamp`` and ``recvWindow`` checked as for any SIGNED request (-1102, -1100, -1111,
    -1021): a request of a logged-on WebSocket session carries no signature but still a
    timestamp. The two values in microseconds."""
    values = dict(params)
    timestamp = _timestamp_us(values)
    window = _recv_window_us(values)
    now_us = now_ms * 1000
    if timestamp >= now_us + 1_000_000:
        raise _refuse(AHEAD)
    if now_us - timestamp > window:
        raise _refuse(OUTSIDE_WINDOW)
    return timestamp, window


def authenticate_ws(
    store: KeyStore, params: Mapping[str, str], *, ip: str, now_ms: int, need: Need
) -> Authenticated:
    """A SIGNED request of the WebSocket API: ``apiKey`` and ``signature`` among its
    parameters, the signature over :func:`ws_payload`. The checks and their order are those of
    :func:`authenticate_request`, the key's format first (-2014 when ``apiKey`` is missing)."""
    if len(params) > MAX_PARAMS:
        raise _refuse(TOO_MANY)
    key = check_key(store, params.get("apiKey"), ip)
    signature = params.get("signature")
    if not signature:
        raise _mandatory("signature")
    timestamp, window = check_timing(params, now_ms)
    payload = ws_payload(params).encode("utf-8", errors="surrogatepass")
    if not _verify(store, key, signature, payload):
        raise _refuse(BAD_SIGNATURE)
    if not _permitted(key, need):
        raise _refuse(REJECTED_KEY, 401)
    clean = {name: value for name, value in params.items() if name != "signature"}
    return Authenticated(key, clean, timestamp, window)


def permitted(key: ApiKey, need: Need) -> bool:
    """Whether ``key`` may call an endpoint that needs ``need``."""
    return _permitted(key, need)


# -- client side (tests, benchmarks) --------------------------------------------------------


def sign_hmac(secret: str, payload: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``payload`` under ``secret``, as Binance's clients send."""
    return hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_ed25519(private_key: Ed25519PrivateKey, payload: str) -> str:
    """Base64 Ed25519 signature of ``payload``; percent-encode it (``quote(sig, safe="")``)
    before putting it in a query or body."""
    return base64.b64encode(private_key.sign(payload.encode("utf-8"))).decode("ascii")
