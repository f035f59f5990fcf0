"""SIGNED requests checked as Binance checks them, against the docs' own examples.

The HMAC answers are the docs' (rest-api.md, "SIGNED Endpoint Examples"; the mixed query and
body example is from the docs' earlier versions: "There is no & between GTC and quantity=1").
The key of the examples is put in a real store the way the store writes keys, so the check runs
against what the door will run against.
"""

from __future__ import annotations

import base64
import json
import os
import random
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.rest.keys import LOG_NAME, SECRET_NAME, ApiKey, KeyStore
from gateway.rest.signing import (
    Need,
    SignedRequest,
    SigningError,
    authenticate,
    authenticate_request,
    check_key,
    parse_params,
    sign_ed25519,
    sign_hmac,
)

DOCS_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOCS_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOCS_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
DOCS_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
DOCS_NON_ASCII = (
    "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT"
    "&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
)
DOCS_NON_ASCII_SIGNATURE = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
MIXED_QUERY = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
MIXED_BODY = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
MIXED_SIGNATURE = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
DOCS_TS = 1499827319559
IP = "203.0.113.9"


def docs_store(
    directory: Path,
    permissions: tuple[str, ...] = ("TRADE", "USER_DATA"),
    ips: list[str] | None = None,
) -> KeyStore:
    """A store holding the docs' example key, written as the store writes a created key."""
    KeyStore(directory)  # makes the secret file
    aes = AESGCM((directory / SECRET_NAME).read_bytes())
    nonce = os.urandom(12)
    sealed = aes.encrypt(nonce, DOCS_SECRET.encode(), DOCS_KEY.encode())
    record = {
        "t": 1,
        "action": "created",
        "api_key": DOCS_KEY,
        "account": 5,
        "kind": "HMAC",
        "permissions": sorted(permissions),
        "label": "docs",
        "ips": ips or [],
        "by": "test",
        "secret": {
            "nonce": base64.b64encode(nonce).decode(),
            "sealed": base64.b64encode(sealed).decode(),
        },
    }
    (directory / LOG_NAME).write_text(json.dumps(record) + "\n")
    return KeyStore(directory)


def auth(
    store: KeyStore,
    query: str = "",
    body: str = "",
    *,
    key: str | None = DOCS_KEY,
    ip: str = IP,
    now_ms: int = DOCS_TS + 100,
    need: Need = "TRADE",
) -> ApiKey:
    return authenticate(
        store, query=query, body=body.encode(), api_key_header=key, ip=ip, now_ms=now_ms, need=need
    )


def refused(code: int, msg: str, call: object, status: int = 400) -> None:
    with pytest.raises(SigningError) as err:
        call()  # type: ignore[operator]
    assert (err.value.code, err.value.msg, err.value.status) == (code, msg, status)
    assert err.value.body() == {"code": code, "msg": msg}


def test_the_docs_hmac_answers() -> None:
    assert sign_hmac(DOCS_SECRET, DOCS_PAYLOAD) == DOCS_SIGNATURE
    assert sign_hmac(DOCS_SECRET, DOCS_NON_ASCII) == DOCS_NON_ASCII_SIGNATURE
    assert sign_hmac(DOCS_SECRET, MIXED_QUERY + MIXED_BODY) == MIXED_SIGNATURE


def test_the_docs_requests_pass(tmp_path: Path) -> None:
    store = docs_store(tmp_path)
    signed = f"&signature={DOCS_SIGNATURE}"
    assert auth(store, DOCS_PAYLOAD + signed).api_key == DOCS_KEY  # as a query string
    assert auth(store, "", DOCS_PAYLOAD + signed).account == 5  # as a request body
    assert auth(store, MIXED_QUERY, MIXED_BODY + f"&signature={MIXED_SIGNATURE}").account == 5
    assert auth(store, DOCS_NON_ASCII + f"&signature={DOCS_NON_ASCII_SIGNATURE}").account == 5
    # HMAC hex is not case sensitive (rest-api.md, "Signature Case Sensitivity").
    assert auth(store, DOCS_PAYLOAD + signed.upper().replace("SIGNATURE", "signature"))


