"""The REST and WebSocket benchmarks' readers of the venue's output: a response or a frame split
anywhere by the network reads the same as whole, so the figures count every answer once; and
fix_load's mix of resting orders and IOCs that take the best order."""

from __future__ import annotations

import json
import random
import socket
from array import array

import pytest

from bench import fix_load
from bench.rest_load import _parse, _Responses
from bench.ws_fanout import Consumer, Received, read_frames


def _response(status: int, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-MBX-USED-WEIGHT-1M: 1\r\n\r\n"
    ).encode() + body


def _cuts(rng: random.Random, data: bytes) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randrange(0, 12))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@pytest.mark.parametrize("seed", range(5))
def test_http_responses_split_anywhere_are_each_counted_once(seed: int) -> None:
    rng = random.Random(seed)
    n_conn, count = 3, 30
    expected: dict[str, int] = {}
    streams: list[bytes] = [b""] * n_conn
    refused = 0
    for i in range(count):
        if rng.random() < 0.2:
            raw = _response(400, b'{"code":-1013,"msg":"Filter failure: PRICE_FILTER"}')
            refused += 1
        else:
            status = rng.choice(["NEW", "FILLED"])
            body = json.dumps({"orderId": i, "status": status, "fills": []}).encode()
            raw = _response(200, body)
            expected[status] = expected.get(status, 0) + 1
        streams[i % n_conn] += raw
    out = _Responses(array("q", bytes(8 * count)))
    statuses: dict[str, int] = {}
    next_response = [0] * n_conn
    for c in range(n_conn):
        tail = b""
        for n, piece in enumerate(_cuts(rng, streams[c])):
            tail = _parse(tail + piece, c, n_conn, next_response, 1000 + n, out, statuses)
        assert tail == b""
    assert (out.answered, out.ok, out.refused) == (count, count - refused, refused)
    assert statuses == expected
    assert all(out.acks) and out.first_refusal.startswith("400 ")


def _frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return head + payload


@pytest.mark.parametrize("seed", range(5))
def test_websocket_frames_split_anywhere_read_the_same(seed: int) -> None:
    rng = random.Random(seed)
    here, venue = socket.socketpair()
    here.settimeout(5)  # a misread frame fails the test rather than hanging it
    venue.settimeout(5)
    try:
        depth = Consumer(here, "depth")
        stream = b""
        last = 100
        for n in range(20):
            first = last + 1 + (1 if n == 7 else 0)  # one gap
            last = first + rng.randrange(0, 5)
            levels = [["95000.00", "0.01"]] * rng.choice([1, 10, 4000])  # up to 8-byte lengths
            stream += _frame(
                1,
                json.dumps(
                    {
                        "e": "depthUpdate",
                        "E": 1_000 + n,
                        "s": "BTCUSDT",
                        "U": first,
                        "u": last,
                        "b": levels,
                        "a": [],
                    },
                    separators=(",", ":"),
                ).encode(),
            )
            if n == 5:
                stream += _frame(9, b"ping")
        got = Received()
        for piece in _cuts(rng, stream):
            depth.buf += piece
            read_frames(depth, 2_000, got)
        assert depth.buf == b""
        assert list(got.lags_ms["depth"]) == [2_000 - (1_000 + n) for n in range(20)]
        assert got.gaps["depth"] == 1 and got.pings == 1
        pong = venue.recv(64)
        assert pong[0] == 0x8A and pong[1] == 0x80 | 4 and len(pong) == 2 + 4 + 4
        mask = pong[2:6]
        assert bytes(b ^ mask[i % 4] for i, b in enumerate(pong[6:])) == b"ping"
        trade = Consumer(here, "trade")
        for t in (5, 6, 8):
            trade.buf += _frame(1, b'{"e":"trade","E":1990,"s":"BTCUSDT","t":%d}' % t)
        trade.buf += _frame(8, (1008).to_bytes(2, "big") + b"consumer too slow")
        read_frames(trade, 2_000, got)
        assert list(got.lags_ms["trade"]) == [10, 10, 10]
        assert got.gaps["trade"] == 1 and trade.closed == "1008"
    finally:
        here.close()
        venue.close()


def test_every_nth_fix_order_is_an_ioc_taking_the_best_order() -> None:
    spec = fix_load.read_target("venue", fix_load.BENCH_CONFIG)
    streams = fix_load.encode_step(spec, 1, 40, 1_000, False, cross_every=10)
    data = streams[0].data
    ends = streams[0].ends
    orders = [data[ends[k] : ends[k + 1]] for k in range(40)]
    iocs = [k for k, raw in enumerate(orders) if b"\x0159=3\x01" in raw]
    assert iocs == [9, 19, 29, 39]
    assert all(b"\x0159=1\x01" in orders[k] for k in range(40) if k not in iocs)
    # alternating: a buy at the highest ask level, then a sell at the lowest bid level
    assert b"\x0154=1\x01" in orders[9] and b"\x0154=2\x01" in orders[19]
    resting = fix_load.encode_step(spec, 1, 40, 1_000, False)[0].data
    assert b"\x0159=3\x01" not in resting