def test_mixed_with_the_signature_in_the_query(tmp_path: Path) -> None:
    store = docs_store(tmp_path)
    assert auth(store, MIXED_QUERY + f"&signature={MIXED_SIGNATURE}", MIXED_BODY)


def test_an_ampersand_between_query_and_body_is_not_the_docs_payload(tmp_path: Path) -> None:
    store = docs_store(tmp_path)
    wrong = sign_hmac(DOCS_SECRET, MIXED_QUERY + "&" + MIXED_BODY)
    refused(
        -1022,
        "Signature for this request is not valid.",
        lambda: auth(store, MIXED_QUERY, MIXED_BODY + f"&signature={wrong}"),
    )


def test_parameters_query_wins_and_the_signature_is_read(tmp_path: Path) -> None:
    params = parse_params("a=1&b=x+y%2Bz", b"a=2&c=%E2%82%AC&signature=abc")
    assert params == {"a": "1", "b": "x y+z", "c": "\u20ac", "signature": "abc"}


@pytest.mark.parametrize("seed", range(3))
def test_segments_without_escapes_read_as_unquote_plus_reads_them(seed: int) -> None:
    """Segments without ``%`` or ``+`` skip the decoding: what they read as must not change."""
    from urllib.parse import unquote_plus

    rng = random.Random(seed)
    alphabet = "abcXYZ019-_.~:,*!'()@$;=+% \u20ac"
    for _ in range(300):
        names = rng.sample(range(1000), rng.randrange(1, 6))
        segments = [
            f"n{n}=" + "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 8)))
            for n in names
        ]
        try:
            expected = {}
            for segment in segments:
                name, _, value = segment.partition("=")
                expected[unquote_plus(name, errors="strict")] = unquote_plus(value, errors="strict")
        except UnicodeDecodeError:
            continue
        assert parse_params("&".join(segments)) == expected


@pytest.mark.parametrize(
    ("changed", "where"),
    [
        ("price=0.2", "price=0.1"),
        ("quantity=10", "quantity=1"),
        ("symbol=LTCBTC&extra=1", "symbol=LTCBTC"),
    ],
)
def test_any_change_breaks_the_signature(tmp_path: Path, changed: str, where: str) -> None:
    store = docs_store(tmp_path)
    query = DOCS_PAYLOAD.replace(where, changed) + f"&signature={DOCS_SIGNATURE}"
    refused(-1022, "Signature for this request is not valid.", lambda: auth(store, query))


@pytest.mark.parametrize(
    "signature", ["", "zz" * 32, DOCS_SIGNATURE[:-1], DOCS_SIGNATURE + "0", "\u00e9" * 64]
)
def test_malformed_signatures(tmp_path: Path, signature: str) -> None:
    store = docs_store(tmp_path)
    query = DOCS_PAYLOAD + "&signature=" + quote(signature)
    if signature:
        refused(-1022, "Signature for this request is not valid.", lambda: auth(store, query))
    else:
        refused(
            -1102,
            "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
            lambda: auth(store, query),
        )


def ed25519_store(
    tmp_path: Path, permissions: list[str]
) -> tuple[KeyStore, ApiKey, Ed25519PrivateKey]:
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    store = KeyStore(tmp_path)
    key = store.create_ed25519(9, permissions, "ed", [], pem.decode(), "test")
    return store, key, private


def test_ed25519_round_trip(tmp_path: Path) -> None:
    store, key, private = ed25519_store(tmp_path, ["TRADE"])
    payload = (
        "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=0.2"
        "&timestamp=1668481559918&recvWindow=5000"
    )
    signature = sign_ed25519(private, payload)
    assert len(base64.b64decode(signature)) == 64
    now = 1668481559918 + 10
    query = payload + "&signature=" + quote(signature, safe="")
    assert auth(store, query, key=key.api_key, now_ms=now) == key
    assert auth(store, "", query, key=key.api_key, now_ms=now) == key
    # A client that did not percent-encode: '+' reads as a space, '/' and '=' pass as they are.
    raw = payload + "&signature=" + signature
    assert auth(store, raw, key=key.api_key, now_ms=now) == key
    # Ed25519 signatures are case sensitive; another key's signature fails.
    flipped = signature.swapcase()
    bad = payload + "&signature=" + quote(flipped, safe="")
    refused(
        -1022,
        "Signature for this request is not valid.",
        lambda: auth(store, bad, key=key.api_key, now_ms=now),
    )
    other = sign_ed25519(Ed25519PrivateKey.generate(), payload)
    forged = payload + "&signature=" + quote(other, safe="")
    refused(
        -1022,
        "Signature for this request is not valid.",
        lambda: auth(store, forged, key=key.api_key, now_ms=now),
    )
    for junk in ("abc", "%%%", quote(base64.b64encode(b"x" * 63).decode(), safe="")):
        refused(
            -1022,
            "Signature for this request is not valid.",
            lambda junk=junk: auth(
                store, payload + "&signature=" + junk, key=key.api_key, now_ms=now
            ),
        )


def test_the_api_key_header(tmp_path: Path) -> None:
    store = docs_store(tmp_path)
    query = DOCS_PAYLOAD + f"&signature={DOCS_SIGNATURE}"
    for header in (None, "", "short", DOCS_KEY + "x", DOCS_KEY[:-1] + "-"):
        refused(-2014, "API-key format invalid.", lambda h=header: auth(store, query, key=h), 401)
    unknown = "A" * 64
    refused(
        -2015,
        "Invalid API-key, IP, or permissions for action.",
        lambda: auth(store, query, key=unknown),
        401,
    )


def test_a_revoked_key_is_refused(tmp_path: Path) -> None:
    store = docs_store(tmp_path)
    query = DOCS_PAYLOAD + f"&signature={DOCS_SIGNATURE}"
    assert auth(store, query)
    store.revoke(DOCS_KEY, "ops")
    refused(
        -2015, "Invalid API-key, IP, or permissions for action.", lambda: auth(store, query), 401
    )


@pytest.mark.parametrize(
    ("permissions", "need", "ok"),
    [
        (("TRADE",), "TRADE", True),
        (("USER_DATA",), "TRADE", False),
        (("USER_DATA",), "USER_DATA", True),
        (("TRADE",), "USER_DATA", True),
        (("TRADE", "USER_DATA"), "TRADE", True),
    ],
)
def test_permissions(tmp_path: Path, permissions: tuple[str, ...], need: Need, ok: bool) -> None:
    store = docs_store(tmp_path, permissions)
    query = DOCS_PAYLOAD + f"&signature={DOCS_SIGNATURE}"
    if ok:
        assert auth(store, query, need=need)
    else:
        refused(
            -2015,
            "Invalid API-key, IP, or permissions for action.",
            lambda: auth(store, query, need=need),
            401,
        )


@pytest.mark.parametrize(
    ("ip", "ok"),
    [
        ("10.1.2.3", True),
        ("10.255.255.255", True),
        ("11.0.0.1", False),
        ("192.0.2.7", True),
        ("192.0.2.8", False),
        ("::ffff:10.9.9.9", True),
        ("2001:db8:abcd::1", True),
        ("2001:db9::1", False),
        ("not an ip", False),
        ("", False),
    ],
)
def test_ip_allowlist_with_networks(tmp_path: Path, ip: str, ok: bool) -> None:
    store = docs_store(tmp_path, ips=["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"])
    query = DOCS_PAYLOAD + f"&signature={DOCS_SIGNATURE}"
    if ok:
        assert auth(store, query, ip=ip)
        assert check_key(store, DOCS_KEY, ip).api_key == DOCS_KEY
    else:
        refused(
            -2015,
            "Invalid API-key, IP, or permissions for action.",
            lambda: auth(store, query, ip=ip),
            401,
        )


def signed(query: str) -> str:
    return query + "&signature=" + sign_hmac(DOCS_SECRET, query)


ILLEGAL_RECV_WINDOW = (
    "Illegal characters found in parameter 'recvWindow'; "
    "legal range is '^[0-9]{1,20}(\\.[0-9]{1,3})?$'."
)
OUTSIDE = "Timestamp for this request is outside of the recvWindow."
AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."


@pytest.mark.parametrize(
    ("params", "now", "error"),
    [
        ("timestamp=1000000", 1_000_000, None),
        ("timestamp=1000000", 1_005_000, None),  # default recvWindow 5000: now - ts == 5000
        ("timestamp=1000000", 1_005_001, OUTSIDE),
        ("timestamp=1000999", 1_000_000, None),  # ahead by 999 ms
        ("timestamp=1001000", 1_000_000, AHEAD),  # ahead by 1000 ms: timestamp < now + 1 s fails
        ("timestamp=1000000&recvWindow=60000", 1_060_000, None),
        ("timestamp=1000000&recvWindow=60000", 1_060_001, OUTSIDE),
        ("timestamp=1000000&recvWindow=10", 1_000_010, None),
        ("timestamp=1000000&recvWindow=10", 1_000_011, OUTSIDE),
        ("recvWindow=0&timestamp=1000000", 1_000_000, None),
        ("recvWindow=0&timestamp=1000000", 1_000_001, OUTSIDE),
        # microseconds: recvWindow with decimals, and a timestamp in microseconds
        ("timestamp=1000000&recvWindow=0.999", 1_000_001, OUTSIDE),
        ("timestamp=1000000&recvWindow=1.5", 1_000_001, None),
        ("timestamp=1500000000000000&recvWindow=1.5", 1_500_000_000_001, None),
        ("timestamp=1500000000000000&recvWindow=0.5", 1_500_000_000_001, OUTSIDE),
        ("timestamp=1500000001000000", 1_500_000_000_000, AHEAD),
        ("timestamp=1500000000999999", 1_500_000_000_000, None),
    ],
)
def test_timing_boundaries(tmp_path: Path, params: str, now: int, error: str | None) -> None:
    store = docs_store(tmp_path)
    query = signed("symbol=LTCBTC&" + params)
    if error is None:
        assert auth(store, query, now_ms=now)
    else:
        refused(-1021, error, lambda: auth(store, query, now_ms=now))


def test_the_second_window_check_before_the_engine(tmp_path: Path) -> None:
    store = docs_store(tmp_path)
    request = SignedRequest("POST", signed("timestamp=1000000"), b"", DOCS_KEY, IP, 1_004_000)
    accepted = authenticate_request(store, request, "TRADE")
    assert accepted.params == {"timestamp": "1000000"}
    accepted.recheck(1_005_000)
    refused(-1021, OUTSIDE, lambda: accepted.recheck(1_005_001))


@pytest.mark.parametrize(
    ("query", "code", "msg"),
    [
        (
            "symbol=X",
            -1102,
            "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        ),
        (
            "timestamp=",
            -1102,
            "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        ),
        (
            "timestamp=12a",
            -1102,
            "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        ),
        (
            "timestamp=-5",
            -1102,
            "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        ),
        (
            "timestamp=1.5",
            -1102,
            "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        ),
        (
            "timestamp=1000000&recvWindow=60001",
            -1102,
            "'recvWindow' contains unexpected value. Cannot be greater than 60000.",
        ),
        (
            "timestamp=1000000&recvWindow=60000.001",
            -1102,
            "'recvWindow' contains unexpected value. Cannot be greater than 60000.",
        ),
        (
            "timestamp=1000000&recvWindow=99999999999999999999",
            -1102,
            "'recvWindow' contains unexpected value. Cannot be greater than 60000.",
        ),
        (
            "timestamp=1000000&recvWindow=5000.1234",
            -1111,
            "Parameter 'recvWindow' has too much precision.",
        ),
        (
            "timestamp=1000000&recvWindow=abc",
            -1100,
            ILLEGAL_RECV_WINDOW,
        ),
        (
            "timestamp=1000000&recvWindow=-1",
            -1100,
            ILLEGAL_RECV_WINDOW,
        ),
        (
            "timestamp=1000000&timestamp=1000000",
            -1101,
            "Duplicate values for a parameter detected.",
        ),
        ("timestamp=1000000&a=%FF", -1100, "Illegal characters found in a parameter."),
        (
            "&".join(f"p{i}=1" for i in range(300)),
            -1101,
            "Too many parameters sent for this endpoint.",
        ),
    ],
)
def test_parameter_refusals(tmp_path: Path, query: str, code: int, msg: str) -> None:
    store = docs_store(tmp_path)
    refused(code, msg, lambda: auth(store, signed(query), now_ms=1_000_000))


def test_missing_or_doubled_signature(tmp_path: Path) -> None:
    store = docs_store(tmp_path)
    refused(
        -1102,
        "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        lambda: auth(store, DOCS_PAYLOAD),
    )
    twice = DOCS_PAYLOAD + f"&signature={DOCS_SIGNATURE}"
    refused(
        -1101,
        "Duplicate values for a parameter detected.",
        lambda: auth(store, twice, f"signature={DOCS_SIGNATURE}"),
    )
    refused(
        -1101,
        "Duplicate values for a parameter detected.",
        lambda: auth(store, twice + f"&signature={DOCS_SIGNATURE}"),
    )


def test_undecodable_body_or_query(tmp_path: Path) -> None:
    store = docs_store(tmp_path)
    with pytest.raises(SigningError) as err:
        authenticate(
            store,
            query="",
            body=b"timestamp=1\xff",
            api_key_header=DOCS_KEY,
            ip=IP,
            now_ms=1,
            need="TRADE",
        )
    assert err.value.code == -1100
    refused(
        -1100,
        "Illegal characters found in a parameter.",
        lambda: auth(store, "a=\ud800&timestamp=1"),
    )


_ALPHABET = "abcdefgijklmnopqrstuvwxyz=&%+0123456789AFabf.-_~ \u00e9\u20ac\x00\ud800"
_NAMES = ["timestamp", "recvWindow", "signature", "symbol", "a", ""]


def _random_part(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(0, 60)))
    pairs = []
    for _ in range(rng.randrange(0, 8)):
        name = rng.choice(_NAMES)
        value = rng.choice(
            [
                str(rng.randrange(-10, 10**16)),
                "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(0, 70))),
                "%",
                "%zz",
                "%C3",
                "60000.0001",
                "0x10",
            ]
        )
        pairs.append(f"{name}={value}" if rng.random() < 0.9 else name)
    return "&".join(pairs)


def _attempt(
    store: KeyStore,
    ed_store: KeyStore,
    ed_key: ApiKey,
    query: str,
    body: bytes,
    use_ed: bool,
    ip: str,
    need: Need,
) -> list[str]:
    """Parses and authenticates one request; anything but SigningError escapes the test."""
    out = []
    try:
        parse_params(query, body)
        out.append("accepted")
    except SigningError as exc:
        assert exc.code < 0 and exc.msg and exc.status == 400
        out.append("refused")
    try:
        authenticate(
            ed_store if use_ed else store,
            query=query,
            body=body,
            api_key_header=ed_key.api_key if use_ed else DOCS_KEY,
            ip=ip,
            now_ms=1_000_000,
            need=need,
        )
        out.append("accepted")
    except SigningError as exc:
        assert exc.code < 0 and exc.msg and exc.status in (400, 401)
        out.append("refused")
    return out


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_the_parser_raises_only_signing_errors(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    store = docs_store(tmp_path)
    ed_store, ed_key, _ = ed25519_store(tmp_path / "ed", ["TRADE"])
    outcomes = {"accepted": 0, "refused": 0}
    for _ in range(150):
        query = _random_part(rng)
        body_text = _random_part(rng)
        body = body_text.encode("utf-8", "surrogatepass")
        if rng.random() < 0.2:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        if rng.random() < 0.2 and "\ud800" not in query + body_text:
            query = signed(query + "&timestamp=1000000")  # sometimes a valid one
        use_ed = rng.random() < 0.2
        ip = rng.choice([IP, "::1", "bogus"])
        need: Need = rng.choice(["TRADE", "USER_DATA"])
        for outcome in _attempt(store, ed_store, ed_key, query, body, use_ed, ip, need):
            outcomes[outcome] += 1
    assert outcomes["refused"] > 0 and outcomes["accepted"] > 0
